"""Tests for pescador.mux.

Deterministic behaviour, seeds and copies, nesting, bad input, Mux and
pickling; the statistical tests of the random muxes are in
test_mux_stats.py.
"""

import collections
import copy
import json
import pickle
import warnings

import numpy as np
import pytest

import pescador
from pescador import (BaseMux, ChainMux, Mux, PescadorError, RoundRobinMux,
                      ShuffledMux, StochasticMux, Streamer)

from .streams import constant, count, fail_after, labelled

P_MIN = 1e-3


class Tracker:
    """Counts the activations of tracked streams: how many are open at once
    per label (``peak``), how many started, and how many items each closed
    activation yielded (``budgets``). Passed as a positional argument, which
    activations share (they deep-copy only kwargs)."""

    def __init__(self):
        self.open = collections.Counter()
        self.peak = collections.Counter()
        self.started = collections.Counter()
        self.budgets = collections.defaultdict(list)


def tracked(tracker, label, n=None):
    """Yield ``label`` n times (forever if None), recording the activation."""
    tracker.open[label] += 1
    tracker.started[label] += 1
    tracker.peak[label] = max(tracker.peak[label], tracker.open[label])
    given = 0
    try:
        while n is None or given < n:
            given += 1
            yield label
    finally:
        tracker.open[label] -= 1
        tracker.budgets[label].append(given)


def constants(labels):
    return [Streamer(constant, label) for label in labels]


def take(mux, n):
    return list(mux.iterate(max_iter=n))


# -- deterministic muxes: exact outputs --------------------------------------

@pytest.mark.parametrize("cls, mode, n, expected", [
    (RoundRobinMux, "exhaustive", None, "ax1byc"),
    (RoundRobinMux, "cycle", 14, "ax1bycax1bycax"),
    (ChainMux, "exhaustive", None, "abcxy1"),
    (ChainMux, "cycle", 14, "abcxy1abcxy1ab"),
])
def test_deterministic_muxes_exact(cls, mode, n, expected):
    mux = cls(["abc", "", "xy", "1"], mode=mode)
    assert "".join(mux(max_iter=n)) == expected
    # A second pass is identical: the mux holds no iteration state.
    assert "".join(mux(max_iter=n)) == expected


def test_round_robin_permuted_cycle_rotates_each_pass_in_a_new_order():
    words = ["a", "bb", "ccc"]
    mux = RoundRobinMux(words, mode="permuted_cycle", random_state=3)
    out = "".join(mux(max_iter=6 * 20))
    passes = [out[i:i + 6] for i in range(0, len(out), 6)]
    for chunk in passes:
        # each pass is the strict rotation of the words in some order
        assert sorted(chunk) == sorted("abbccc")
        order = list(dict.fromkeys(chunk[:3]))
        expected = "".join(RoundRobinMux([words["abc".index(c)]
                                          for c in order]))
        assert chunk == expected
    assert len(set(p[:3] for p in passes)) > 1
    # and exactly, for a given seed
    mux = RoundRobinMux(["ab", "cd", "ef"], mode="permuted_cycle",
                        random_state=0)
    assert "".join(mux(max_iter=18)) == "eacfbdcaedbfeacfbd"


def test_round_robin_ends_when_a_pass_yields_nothing():
    assert list(RoundRobinMux([[], ""], mode="cycle")) == []
    assert list(RoundRobinMux([[]], mode="permuted_cycle")) == []


def test_chain_of_a_generator_is_lazy_and_one_shot():
    made = []

    def streamers():
        for word in ["ab", "", "cd"]:
            made.append(word)
            yield Streamer(word)

    mux = ChainMux(streamers())
    it = mux.iterate()
    assert next(it) == "a" and made == ["ab"]
    assert "".join(it) == "bcd"
    assert list(mux) == []


def test_chain_cycle_of_a_generator_remembers_its_streamers():
    mux = ChainMux((Streamer(w) for w in ["ab", "c"]), mode="cycle")
    assert "".join(mux(max_iter=8)) == "abcabcab"


def test_chain_of_a_streamer_of_streamers_is_recreated_each_time():
    def streamers():
        yield from (Streamer(w) for w in ["ab", "c"])

    mux = ChainMux(Streamer(streamers), mode="cycle")
    assert "".join(mux(max_iter=7)) == "abcabca"
    mux = ChainMux(Streamer(streamers))
    assert "".join(mux) == "abc"
    assert "".join(mux) == "abc"


@pytest.mark.parametrize("mode", ["exhaustive", "cycle"])
def test_chain_of_nothing_yields_nothing(mode):
    assert list(ChainMux([], mode=mode)) == []
    assert list(ChainMux(iter([]), mode=mode)) == []
    assert list(ChainMux([[], ""], mode=mode)) == []


def test_chain_opens_one_streamer_at_a_time():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i, 3) for i in range(5)]
    out = list(ChainMux(streamers, mode="cycle")(max_iter=40))
    assert out == ([i for i in range(5) for _ in range(3)] * 3)[:40]
    assert max(tracker.peak.values()) == 1
    assert sum(tracker.open.values()) == 0


# -- seeds, copies, epochs, concurrency -------------------------------------

def seeded_muxes(seed=3):
    return [
        ShuffledMux(constants("abcd"), weights=[1, 2, 3, 4],
                    random_state=seed),
        StochasticMux(constants("abcdef"), 3, 4, random_state=seed),
        StochasticMux(constants("abcdef"), 3, 4, mode="single_active",
                      random_state=np.random.RandomState(seed)),
        StochasticMux(constants("abcdef"), 3, 4,
                      random_state=np.random.default_rng(seed)),
        RoundRobinMux(["ab", "cde", "f"], mode="permuted_cycle",
                      random_state=seed),
        ShuffledMux([StochasticMux(constants("ab"), 1, 3, random_state=1),
                     StochasticMux(constants("xy"), 1, 3, random_state=2)],
                    random_state=seed),
    ]


@pytest.mark.parametrize("index", range(6))
def test_deep_copy_replays_and_epochs_differ(index):
    mux = seeded_muxes()[index]
    replay = copy.deepcopy(mux)
    epochs = [take(mux, 200) for _ in range(3)]
    assert [take(replay, 200) for _ in range(3)] == epochs
    # all three differ (a != b != c would not compare the first and last)
    assert len({tuple(epoch) for epoch in epochs}) == 3
    # The same seed, built afresh, gives the same run.
    assert take(seeded_muxes()[index], 200) == epochs[0]


def test_nested_seeded_mux_differs_between_epochs():
    inner = ShuffledMux(constants("abc"), random_state=0)
    outer = ChainMux([inner])
    first, second = take(outer, 100), take(outer, 100)
    assert first != second
    assert take(copy.deepcopy(ChainMux([ShuffledMux(
        constants("abc"), random_state=0)])), 100) == first
    # two levels down as well
    outer = RoundRobinMux([ChainMux([inner])])
    assert take(outer, 100) != take(outer, 100)


def test_random_state_none_uses_the_global_generator():
    mux = StochasticMux(constants("abcd"), 2, 3)
    assert mux.rng is np.random
    assert copy.deepcopy(mux).rng is np.random
    np.random.seed(12)
    first = take(mux, 300)
    np.random.seed(12)
    assert take(mux, 300) == first


@pytest.mark.parametrize("index", range(6))
def test_two_simultaneous_iterations_do_not_interfere(index):
    mux = seeded_muxes()[index]
    reference = copy.deepcopy(mux)
    expected = [take(reference, 300), take(reference, 300)]
    a, b = mux.iterate(max_iter=300), mux.iterate(max_iter=300)
    got = [[], []]
    got[0].append(next(a))
    got[1].append(next(b))
    for x, y in zip(a, b):
        got[0].append(x)
        got[1].append(y)
    assert got == expected


def test_deterministic_muxes_iterated_twice_at_once():
    for mux in [RoundRobinMux(["abc", "de"], mode="cycle"),
                ChainMux(["abc", "de"], mode="cycle")]:
        expected = take(mux, 20)
        a, b = mux.iterate(max_iter=20), mux.iterate(max_iter=20)
        pairs = list(zip(a, b))
        assert [x for x, _ in pairs] == expected == [y for _, y in pairs]


def test_activation_counts_and_closing_children():
    tracker = Tracker()
    streamers = [Streamer(tracked, tracker, i) for i in range(5)]
    mux = StochasticMux(streamers, 3, rate=10, random_state=0)
    it = mux.iterate()
    next(it)
    assert mux.active == 1 and sum(tracker.open.values()) == 3
    it.close()
    assert mux.active == 0 and sum(tracker.open.values()) == 0


def test_errors_in_children_propagate():
    mux = RoundRobinMux([Streamer(fail_after, 2), "abcd"])
    with pytest.raises(ValueError, match="boom"):
        list(mux)


# -- muxes of muxes -----------------------------------------------------------

def test_muxes_of_muxes_exact():
    mux = RoundRobinMux([ChainMux(["ab", "cd"]),
                         RoundRobinMux(["xy", "z"])])
    assert "".join(mux) == "axbzcyd"
    assert "".join(ChainMux([mux, RoundRobinMux(["12"])])) == "axbzcyd12"


# -- bad input ----------------------------------------------------------------

def make(cls, **kwargs):
    defaults = {StochasticMux: dict(n_active=2, rate=4)}.get(cls, {})
    defaults.update(kwargs)
    streamers = defaults.pop("streamers", ["ab", "cd"])
    return cls(streamers, **defaults)


ALL = [StochasticMux, ShuffledMux, RoundRobinMux, ChainMux]
WEIGHTED = [StochasticMux, ShuffledMux]


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("kwargs, words", [
    (dict(streamers=["ab", 5]), ["streamers[1]=5", "iterable"]),
    (dict(streamers=5), ["streamers=5", "list"]),
    (dict(random_state="seed"), ["random_state='seed'"]),
    (dict(random_state=1.5), ["random_state=1.5"]),
])
def test_bad_streamers_and_random_state(cls, kwargs, words):
    with pytest.raises(PescadorError) as info:
        make(cls, **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux, RoundRobinMux])
def test_a_single_streamer_is_not_a_list_of_them(cls):
    # Listing it could mean running an endless stream: refuse instead.
    with pytest.raises(PescadorError, match="expected a list"):
        make(cls, streamers=Streamer(constant, 1))


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux, RoundRobinMux])
def test_empty_streamers(cls):
    with pytest.raises(PescadorError, match="empty"):
        make(cls, streamers=[])


def test_chain_bad_lazy_element_names_its_index():
    with pytest.raises(PescadorError, match=r"streamers\[1\]=None"):
        list(ChainMux(iter(["ab", None])))


@pytest.mark.parametrize("cls", WEIGHTED)
@pytest.mark.parametrize("weights, problem", [
    ([1], "shape"), ([1, 2, 3], "shape"), ([[1, 2]], "shape"),
    ([1, -1], "negative"), ([1, np.nan], "finite"), ([np.inf, 1], "finite"),
    ([0, 0], "all zero"), (["a", "b"], "not numbers"),
])
def test_bad_weights(cls, weights, problem):
    with pytest.raises(PescadorError, match="weights=") as info:
        make(cls, weights=weights)
    assert problem in str(info.value)


@pytest.mark.parametrize("cls", [StochasticMux, RoundRobinMux, ChainMux])
def test_bad_mode(cls):
    with pytest.raises(PescadorError, match="mode='bogus'"):
        make(cls, mode="bogus")


@pytest.mark.parametrize("n_active", [0, -1, 2.5, True, "3", None])
def test_bad_n_active(n_active):
    with pytest.raises(PescadorError, match="n_active="):
        make(StochasticMux, n_active=n_active)


@pytest.mark.parametrize("rate", [-1, -0.5, "4", float("inf"), np.nan, True])
def test_bad_rate(rate):
    with pytest.raises(PescadorError, match="rate="):
        make(StochasticMux, rate=rate)


def test_good_edge_parameters():
    mux = StochasticMux(["ab"], np.int64(3), np.float32(2.5),
                        weights=np.array([3]))
    assert mux.n_active == 3 and list(mux.weights) == [1.0]
    assert all(isinstance(s, Streamer) for s in mux.streamers)


# -- the deprecated Mux, pickling --------------------------------------------

@pytest.mark.parametrize("with_replacement, revive, mode", [
    (True, False, "with_replacement"), (True, True, "with_replacement"),
    (False, True, "single_active"), (False, False, "exhaustive"),
])
def test_mux_is_deprecated_stochastic_mux(with_replacement, revive, mode):
    with pytest.warns(DeprecationWarning, match="StochasticMux"):
        mux = Mux(constants("abc"), 2, weights=[1, 1, 2],
                  with_replacement=with_replacement, revive=revive,
                  random_state=5)
    assert isinstance(mux, StochasticMux)
    assert (mux.mode, mux.n_active, mux.rate) == (mode, 2, 256.0)
    new = StochasticMux(constants("abc"), 2, 256.0, weights=[1, 1, 2],
                        mode=mode, random_state=5)
    assert take(mux, 300) == take(new, 300)


def test_mux_validates_like_stochastic_mux():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(PescadorError, match="n_active=0"):
            Mux(["ab"], 0)


@pytest.mark.parametrize("index", range(6))
def test_pickle_round_trip(index):
    mux = seeded_muxes()[index]
    clone = pickle.loads(pickle.dumps(mux))
    assert type(clone) is type(mux)
    assert take(clone, 200) == take(mux, 200)


def test_pickle_keeps_the_global_generator():
    mux = ShuffledMux([Streamer(count, 5), Streamer(labelled, "x")])
    clone = pickle.loads(pickle.dumps(mux))
    assert clone.rng is np.random
    assert len(take(clone, 50)) == 50


def test_base_mux_is_abstract():
    with pytest.raises(NotImplementedError):
        list(BaseMux(["ab"]))
    assert issubclass(BaseMux, pescador.Streamer)


@pytest.mark.parametrize("mux", [
    lambda: pescador.StochasticMux([pescador.Streamer(range(10 * i, 10 * i + 3))
                                    for i in range(6)], 2, 2, random_state=0),
    lambda: pescador.RoundRobinMux([pescador.Streamer(range(10 * i, 10 * i + i))
                                    for i in range(1, 5)])])
def test_state_is_a_snapshot_not_a_view(mux):
    # A state kept while the iteration goes on (as StatefulDataLoader keeps
    # the last one of each worker) must not change with it: the policy's
    # lists are copied, not shared with the running mux.
    items = mux().iterate(max_iter=12)
    first = [next(items) for _ in range(4)]
    state = pescador.get_state(items)
    frozen = json.loads(json.dumps(state))
    rest = list(items)
    assert state == frozen
    assert first + rest == list(mux().iterate(max_iter=12))
    assert list(mux().iterate(max_iter=12, state=state)) == rest
