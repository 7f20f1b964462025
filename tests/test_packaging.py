"""The sdist is self-consistent: built, unpacked, installed, it runs.

The sdist is built from a clean copy of this checkout with ``python -m
build`` (in build isolation, as a packager would), unpacked, and installed
with ``pip --no-deps`` into a throwaway venv that sees this environment's
packages (numpy, pyzmq, pytest) through a ``.pth`` file, so that nothing
but the build backend comes from the package index. The unpacked source
package is then moved aside, so that the shipped tests import the
*installed* pescador, not the source next to them.

Skipped when ``build`` is not installed (``pip install ".[tests]"``
installs it).
"""

import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(300)]

# Build, install and test steps each get this long (seconds).
STEP_TIMEOUT = 180

# Left out of the copy that the sdist is built from: what a build or a docs
# build leaves in a checkout (a stale *.egg-info/SOURCES.txt would even add
# files to the sdist).
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".pytest_cache", ".ruff_cache", ".mypy_cache", "_build",
    "auto_examples", "gen_modules", "_generated", "results")

# What the shipped tests import besides the test modules themselves.
NEEDED = ["conftest.py", "pyproject.toml", "LICENSE", "README.md",
          "tests/__init__.py", "tests/streams.py", "tests/zmq_helpers.py",
          "pescador/py.typed", "pescador/version.py"]


def run(args, cwd, env=None):
    """Run a command; fail the test with its output if it fails."""
    proc = subprocess.run(args, cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=STEP_TIMEOUT, check=False)
    assert proc.returncode == 0, "{}\n{}\n{}".format(
        " ".join(map(str, args)), proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def clean_environment():
    """This process's environment without what would shadow the install:
    PYTHONPATH (the tests run with the checkout on it)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """(path of the sdist, its unpacked folder)."""
    pytest.importorskip("build")
    work = tmp_path_factory.mktemp("sdist")
    source = work / "source"
    shutil.copytree(str(ROOT), str(source), ignore=LEFT_OUT)
    run([sys.executable, "-m", "build", "--sdist", "--outdir",
         str(work / "dist"), str(source)], cwd=work, env=clean_environment())
    archives = sorted((work / "dist").glob("pescador-*.tar.gz"))
    assert len(archives) == 1, archives
    with tarfile.open(str(archives[0])) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(str(work / "unpacked"), filter="data")
        else:  # pragma: no cover (Python < 3.9.17 without the filters)
            archive.extractall(str(work / "unpacked"))
    (tree,) = (work / "unpacked").iterdir()
    return archives[0], tree


@pytest.fixture(scope="module")
def installed(sdist):
    """(python of a throwaway venv with the sdist installed, unpacked tree
    with its source package moved aside)."""
    archive, tree = sdist
    env_dir = archive.parent.parent / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(
        str(env_dir))
    python = env_dir / "bin" / "python"
    purelib = run([str(python), "-c",
                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=env_dir).stdout.strip()
    # This environment's packages, after the venv's own: plain paths, so
    # that no .pth of this environment (an editable pescador) is run.
    ours = [path for path in site.getsitepackages()
            + [sysconfig.get_paths()["purelib"]] if os.path.isdir(path)]
    Path(purelib, "_this_environment.pth").write_text(
        "\n".join(dict.fromkeys(ours)) + "\n")
    run([str(python), "-m", "pip", "install", "--no-deps",
         "--ignore-installed", "--quiet", str(archive)], cwd=env_dir,
        env=clean_environment())
    # The shipped tests must import the installed copy.
    (tree / "pescador").rename(tree / "pescador-source-moved-aside")
    return python, tree


def test_sdist_ships_what_its_tests_import(sdist):
    archive, tree = sdist
    shipped = {str(path.relative_to(tree)).replace(os.sep, "/")
               for path in tree.rglob("*") if path.is_file()}
    assert set(NEEDED) - shipped == set()
    tests = {name for name in shipped if re.match(r"tests/test_\w+\.py$",
                                                 name)}
    assert tests == {"tests/" + path.name
                     for path in (ROOT / "tests").glob("test_*.py")}
    # the examples and docs that tests/test_examples.py reads
    assert "examples/demo.py" in shipped and "docs/api.rst" in shipped
    # nothing a local build leaves behind
    assert not any(re.search(r"(^|/)(__pycache__|_build|auto_examples)/",
                             name) for name in shipped), sorted(shipped)


def test_installed_metadata(installed):
    python, tree = installed
    script = (
        "import json, os\n"
        "from importlib import metadata\n"
        "import pescador\n"
        "meta = metadata.metadata('pescador')\n"
        "print(json.dumps(dict(\n"
        "    file=pescador.__file__, version=pescador.__version__,\n"
        "    dist_version=meta['Version'],\n"
        "    license=meta['License-Expression'],\n"
        "    requires=metadata.requires('pescador'),\n"
        "    typed=os.path.exists(os.path.join(\n"
        "        os.path.dirname(pescador.__file__), 'py.typed')))))\n")
    found = json.loads(run([str(python), "-c", script], cwd=tree,
                           env=clean_environment()).stdout)
    # the installed copy, not the source next to the tests
    assert Path(found["file"]).resolve().is_relative_to(
        python.parent.parent.resolve()), found["file"]
    version = {}
    exec((tree / "pescador-source-moved-aside" / "version.py").read_text(),
         version)
    assert found["version"] == found["dist_version"] == version["version"]
    assert found["license"] == "ISC"
    runtime = sorted(re.match(r"[\w-]+", req).group(0)
                     for req in found["requires"] if "extra ==" not in req)
    assert runtime == ["numpy", "pyzmq"]
    assert found["typed"]


def test_installed_package_streams_in_the_background(installed):
    python, tree = installed
    script = (
        "import numpy as np, pescador\n"
        "def rows(k):\n"
        "    for i in range(5):\n"
        "        yield dict(X=np.full(3, k * 10 + i), Y=np.array([k]))\n"
        "streams = [pescador.Streamer(rows, k) for k in range(4)]\n"
        "mux = pescador.StochasticMux(streams, n_active=2, rate=3,\n"
        "                             random_state=0)\n"
        "batches = pescador.Streamer(pescador.buffer_stream, mux, 4)\n"
        "got = list(pescador.ZMQStreamer(batches).iterate(max_iter=4))\n"
        "print(len(got), sorted({b['X'].shape for b in got}))\n")
    out = run([str(python), "-c", script], cwd=tree,
              env=clean_environment()).stdout
    assert out.split() == ["4", "[(4,", "3)]"]


def test_shipped_tests_collect_and_pass(installed):
    python, tree = installed
    env = clean_environment()
    # Every shipped test module imports (the sdist used to ship the test
    # modules without tests/__init__.py and their helpers).
    collected = run([str(python), "-m", "pytest", "--collect-only", "-q",
                     "-p", "no:cacheprovider", "tests"], cwd=tree, env=env)
    last = collected.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ tests? collected", last) and "error" not in last, \
        collected.stdout[-2000:]
    # A fast subset runs, against the installed package.
    result = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "tests/test_core.py", "tests/test_util.py"], cwd=tree,
                 env=env)
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary \
        and "error" not in summary, summary
