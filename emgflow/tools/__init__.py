"""Tools that run beside graphs, not in them (device emulators)."""
