"""Redis: the client from settings, the key layout, typed operations, health, and the
embedded server of the zero-setup default."""
