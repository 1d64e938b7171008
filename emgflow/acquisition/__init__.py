"""Device-independent acquisition helpers any device node reuses: per-sample time reconstruction,
placing notifications on the sample axis, a reconnecting reader thread, a serial port whose reads
always end."""
