"""Adapters: the ports implemented over Azure services (and in memory, for tests and the CLI)."""
