"""The examples run, with small sizes, and show what they claim to show.

Also: the doctests in the docs pages pass, and the API reference lists every
public name.
"""

import doctest
import importlib.util
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import pescador

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
EXAMPLE_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.py"))


def load(name):
    """Import examples/NAME.py as a module (registered, so it pickles)."""
    module_name = "pescador_example_" + name
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, EXAMPLES / (name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_has_title_and_help(name, capsys):
    # sphinx-gallery needs a docstring that starts with an underlined title
    source = (EXAMPLES / (name + ".py")).read_text()
    assert re.match(r'"""\n(.+)\n(=+)\n', source), name
    with pytest.raises(SystemExit) as exit_info:
        load(name).main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_demo_trains_well_above_chance(capsys):
    pytest.importorskip("sklearn")
    result = load("demo").main([
        "--shards", "12", "--val-shards", "3", "--rows", "200",
        "--steps", "120", "--report-every", "40"])
    out = capsys.readouterr().out
    assert result["items"] == 120 * 32
    assert result["chance"] == 0.25
    assert result["accuracy"] > 0.6
    assert out.count("items/s") == 3 + 1   # three progress lines + summary
    assert out.count("new-batch accuracy 0.") == 3
    assert result["new_batch_accuracy"] > 0.6
    assert "background ZMQStreamer" in out
    folder = re.search(r"each, in (\S+)", out).group(1)
    assert not Path(folder).exists()


def test_demo_scores_each_batch_before_training_on_it():
    class Model:
        """Records calls; predicts right only on batches it trained on."""

        def __init__(self):
            self.calls, self.seen = [], set()

        def predict(self, X):
            self.calls.append(("predict", int(X[0, 0])))
            return np.zeros(len(X)) if int(X[0, 0]) in self.seen else -1

        def partial_fit(self, X, Y, classes):
            self.calls.append(("fit", int(X[0, 0])))
            self.seen.add(int(X[0, 0]))

    batches = [dict(X=np.full((4, 2), i), Y=np.zeros(4)) for i in range(6)]
    model = Model()
    items, _, accuracy = load("demo").train(
        model, pescador.Streamer(batches), 6, [0, 1], report_every=3)
    assert items == 24
    assert model.calls == [("fit", 0)] + [
        call for i in range(1, 6) for call in (("predict", i), ("fit", i))]
    assert accuracy == 0.0   # every batch was new to the model when scored


def test_demo_runs_as_a_script():
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--shards", "6",
         "--val-shards", "2", "--rows", "100", "--steps", "30",
         "--report-every", "10"],
        capture_output=True, text=True, timeout=60, cwd=str(ROOT),
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")])))
    assert proc.returncode == 0, proc.stderr
    accuracy = float(re.search(r"validation accuracy: ([\d.]+)",
                               proc.stdout).group(1))
    assert accuracy > 0.4
    assert re.search(r"throughput: [\d,]+ items/s", proc.stdout)


def test_demo_rejects_bad_validation_split():
    with pytest.raises(SystemExit):
        load("demo").parse_args(["--shards", "4", "--val-shards", "4"])


def test_sklearn_partial_fit_recovers_coefficients():
    pytest.importorskip("sklearn")
    result = load("sklearn_partial_fit").main(["--steps", "600"])
    truth = np.arange(1.0, 6)
    np.testing.assert_allclose(result["single"], truth, atol=0.2)
    np.testing.assert_allclose(result["batched"], truth, atol=0.1)


def test_validation_chain_is_deterministic():
    result = load("validation_chain").main(["--files", "5",
                                            "--batch-size", "4"])
    assert result["first"] == result["second"]
    n_rows = len(result["first"])
    assert n_rows == sum(5 + i % 4 for i in range(5))
    assert result["steps"] == -(-n_rows // 4)
    first_epoch, second_epoch = result["epochs"]
    assert first_epoch == second_epoch
    assert sum(len(batch) for batch in first_epoch) == n_rows


def test_class_balanced_hits_the_target_weights():
    n_items = 6000
    result = load("class_balanced").main(["--items", str(n_items)])
    counts = np.round(result["balanced"] * n_items)
    # The ShuffledMux draws each item's class independently with the
    # target weights: a chi-square goodness-of-fit test at a fixed seed.
    p_value = stats.chisquare(counts, result["target"] * n_items).pvalue
    assert p_value > 1e-3
    # A single StochasticMux follows the file counts (12 of 17 are class 0).
    assert abs(result["flat"][0] - 12 / 17) < 0.08


def test_parallel_zmq_gives_the_same_batches():
    result = load("parallel_zmq").main(["--streams", "4", "--batches", "12",
                                        "--batch-size", "8", "--step-ms",
                                        "0"])
    assert len(result["local"]) == 12
    assert all(len(batch) == 8 for batch in result["local"])
    assert result["local"] == result["remote"]


def test_keras_style_data_path():
    keras_style = load("keras_style")
    x, y = next(keras_style.train_tuples(n_sources=6, batch_size=16,
                                         seed=0))
    assert x.shape == (16, keras_style.N_FEATURES) and x.dtype == np.float32
    assert y.shape == (16,) and set(y.tolist()) <= {0, 1, 2}
    val, steps = keras_style.val_tuples(n_sources=3, n_rows=10,
                                        batch_size=8)
    assert steps == 4   # ceil(30 / 8)
    epochs = [[next(val) for _ in range(steps)] for _ in range(2)]
    assert [len(y) for _, y in epochs[0]] == [8, 8, 8, 6]
    for (x1, y1), (x2, y2) in zip(*epochs):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_keras_style_main():
    argv = ["--sources", "6", "--steps-per-epoch", "40", "--epochs", "3"]
    result = load("keras_style").main(argv)
    if importlib.util.find_spec("keras") is None:
        assert result["keras"] is False
        assert result["x"].shape == (32, 8)
    else:
        assert result["accuracy"] > 0.6


def test_mux_analysis_figure(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    output = tmp_path / "analysis.png"
    result = load("mux_analysis").main([
        "--streams", "16", "--n-active", "1", "4", "16", "--rate", "1", "64",
        "--items", "2048", "--budget-setting", "4", "7",
        "--output", str(output)])
    plt.close(result["figure"])
    image = plt.imread(str(output))
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    for measure in ("tv", "repeat"):
        values = result[measure]    # rows: n_active 1, 4, 16; cols: rate
        # closer to the ideal with more active streams, at either rate
        assert np.all(np.diff(values, axis=0) < 0), (measure, values)
        # and with a smaller rate, for a small working set
        assert values[0, 0] < values[0, 1], (measure, values)
    # one active stream at a high rate: almost every item repeats
    assert result["repeat"][0, 1] > 0.9
    # the ideal: about 1 / 16 repeats
    assert abs(result["ideal"][1] - 1 / 16) < 0.02
    # The budgets of mean 8 at n_active=4 (seed 0): std sqrt(7) for the
    # Poisson ones (2.0's at rate 7 is the same draw), 0 for the constant,
    # and sqrt(6 * 1/4 + rounding) ~ 1.3 for the binomial.
    budgets = result["budgets"]
    assert budgets["None"] == budgets["poisson"]
    assert abs(budgets["poisson"]["budget_std"] - 7 ** 0.5) < 0.2
    assert budgets["constant"]["budget_std"] == 0
    assert 1.1 < budgets["binomial"]["budget_std"] < 1.6
    # Even budgets spread the sources more evenly over windows...
    # A window's spread has a relative noise of about 5% at one seed while
    # the budgets differ by about 8%: so the order is asserted on the
    # mean of four seeds, where the noise is about 2.5%.
    runs = [budgets] + [load("mux_analysis").compare_budgets(
        16, 4, 7, 16 * 2048, 32, 256, seed) for seed in (1, 2, 3)]
    spread = {dist: np.mean([run[dist]["spread"] for run in runs])
              for dist in budgets}
    assert spread["constant"] < spread["binomial"] < spread["poisson"]
    assert spread["ShuffledMux"] < 1.1
    # ...while the local mix is set by n_active and rate alone.
    tvs = [budgets[d]["tv"] for d in ("None", "constant", "binomial")]
    assert max(tvs) - min(tvs) < 0.01


def doc_pages():
    """Every page of the docs, as paths relative to docs/ (not the built
    or generated ones)."""
    return sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.rst")
                  if not any(part.startswith("_")
                             or part in ("auto_examples", "gen_modules")
                             for part in path.relative_to(DOCS).parts))


# Pages of prose, tables and reference lists, without runnable examples
# (ray.rst: its examples start a Ray cluster, too slow to run here; the
# script it shows, examples/ray_cluster.py, gets only the --help check).
PROSE_PAGES = {"analysis.rst", "api.rst", "changelog.rst", "differences.rst",
               "index.rst", "parallel.rst", "ray.rst",
               "frameworks/index.rst"}
# Pages whose examples are whole scripts (``.. code-block:: python``),
# with the framework each needs: test_framework_page_runs runs them.
SCRIPT_PAGES = {"frameworks/keras.rst": "keras",
                "frameworks/pytorch.rst": "torch",
                "frameworks/tensorflow.rst": "tensorflow"}


def test_every_page_is_tested():
    assert "frameworks/keras.rst" in doc_pages()
    assert set(doc_pages()) >= PROSE_PAGES | set(SCRIPT_PAGES)


@pytest.mark.parametrize("page", doc_pages())
def test_docs_page_doctests(page):
    result = doctest.testfile(
        str(DOCS / page), module_relative=False, verbose=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    # A page of examples must run some (or be listed as prose or scripts).
    assert (result.attempted > 0) != (page in PROSE_PAGES | set(
        SCRIPT_PAGES)), (page, result.attempted)


def code_blocks(text):
    """The ``.. code-block:: python`` blocks of an rst page, dedented."""
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)",
                        text, flags=re.MULTILINE)
    return [re.sub(r"^    ", "", block, flags=re.MULTILINE)
            for block in blocks]


def printed_outputs(script):
    """What the script's comments say it prints: a ``# ...`` after a
    ``print(...)`` on its line, or the ``# ...`` lines right after it."""
    outputs, lines = [], script.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("print("):
            continue
        if "  # " in line:
            outputs.append(line.split("  # ", 1)[1])
        following = list(itertools.takewhile(
            lambda text: text.lstrip().startswith("# "), lines[i + 1:]))
        if following:
            outputs.append("".join(text.lstrip()[2:] for text in following))
    return outputs


@pytest.mark.parametrize("page", sorted(SCRIPT_PAGES))
def test_framework_page_runs(page):
    # Every script of the page, in one fresh process (Keras fixes its
    # backend at import), prints what its comments say.
    pytest.importorskip(SCRIPT_PAGES[page])
    blocks = code_blocks((DOCS / page).read_text())
    assert len(blocks) == 2, page
    script = "\n".join(blocks)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        timeout=240, cwd=str(ROOT),
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")])))
    assert proc.returncode == 0, proc.stderr[-3000:]
    squeezed = re.sub(r"\s", "", proc.stdout)
    for expected in printed_outputs(script):
        assert re.sub(r"\s", "", expected) in squeezed, (expected,
                                                          proc.stdout)


def public_names():
    from pescador import adapters

    modules = [pescador.core, pescador.mux, pescador.maps,
               pescador.zmq_stream, pescador.util, pescador.exceptions]
    names = {name for module in modules for name in module.__all__}
    return names | {"adapters." + name for name in adapters.__all__}


def test_api_reference_lists_every_public_name():
    api = (DOCS / "api.rst").read_text()
    listed = set(re.findall(r"^   ([\w.]+)$", api, flags=re.MULTILINE))
    assert public_names() - listed == set()
