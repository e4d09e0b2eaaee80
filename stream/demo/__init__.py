"""Demo data: the CDNOW purchase history and generated cart and email-open events."""
