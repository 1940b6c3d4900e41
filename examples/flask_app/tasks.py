"""Job functions. Run the worker with ``naq worker --flask app:app`` (from examples/flask_app),
so that they run inside the app's context."""

from flask import current_app


def add(a: int, b: int) -> int:
    return a + b


def greet(name: str) -> str:
    """Uses the app: only inside its context (the worker's ``--flask`` hooks push it)."""
    return f"{current_app.config['GREETING']}, {name}, from {current_app.name}"
