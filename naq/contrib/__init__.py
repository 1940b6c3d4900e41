"""Integrations with web frameworks: ``naq.contrib.django`` and ``naq.contrib.flask``.

Each imports its framework; nothing in naq's core imports them.
"""
