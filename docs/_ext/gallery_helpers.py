"""Command-line arguments for the examples when the gallery runs them.

The gallery runs every script in examples/. The full sizes keep the build
under a minute; under CI (``CI=true``) or with ``PESCADOR_DOCS_QUICK=1`` the
examples get small sizes, so the docs build stays a quick check.
"""

import os
from pathlib import Path

GENERATED = Path(__file__).resolve().parent.parent / "_generated"

# The gallery's order: the demo first, the analysis last.
ORDER = ["demo.py", "sklearn_partial_fit.py", "keras_style.py",
         "validation_chain.py", "class_balanced.py", "parallel_zmq.py",
         "parallel_workers.py", "mux_analysis.py"]

FULL = {
    "demo.py": ["--steps", "400"],
    "keras_style.py": ["--epochs", "2"],
}

QUICK = {
    "demo.py": ["--shards", "12", "--val-shards", "3", "--rows", "100",
                "--steps", "60", "--report-every", "20"],
    "sklearn_partial_fit.py": ["--steps", "200"],
    "class_balanced.py": ["--items", "3000"],
    "parallel_zmq.py": ["--batches", "30"],
    "parallel_workers.py": ["--items", "80", "--ffts", "50",
                            "--max-workers", "2", "--rounds", "1"],
    "keras_style.py": ["--steps-per-epoch", "5", "--epochs", "1"],
    "mux_analysis.py": ["--streams", "16", "--n-active", "1", "2", "4", "8",
                        "16", "--rate", "1", "4", "16", "64",
                        "--items", "1024"],
}


def quick():
    """True when the examples should run with small sizes."""
    flags = (os.environ.get(name, "") for name in ("CI", "PESCADOR_DOCS_QUICK"))
    return any(flag.lower() in ("1", "true", "yes") for flag in flags)


def reset_argv(gallery_conf, script_vars):
    """The ``sys.argv[1:]`` the gallery gives an example."""
    name = Path(script_vars["src_file"]).name
    argv = list((QUICK if quick() else FULL).get(name, []))
    if name == "mux_analysis.py":
        GENERATED.mkdir(exist_ok=True)
        argv += ["--output", str(GENERATED / "mux_analysis.png")]
    return argv


class ExampleOrder:
    """Sort key for the gallery: `ORDER`, then any other file by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)
