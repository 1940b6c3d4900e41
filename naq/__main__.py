"""``python -m naq``: the same as the ``naq`` command."""

from naq.cli import main

main()
