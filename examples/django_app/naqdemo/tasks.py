"""Job functions. The worker imports them: run it with ``--path examples/django_app``."""


def add(a: int, b: int) -> int:
    return a + b
