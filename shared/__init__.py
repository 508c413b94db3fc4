"""Event-driven compliance monitor for Azure: pure core (events, rules, drift) and adapters.

Nothing here calls Azure at import time; ``shared.bootstrap`` builds clients lazily.
"""
__version__ = "0.9.0"  # pyproject.toml reads it; `--version` prints it
