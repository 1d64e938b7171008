"""An example emgflow plugin package: its node kinds are found through entry points."""
