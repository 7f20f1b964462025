"""Tests for pescador.maps: buffer_stream, tuples, keras_tuples, cache."""

import pickle
from itertools import islice, takewhile

import numpy as np
import pytest
import scipy.stats

import pescador
from pescador import DataError, PescadorError, Streamer
from pescador.maps import buffer_stream, cache, keras_tuples, tuples

from . import streams


def numbered(n, shape=(2,), dtype=np.float32):
    """n items {'X': array full of i, 'Y': i}, built eagerly."""
    return [{"X": np.full(shape, i, dtype=dtype), "Y": np.int64(i)}
            for i in range(n)]


# -- buffer_stream: contents and shapes -----------------------------------

@pytest.mark.parametrize("n, size, partial, lengths", [
    (12, 4, False, [4, 4, 4]),
    (12, 4, True, [4, 4, 4]),
    (10, 4, False, [4, 4]),
    (10, 4, True, [4, 4, 2]),
    (3, 4, False, []),
    (3, 4, True, [3]),
    (0, 4, True, []),
    (5, 1, False, [1] * 5),
])
def test_buffer_lengths_and_contents(n, size, partial, lengths):
    batches = list(buffer_stream(numbered(n), size, partial=partial))
    assert [len(b["Y"]) for b in batches] == lengths
    starts = np.cumsum([0] + lengths[:-1])
    for batch, start, length in zip(batches, starts, lengths):
        expect = np.arange(start, start + length)
        assert list(batch) == ["X", "Y"]
        assert batch["X"].shape == (length, 2)
        np.testing.assert_array_equal(batch["X"], np.repeat(expect, 2)
                                      .reshape(length, 2))
        np.testing.assert_array_equal(batch["Y"], expect)


def test_buffer_axis_none_adds_leading_axis():
    items = numbered(6, shape=(2, 3))
    batch = next(buffer_stream(items, 3))
    assert batch["X"].shape == (3, 2, 3)
    assert batch["Y"].shape == (3,)
    for i in range(3):
        np.testing.assert_array_equal(batch["X"][i], items[i]["X"])


def test_buffer_axis_0_and_1_concatenate():
    items = [{"X": np.arange(6).reshape(2, 3) + 10 * i} for i in range(4)]
    along0 = list(buffer_stream(items, 2, axis=0))
    assert [b["X"].shape for b in along0] == [(4, 3), (4, 3)]
    np.testing.assert_array_equal(
        along0[1]["X"], np.concatenate([items[2]["X"], items[3]["X"]]))
    along1 = list(buffer_stream(items, 2, axis=1))
    assert [b["X"].shape for b in along1] == [(2, 6), (2, 6)]
    np.testing.assert_array_equal(
        along1[0]["X"], [[0, 1, 2, 10, 11, 12], [3, 4, 5, 13, 14, 15]])
    along_last = next(buffer_stream(items, 2, axis=-1))
    np.testing.assert_array_equal(along_last["X"], along1[0]["X"])


def test_buffer_of_buffers():
    items = numbered(26, shape=(3,))
    inner = buffer_stream(items, 4)
    outer = list(buffer_stream(inner, 3, axis=0))
    flat = list(buffer_stream(items, 12))
    assert len(outer) == len(flat) == 2
    for got, want in zip(outer, flat):
        for key in ("X", "Y"):
            np.testing.assert_array_equal(got[key], want[key])
            assert got[key].dtype == want[key].dtype
    nested = next(buffer_stream(buffer_stream(items, 4), 3))
    assert nested["X"].shape == (3, 4, 3)
    np.testing.assert_array_equal(nested["Y"], np.arange(12).reshape(3, 4))


def test_buffer_partial_batches_of_batches():
    inner = buffer_stream(numbered(10), 4, partial=True)
    sizes = [len(b["Y"]) for b in buffer_stream(inner, 2, partial=True,
                                                axis=0)]
    assert sizes == [8, 2]


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_,
                                   np.float16, np.uint8, np.complex64])
@pytest.mark.parametrize("axis", [None, 0])
def test_buffer_preserves_dtype(dtype, axis):
    items = [{"X": np.ones((2, 2), dtype=dtype)} for _ in range(3)]
    batch = next(buffer_stream(items, 3, axis=axis))
    assert batch["X"].dtype == dtype
    assert batch["X"].shape == ((3, 2, 2) if axis is None else (6, 2))


def test_buffer_scalars_become_arrays():
    items = [{"a": i, "b": float(i) / 2, "c": np.float32(i), "d": i % 2 == 0,
              "e": np.array(i, dtype=np.int16)} for i in range(4)]
    batch = next(buffer_stream(items, 4))
    assert {k: v.dtype for k, v in batch.items()} == {
        "a": np.dtype(int), "b": np.float64, "c": np.float32, "d": np.bool_,
        "e": np.int16}
    np.testing.assert_array_equal(batch["b"], [0, 0.5, 1, 1.5])
    np.testing.assert_array_equal(batch["d"], [True, False, True, False])
    assert all(v.shape == (4,) for v in batch.values())


def test_buffer_output_does_not_alias_items():
    items = numbered(2)
    batch = next(buffer_stream(items, 2))
    batch["X"][:] = -1
    assert items[0]["X"][0] == 0


def test_buffer_non_contiguous_input():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    items = [{"X": base[:, ::2] + i} for i in range(3)]
    batch = next(buffer_stream(items, 3))
    np.testing.assert_array_equal(batch["X"][2], base[:, ::2] + 2)


def test_buffer_accepts_streamer_generator_and_mapping_subclass():
    from collections import OrderedDict
    stream = Streamer(streams.arrays, 10, shape=(3,))
    assert [len(b["Y"]) for b in buffer_stream(stream, 4)] == [4, 4]
    gen = ({"X": i} for i in range(5))
    assert [b["X"].tolist() for b in buffer_stream(gen, 5)] == [[0, 1, 2, 3,
                                                                 4]]
    ordered = [OrderedDict(X=i) for i in range(2)]
    assert next(buffer_stream(ordered, 2))["X"].tolist() == [0, 1]


def test_buffer_wrapped_in_streamer_is_reusable_and_pickles():
    source = Streamer(streams.arrays, 9, shape=(2,))
    batches = Streamer(buffer_stream, source, 4, partial=True)
    first = [b["Y"].tolist() for b in batches]
    assert first == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]
    assert [b["Y"].tolist() for b in batches] == first
    clone = pickle.loads(pickle.dumps(batches))
    assert [b["Y"].tolist() for b in clone] == first
    assert [b["Y"].tolist() for b in batches.cycle(max_iter=4)] == (
        first + first[:1])


def test_buffer_is_lazy():
    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield {"X": i}

    stream = buffer_stream(source(), 3)
    assert pulled == []
    next(stream)
    assert pulled == [0, 1, 2]


# -- buffer_stream: bad input ----------------------------------------------

@pytest.mark.parametrize("size", [0, -1, 2.0, "4", None, True, [4]])
def test_buffer_bad_size_at_call_time(size):
    with pytest.raises(PescadorError, match="buffer_size"):
        buffer_stream(numbered(4), size)


@pytest.mark.parametrize("axis", [1.0, "0", True, (0,)])
def test_buffer_bad_axis_at_call_time(axis):
    with pytest.raises(PescadorError, match="axis"):
        buffer_stream(numbered(4), 2, axis=axis)


def test_buffer_not_iterable_at_call_time():
    with pytest.raises(PescadorError, match="iterable"):
        buffer_stream(42, 2)


@pytest.mark.parametrize("items, culprit", [
    ([1, 2, 3], "item 0 is a int"),
    ([{"X": 1}, [1]], "item 1 is a list"),
    ([{"X": 1}, {"X": 2}, {"X": 3}, "abc"], "item 3 is a str"),
])
def test_buffer_items_not_dicts(items, culprit):
    with pytest.raises(DataError, match=culprit):
        list(buffer_stream(items, 2, partial=True))


@pytest.mark.parametrize("second", [{"Y": 1}, {"X": 1, "Y": 2}, {}])
def test_buffer_keys_differ_from_first(second):
    items = [{"X": 0}, {"X": 1}, {"X": 2}, second]
    with pytest.raises(DataError, match=r"item 3 has keys .* first item "
                                        r"had keys \['X'\]"):
        list(buffer_stream(items, 2))


def test_buffer_shapes_cannot_stack():
    items = [{"X": np.zeros(3)}, {"X": np.zeros(3)}, {"X": np.zeros(4)}]
    with pytest.raises(DataError) as info:
        next(buffer_stream(items, 3))
    message = str(info.value)
    assert "'X'" in message and "(3,) x 2" in message and "(4,) x 1" in message


@pytest.mark.parametrize("items, axis, expect", [
    ([{"X": np.zeros((2, 3))}, {"X": np.zeros((2, 4))}], 0, r"\(2, 4\)"),
    ([{"X": np.zeros((2, 3))}, {"X": np.zeros((3, 3))}], 1, r"\(3, 3\)"),
    ([{"X": np.zeros(2)}, {"X": np.zeros(2)}], 1, r"axis=1.*out of bounds"),
    ([{"X": 1.0}, {"X": 2.0}], 0, r"\(\) x 2"),
])
def test_buffer_shapes_cannot_concatenate(items, axis, expect):
    with pytest.raises(DataError, match=r"key 'X'.*" + expect):
        next(buffer_stream(items, 2, axis=axis))


def test_buffer_ragged_values():
    items = [{"X": [1, 2]}, {"X": [[1], [2, 3]]}]
    with pytest.raises(DataError, match="key 'X'"):
        next(buffer_stream(items, 2))


# -- tuples ---------------------------------------------------------------

def test_tuples_values_in_key_order():
    items = numbered(3)
    out = list(tuples(items, "Y", "X"))
    assert [len(t) for t in out] == [2, 2, 2]
    for i, (y, x) in enumerate(out):
        assert y is items[i]["Y"] and x is items[i]["X"]
    assert list(tuples(items, "Y")) == [(0,), (1,), (2,)]
    assert list(tuples(items, "Y", "Y")) == [(0, 0), (1, 1), (2, 2)]


def test_tuples_of_batches_from_streamer():
    batches = buffer_stream(Streamer(streams.arrays, 8, shape=(5,)), 4)
    shapes = [(x.shape, y.shape) for x, y in tuples(batches, "X", "Y")]
    assert shapes == [((4, 5), (4,))] * 2


def test_tuples_bad_input():
    with pytest.raises(PescadorError, match="at least one key"):
        tuples(numbered(2))
    with pytest.raises(PescadorError, match="iterable"):
        tuples(None, "X")
    with pytest.raises(DataError, match="item 1 is a tuple"):
        list(tuples([{"X": 1}, (1, 2)], "X"))
    with pytest.raises(KeyError, match="'Z'.*item 1"):
        list(tuples([{"X": 1, "Z": 1}, {"X": 2}], "X", "Z"))


# -- keras_tuples -----------------------------------------------------------

ITEM = {"X": np.arange(2), "W": np.ones(3), "Y": np.zeros(1), "V": 7}


@pytest.mark.parametrize("inputs, outputs, expect", [
    ("X", "Y", (ITEM["X"], ITEM["Y"])),
    ("X", None, (ITEM["X"], None)),
    (None, "Y", (None, ITEM["Y"])),
    (["X", "W"], "Y", ((ITEM["X"], ITEM["W"]), ITEM["Y"])),
    ("X", ["Y", "V"], (ITEM["X"], (ITEM["Y"], ITEM["V"]))),
    (["X"], ["Y"], ((ITEM["X"],), (ITEM["Y"],))),
    (["W"], None, ((ITEM["W"],), None)),
    (None, ["Y", "X"], (None, (ITEM["Y"], ITEM["X"]))),
    (("X", "W"), None, ((ITEM["X"], ITEM["W"]), None)),
    ([], "Y", ((), ITEM["Y"])),
])
def test_keras_tuples_sides(inputs, outputs, expect):
    out = list(keras_tuples([ITEM, ITEM], inputs=inputs, outputs=outputs))
    assert len(out) == 2
    for pair in out:
        assert isinstance(pair, tuple) and len(pair) == 2
        for got, want in zip(pair, expect):
            if isinstance(want, tuple):
                # A list of keys gives a tuple (Keras' TensorFlow backend
                # rejects lists), even for one key.
                assert type(got) is tuple and len(got) == len(want)
                assert all(g is w for g, w in zip(got, want))
            else:
                assert got is want


def test_keras_tuples_talk_snippet_on_streamer():
    def data(n):
        for i in range(n):
            yield dict(X=np.full(3, i), Y=i % 2)

    train_gen = Streamer(data, 4)
    pairs = list(pescador.maps.keras_tuples(train_gen, inputs=["X"],
                                            outputs=["Y"]))
    assert [(x[0].tolist(), y) for x, y in pairs] == [
        ([i] * 3, (i % 2,)) for i in range(4)]
    # A Streamer of keras tuples restarts: Keras loops over it by epochs.
    epochs = Streamer(keras_tuples, train_gen, inputs="X", outputs="Y")
    assert len(list(epochs)) == len(list(epochs)) == 4


def test_keras_tuples_talk_snippet_on_mux():
    streams_ = [Streamer(streams.arrays, 50, shape=(2,), seed=s)
                for s in range(3)]
    train_gen = pescador.mux.ShuffledMux(streams_, random_state=1)
    pairs = list(islice(pescador.maps.keras_tuples(
        train_gen, inputs=["X"], outputs=["Y"]), 20))
    assert len(pairs) == 20
    assert all(len(x) == len(y) == 1 and x[0].shape == (2,)
               and y[0].dtype == np.int64 for x, y in pairs)


@pytest.mark.parametrize("inputs, outputs", [(None, None), ([], None),
                                             ([], [])])
def test_keras_tuples_needs_a_side(inputs, outputs):
    with pytest.raises(PescadorError, match="inputs, outputs or both"):
        keras_tuples([ITEM], inputs=inputs, outputs=outputs)


def test_keras_tuples_bad_input():
    with pytest.raises(PescadorError, match="inputs"):
        keras_tuples([ITEM], inputs={"X"})
    with pytest.raises(PescadorError, match="iterable"):
        keras_tuples(3.5, inputs="X")
    with pytest.raises(DataError, match="item 0 is a ndarray"):
        list(keras_tuples([np.zeros(3)], inputs="X"))
    with pytest.raises(KeyError, match="'Q'"):
        list(keras_tuples([ITEM], inputs="X", outputs=["Y", "Q"]))


# -- cache ----------------------------------------------------------------

def first_occurrences(seq):
    seen = set()
    return [x for x in seq if not (x in seen or seen.add(x))]


@pytest.mark.parametrize("source", [
    lambda: range(200), lambda: list(range(200)),
    lambda: iter(range(200)), lambda: Streamer(streams.count, 200)])
def test_cache_any_iterable(source):
    out = list(cache(source(), 8, prob=0.4, random_state=3))
    assert out[:8] == list(range(8))
    assert set(out) == set(range(200))
    # Every source item is pulled once, in order, and yielded when pulled.
    assert first_occurrences(out) == list(range(200))
    assert len(out) > 300


def test_cache_reused_items_were_in_the_stream_before():
    out = list(cache(range(500), 5, prob=0.3, random_state=9))
    newest = -1
    for item in out:
        assert item <= newest + 1
        newest = max(newest, item)


def test_cache_prob_one_is_the_source():
    assert list(cache(range(100), 7, prob=1, random_state=0)) == list(
        range(100))
    assert list(cache(range(100), 7, prob=1.0)) == list(range(100))


def test_cache_short_source():
    assert list(cache(range(3), 10, random_state=0)) == [0, 1, 2]
    assert list(cache([], 2, random_state=0)) == []


def test_cache_reproducible_with_seed():
    def run(state):
        return list(cache(Streamer(streams.count, 300), 6, prob=0.3,
                          random_state=state))
    assert run(11) == run(11)
    assert run(11) != run(12)
    assert run(np.random.RandomState(4)) == run(np.random.RandomState(4))
    assert run(np.random.default_rng(4)) == run(np.random.default_rng(4))


def test_cache_wrapped_in_streamer_replays_each_epoch():
    stream = Streamer(cache, range(50), 4, prob=0.5, random_state=5)
    assert list(stream) == list(stream)


@pytest.mark.parametrize("prob", [0.2, 0.5, 0.9])
def test_cache_reuse_rate(prob):
    # After the cache is full, each step yields a fresh source item with
    # probability prob: the number of fresh items among n steps is
    # Binomial(n, prob). Tolerance: a two-sided binomial test at a fixed
    # seed must give p > 1e-3, and the rate must be within 0.02 of 1 - prob.
    n_cache, n_source = 16, 4000
    out = list(cache(range(n_source), n_cache, prob=prob, random_state=0))
    steps = out[n_cache:]
    fresh = n_source - n_cache
    assert first_occurrences(x for x in steps if x >= n_cache) == list(
        range(n_cache, n_source))
    result = scipy.stats.binomtest(fresh, len(steps), prob)
    assert result.pvalue > 1e-3
    assert abs((len(steps) - fresh) / len(steps) - (1 - prob)) < 0.02


def test_cache_slots_are_drawn_uniformly():
    # Until the first replacement, slot i holds source item i, so the items
    # yielded show which slots were picked. Pooled over 40 fixed seeds, the
    # picks must pass a chi-square test for uniformity with p > 1e-3.
    n_cache = 4
    counts = np.zeros(n_cache, dtype=int)
    for seed in range(40):
        out = cache(range(10 ** 4), n_cache, prob=0.01, random_state=seed)
        early = list(takewhile(lambda x: x < n_cache,
                               islice(out, n_cache, None)))
        counts += np.bincount(early, minlength=n_cache)
    assert counts.sum() > 2000
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("n_cache", [0, -3, 2.0, "4", None, True])
def test_cache_bad_n_cache(n_cache):
    with pytest.raises(PescadorError, match="n_cache"):
        cache(range(10), n_cache)


@pytest.mark.parametrize("prob", [0, -0.1, 1.5, float("nan"), "0.5", None,
                                  True])
def test_cache_bad_prob(prob):
    with pytest.raises(PescadorError, match="prob"):
        cache(range(10), 3, prob=prob)


def test_cache_bad_random_state_and_stream():
    with pytest.raises(PescadorError, match="random_state"):
        cache(range(10), 3, random_state="seed")
    with pytest.raises(PescadorError, match="iterable"):
        cache(17, 3)


# -- all maps ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda s: buffer_stream(s, 2), lambda s: tuples(s, "X"),
    lambda s: keras_tuples(s, "X"), lambda s: cache(s, 2, random_state=0)])
def test_maps_return_generators_and_are_exported(make):
    import types
    gen = make(numbered(4))
    assert isinstance(gen, types.GeneratorType)
    for name in ("buffer_stream", "tuples", "keras_tuples", "cache"):
        assert getattr(pescador, name) is getattr(pescador.maps, name)
