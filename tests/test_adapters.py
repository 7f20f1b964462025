"""Tests for pescador.adapters against the real PyTorch, Keras 3 and TF.

Each framework's tests skip when it is not installed (CI installs all three
from .ci/requirements-frameworks.txt); the ImportError tests run anywhere.
"""

import json
import os
import pickle
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

# Keras reads its backend once, when first imported.
os.environ.setdefault("KERAS_BACKEND", "torch")

import pescador  # noqa: E402
import pescador.adapters  # noqa: E402
from pescador import (ChainMux, DataError, PescadorError,  # noqa: E402
                      StochasticMux, Streamer, buffer_stream, keras_tuples)

from . import streams  # noqa: E402
from .test_split import all_counts, chain_of_counts  # noqa: E402

W_TRUE = np.array([[1.5], [-2.0], [0.5]], dtype=np.float32)


def regression(seed, shift):
    """Noisy samples of y = x @ W_TRUE + 1, x drawn around ``shift``."""
    rng = np.random.RandomState(seed)
    while True:
        x = (rng.standard_normal(3) + shift).astype(np.float32)
        noise = np.float32(0.01 * rng.standard_normal())
        yield {"x": x, "y": x @ W_TRUE + 1 + noise}


def regression_batches(batch_size=16, seed=0):
    """Batches from a StochasticMux over four regression streams."""
    mux = StochasticMux([Streamer(regression, i, 0.5 * i) for i in range(4)],
                        n_active=2, rate=8, random_state=seed)
    return Streamer(buffer_stream, mux, batch_size)


def from_items(items):
    """Yield the given objects themselves (Streamer args are not copied)."""
    yield from items


def mixed_items():
    return [{"f32": np.arange(6, dtype=np.float32).reshape(2, 3) + i,
             "f64": np.array([0.25, -1.5]) * i,
             "i64": np.arange(3, dtype=np.int64) - i,
             "u8": np.array([255, i], dtype=np.uint8),
             "flag": np.array([True, i % 2 == 0])}
            for i in range(3)]


# -- import isolation -------------------------------------------------------

@pytest.mark.parametrize("name, module, extra", [
    ("TorchDataset", "torch", "torch"),
    ("KerasPyDataset", "keras", "keras"),
    ("tf_dataset", "tensorflow", "tensorflow"),
    ("infer_signature", "tensorflow", "tensorflow"),
])
def test_missing_framework_names_the_extra(monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    for private in ("_torch", "_keras", "_tf"):
        monkeypatch.delitem(sys.modules, "pescador.adapters." + private,
                            raising=False)
    with pytest.raises(ImportError) as raised:
        getattr(pescador.adapters, name)
    # The extra of this package (`pip install pescador[...]` would fetch
    # another package from the index).
    assert str(raised.value).startswith("pescador.adapters." + name)
    assert str(raised.value).endswith(
        'pip install ".[{}]" in pescador\'s source folder'.format(extra))


def test_unknown_attribute_is_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchAdapter"):
        pescador.adapters.NoSuchAdapter


def test_import_pescador_imports_no_framework():
    code = ("import sys, pescador, pescador.adapters; "
            "from pescador.adapters import *; "
            "print(sorted(m for m in ('torch', 'keras', 'tensorflow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# -- shard (framework-free; its tests are in tests/test_split.py) -------------

def test_adapters_shard_is_pescador_shard():
    assert pescador.adapters.shard is pescador.shard
    assert [list(pescador.adapters.shard(chain_of_counts(2), i, 2))
            for i in range(2)] == [[0, 1, 2, 3], [100, 101, 102, 103]]


# -- PyTorch ------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_torch_values_dtypes_and_shared_memory(torch):
    items = mixed_items()
    dataset = pescador.adapters.TorchDataset(Streamer(from_items, items))
    out = list(dataset)
    assert len(out) == 3
    for got, want in zip(out, items):
        assert set(got) == set(want)
        for key, array in want.items():
            assert isinstance(got[key], torch.Tensor)
            assert str(got[key].dtype) == "torch." + array.dtype.name
            np.testing.assert_array_equal(got[key].numpy(), array)
            assert got[key].data_ptr() == array.ctypes.data  # no copy


def test_torch_tuples_readonly_and_negative_strides(torch):
    readonly = np.arange(4.0)
    readonly.flags.writeable = False
    item = (np.arange(5)[::-1], [readonly, "label", 7], np.float32(2.5))
    (got,) = pescador.adapters.TorchDataset([item])
    assert got[0].tolist() == [4, 3, 2, 1, 0]
    assert got[1][0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert got[1][1:] == ["label", 7]
    assert got[2].dtype == torch.float32 and got[2].item() == 2.5


def test_torch_object_array_is_data_error(torch):
    dataset = pescador.adapters.TorchDataset(
        [{"x": np.array([None, 1], dtype=object)}])
    with pytest.raises(DataError, match=r"item\['x'\].*object"):
        list(dataset)


def test_torch_batch_size_none_takes_pescador_batches(torch):
    batches = Streamer(buffer_stream, Streamer(streams.arrays, 6), 3)
    loader = torch.utils.data.DataLoader(
        pescador.adapters.TorchDataset(batches), batch_size=None)
    got = list(loader)
    want = list(buffer_stream(streams.arrays(6), 3))
    assert len(got) == 2
    for g, w in zip(got, want):
        assert g["X"].shape == (3, 3) and g["X"].dtype == torch.float32
        np.testing.assert_array_equal(g["X"].numpy(), w["X"])
        assert g["Y"].tolist() == w["Y"].tolist()


def test_torch_trains_a_linear_model_from_a_mux(torch):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dataset = pescador.adapters.TorchDataset(regression_batches(),
                                             max_iter=60)
    losses = []
    for batch in torch.utils.data.DataLoader(dataset, batch_size=None):
        loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.01 * np.mean(losses[:5])
    np.testing.assert_allclose(model.weight.detach().numpy(), W_TRUE.T,
                               atol=0.05)


def loader_items(torch, dataset, num_workers=2, **kwargs):
    loader = torch.utils.data.DataLoader(dataset, batch_size=None,
                                         num_workers=num_workers, **kwargs)
    return [int(item) for item in loader]


def test_torch_workers_split_a_chain_mux(torch):
    dataset = pescador.adapters.TorchDataset(chain_of_counts(5))
    assert Counter(loader_items(torch, dataset)) == all_counts(5)


def test_torch_workers_split_an_exhaustive_stochastic_mux(torch):
    mux = StochasticMux([Streamer(streams.count, 4, start=100 * i)
                         for i in range(5)],
                        n_active=2, rate=None, mode="exhaustive",
                        random_state=3)
    dataset = pescador.adapters.TorchDataset(mux)
    assert Counter(loader_items(torch, dataset)) == all_counts(5)


def test_torch_workers_share_max_iter_of_an_infinite_mux(torch):
    mux = StochasticMux([Streamer(streams.constant, i) for i in range(4)],
                        n_active=2, rate=2, random_state=0)
    dataset = pescador.adapters.TorchDataset(mux, max_iter=11)
    items = loader_items(torch, dataset)
    assert len(items) == 11
    # Worker 0 owns streamers 0 and 2, worker 1 owns 1 and 3.
    parity = [item % 2 for item in items]
    assert sorted(parity) == [0] * 6 + [1] * 5


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stream, why, length", [
    (Streamer(streams.count, 4), "no mux to split", 4),
    (ChainMux(Streamer(streams.count, 2, start=10 * i) for i in range(4)),
     "lazy source of streamers", 8),
])
def test_torch_workers_refuse_a_stream_they_cannot_split(torch, stream, why,
                                                         length):
    # Before: each worker ran the whole stream, yielding every item twice.
    dataset = pescador.adapters.TorchDataset(stream)
    message = loader_error(torch, dataset)
    assert message is not None
    assert "PescadorError" in message and re.search(why, message)
    assert len(list(dataset)) == length  # in one process: no split needed


def loader_error(torch, dataset):
    """The message of the error a 2-worker DataLoader re-raises, or None.

    The error's traceback is dropped so that the loader's iterator is freed
    at once: freed later by the garbage collector, it leaves each worker
    waiting 5 s (DataLoader's own join timeout) before terminating it.
    """
    iterator = iter(torch.utils.data.DataLoader(dataset, batch_size=None,
                                                num_workers=2))
    try:
        next(iterator)
    except Exception as error:  # noqa: BLE001 - the type is checked after
        error.__traceback__ = None
        return "{}: {}".format(type(error).__name__, error)
    finally:
        del iterator
    return None


def test_torch_ranks_refuse_a_stream_they_cannot_split(torch):
    with pytest.raises(PescadorError, match="no mux to split"):
        pescador.adapters.TorchDataset(Streamer(streams.count, 4), rank=0,
                                       world_size=2)
    dataset = pescador.adapters.TorchDataset(Streamer(streams.count, 4),
                                             rank=0, world_size=1)
    assert [int(x) for x in dataset] == [0, 1, 2, 3]


def test_torch_one_worker_runs_a_plain_streamer_whole(torch):
    plain = pescador.adapters.TorchDataset(Streamer(streams.count, 4))
    assert loader_items(torch, plain, num_workers=1) == [0, 1, 2, 3]
    seeded = pescador.adapters.TorchDataset(Streamer(global_randints, 8))
    batches = list(torch.utils.data.DataLoader(seeded, batch_size=8,
                                               num_workers=1))
    assert len(batches) == 1 and len(set(batches[0].tolist())) == 8


def global_randints(n):
    """n draws from numpy's global generator."""
    for _ in range(n):
        yield np.random.randint(2**31)


def test_torch_rank_shares_are_disjoint_and_complete(torch):
    mux = chain_of_counts(7)
    shares = [list(map(int, pescador.adapters.TorchDataset(
        mux, rank=rank, world_size=3))) for rank in range(3)]
    assert [len(share) for share in shares] == [12, 8, 8]
    assert Counter(sum(shares, [])) == all_counts(7)


def test_torch_ranks_and_workers_together(torch):
    # 2 ranks x 2 workers = 4 shares: rank 0 owns streamers i % 4 in {0, 1}.
    mux = chain_of_counts(9)
    shares = [loader_items(torch, pescador.adapters.TorchDataset(
        mux, rank=rank, world_size=2)) for rank in range(2)]
    assert Counter(shares[0]) == Counter(
        100 * i + j for i in (0, 1, 4, 5, 8) for j in range(4))
    assert Counter(shares[0] + shares[1]) == all_counts(9)


@pytest.mark.parametrize("rank, world_size", [
    (2, 2), (-1, 2), (0, 0), (None, 2), (0.0, 1), (True, 2)])
def test_torch_rejects_bad_rank(torch, rank, world_size):
    with pytest.raises(PescadorError, match="rank"):
        pescador.adapters.TorchDataset(chain_of_counts(), rank=rank,
                                       world_size=world_size)


def test_torch_rejects_more_ranks_than_streamers(torch):
    with pytest.raises(PescadorError, match="2 streamers.*world_size=3"):
        pescador.adapters.TorchDataset(chain_of_counts(2), rank=0,
                                       world_size=3)


def test_torch_len_is_max_iter(torch):
    from torch.utils.data import DataLoader

    dataset = pescador.adapters.TorchDataset(
        ChainMux([Streamer(range(100))]), max_iter=10, cycle=True)
    assert len(dataset) == 10
    loader = DataLoader(dataset, batch_size=4)
    assert len(loader) == 3
    assert sum(len(batch) for batch in loader) == 10
    with pytest.raises(TypeError, match="max_iter"):
        len(pescador.adapters.TorchDataset(range(3)))


def test_torch_set_epoch_varies_seeded_mux_reproducibly(torch):
    def epoch_items(epoch):
        mux = StochasticMux([Streamer(streams.constant, i)
                             for i in range(4)],
                            n_active=2, rate=2, random_state=1)
        dataset = pescador.adapters.TorchDataset(mux, max_iter=40)
        dataset.set_epoch(epoch)
        return loader_items(torch, dataset)

    assert epoch_items(1) == epoch_items(1)
    assert epoch_items(1) != epoch_items(2)
    with pytest.raises(PescadorError, match="epoch=1.5"):
        pescador.adapters.TorchDataset([1]).set_epoch(1.5)


# -- Keras 3 ------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def keras_model(keras):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def test_keras_pydataset_values_and_dtypes(keras):
    items = mixed_items()
    data = pescador.adapters.KerasPyDataset(
        Streamer(from_items, items), num_batches=4, inputs=["f32", "u8"],
        outputs="i64")
    assert isinstance(data, keras.utils.PyDataset)
    assert len(data) == data.num_batches == 4
    for i in range(4):  # the stream cycles
        x, y = data[i]
        want = items[i % 3]
        assert x[0] is want["f32"] and x[1] is want["u8"]
        assert y is want["i64"] and y.dtype == np.int64


def test_keras_pydataset_threads_never_duplicate(keras):
    data = pescador.adapters.KerasPyDataset(chain_of_counts(5), workers=4)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(data.__getitem__, range(20)))
    assert Counter(got) == all_counts(5)


def test_keras_fit_from_keras_tuples(keras):
    model = keras_model(keras)
    stream = keras_tuples(regression_batches().cycle(), "x", "y")
    history = model.fit(stream, steps_per_epoch=10, epochs=4, verbose=0,
                        shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < 0.01 * losses[0]


def test_keras_fit_from_pydataset_with_workers(keras):
    model = keras_model(keras)
    data = pescador.adapters.KerasPyDataset(
        regression_batches(), num_batches=10, inputs="x", outputs="y",
        workers=2)
    losses = model.fit(data, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < 0.01 * losses[0]
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), W_TRUE,
                               atol=0.05)


def test_keras_pydataset_restarts_in_a_new_process_and_pickles(keras):
    data = pescador.adapters.KerasPyDataset(Streamer(streams.count, 5),
                                            num_batches=2)
    assert [data[i] for i in range(3)] == [0, 1, 2]
    np.random.seed(0)
    after_seed_0 = np.random.randint(2**31)
    np.random.seed(0)
    data._pid = -1  # as seen from a forked worker process
    assert [data[i] for i in range(2)] == [0, 1]  # its own copy
    assert np.random.randint(2**31) != after_seed_0  # reseeded
    copy = pickle.loads(pickle.dumps(data))
    assert [copy[i] for i in range(2)] == [0, 1] and len(copy) == 2


@pytest.mark.parametrize("num_batches", [0, -1, 2.0, True, "3"])
def test_keras_rejects_bad_num_batches(keras, num_batches):
    with pytest.raises(PescadorError, match="num_batches"):
        pescador.adapters.KerasPyDataset([(1, 2)], num_batches=num_batches)


def test_keras_errors(keras):
    with pytest.raises(PescadorError, match="inputs"):
        pescador.adapters.KerasPyDataset([{}], inputs=[], outputs=[])
    with pytest.raises(PescadorError, match="yields no batches"):
        pescador.adapters.KerasPyDataset([])[0]
    with pytest.raises(TypeError, match="infinite"):
        len(pescador.adapters.KerasPyDataset([(1, 2)]))


@pytest.mark.parametrize("backend, module", [
    ("torch", "torch"), ("jax", "jax"), ("tensorflow", "tensorflow")])
def test_keras_fit_on_every_backend(keras, backend, module):
    # The talk's `fit(keras_tuples(gen, inputs=['X'], outputs=['Y']))`,
    # single keys, two inputs, and KerasPyDataset(inputs=[...]), each in a
    # process of its own, since Keras fixes its backend at import.
    pytest.importorskip(module)
    proc = subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(__file__),
                                      "keras_fit.py")],
        capture_output=True, text=True, timeout=180,
        env=dict(os.environ, KERAS_BACKEND=backend))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert sorted(result["losses"]) == sorted([
        "talk idiom", "single keys", "two inputs",
        "KerasPyDataset two inputs"])
    for case, (first, last) in result["losses"].items():
        assert last < 0.01 * first, (case, first, last)


# -- tf.data ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def test_tf_values_dtypes_and_inferred_signature(tf):
    items = mixed_items()
    data = pescador.adapters.tf_dataset(Streamer(from_items, items))
    spec = data.element_spec
    assert spec["f32"] == tf.TensorSpec((None, 3), tf.float32)
    assert spec["f64"] == tf.TensorSpec((None,), tf.float64)
    assert spec["u8"].dtype == tf.uint8 and spec["flag"].dtype == tf.bool
    got = list(data)
    assert len(got) == 3
    for g, want in zip(got, items):
        for key, array in want.items():
            assert g[key].dtype.as_numpy_dtype == array.dtype
            np.testing.assert_array_equal(g[key].numpy(), array)


def test_tf_keras_tuples_with_lists_strings_and_scalars(tf):
    items = [{"a": np.arange(2, dtype=np.int32) + i, "s": np.array(["u"]),
              "y": np.float32(i)} for i in range(2)]
    stream = Streamer(keras_tuples, items, ["a", "s"], "y")
    data = pescador.adapters.tf_dataset(stream)
    assert data.element_spec == (
        (tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.string)),
        tf.TensorSpec((), tf.float32))
    got = [((a.numpy().tolist(), s.numpy().tolist()), y.numpy())
           for (a, s), y in data]
    assert got == [(([0, 1], [b"u"]), 0.0), (([1, 2], [b"u"]), 1.0)]


def test_tf_short_last_batch_and_explicit_signature(tf):
    batches = Streamer(buffer_stream, Streamer(streams.arrays, 5), 2,
                       partial=True)
    inferred = pescador.adapters.tf_dataset(batches)
    assert [b["X"].shape[0] for b in inferred] == [2, 2, 1]
    signature = {"X": tf.TensorSpec((None, 3), tf.float32),
                 "Y": tf.TensorSpec((None,), tf.int64)}
    given = pescador.adapters.tf_dataset(batches, output_signature=signature,
                                         cycle=True, max_iter=5)
    assert [b["Y"].numpy().tolist() for b in given] == [
        [0, 1], [2, 3], [4], [0, 1], [2, 3]]


def test_tf_trains_a_linear_model_from_a_mux(tf):
    data = pescador.adapters.tf_dataset(regression_batches(), max_iter=60)
    w = tf.Variable(tf.zeros((3, 1)))
    b = tf.Variable(tf.zeros(1))
    optimizer_lr = 0.1
    losses = []
    for batch in data:
        with tf.GradientTape() as tape:
            pred = tf.matmul(batch["x"], w) + b
            loss = tf.reduce_mean((pred - batch["y"]) ** 2)
        for var, grad in zip((w, b), tape.gradient(loss, (w, b))):
            var.assign_sub(optimizer_lr * grad)
        losses.append(float(loss))
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.01 * np.mean(losses[:5])
    np.testing.assert_allclose(w.numpy(), W_TRUE, atol=0.05)


def test_tf_errors(tf):
    with pytest.raises(PescadorError, match="yields no items"):
        pescador.adapters.tf_dataset([])
    with pytest.raises(PescadorError, match=r"item\[1\] = None"):
        pescador.adapters.tf_dataset([(np.zeros(2), None)])
    with pytest.raises(DataError, match=r"item\['x'\].*objects"):
        pescador.adapters.infer_signature({"x": np.array([{}])})
    with pytest.raises(PescadorError, match="max_iter"):
        pescador.adapters.tf_dataset([1], max_iter=-1)
