"""The ``segments`` command: one module per subcommand group, all thin wrappers."""
