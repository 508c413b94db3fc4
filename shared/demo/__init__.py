"""The bundled demo: a realistic scenario replayed through the Event Grid handler."""
from .run import run_demo

__all__ = ["run_demo"]
