"""Device protocols that more than one part of emgflow speaks (a node and its emulator)."""
