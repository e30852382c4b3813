"""Built-in behaviour, registered exactly like third-party plugins."""
