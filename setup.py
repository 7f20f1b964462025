"""A shim for tools that still call ``setup.py``: the metadata is static,
in ``pyproject.toml``."""

from setuptools import setup

setup()
