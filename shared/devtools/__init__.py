"""Development tools: local Azurite for the demo and the tests. Not used by the Function App."""
