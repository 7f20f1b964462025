"""The version of pescador: the one place it is written.

``pyproject.toml`` reads ``version`` from here (setuptools' dynamic
``attr``, which parses this file without importing the package), and so do
the docs and ``pescador.__version__``.
"""

version = "2.2.0"
short_version = ".".join(version.split(".")[:2])
