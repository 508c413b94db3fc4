"""Azure Functions triggers: one ``func.Blueprint`` per module."""
