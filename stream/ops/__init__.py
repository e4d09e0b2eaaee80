"""Operators: metrics, health, lag and the live dashboard."""
