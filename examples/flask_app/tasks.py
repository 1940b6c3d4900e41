"""Job functions. The worker imports them: run it with ``--path examples/flask_app``."""


def add(a: int, b: int) -> int:
    return a + b
