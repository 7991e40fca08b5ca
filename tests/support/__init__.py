"""Helpers the test modules import by name (``from support.app import serve``): the tests/
folder is on ``sys.path`` through its conftest. Plain modules, no fixtures: those are in
``tests/conftest.py``."""
