"""Edge cases of the muxes: extreme weights, bad collections, sizes that
cannot be allocated, cycles, deep nesting, and the cost of a start and of a
refill (counted in operations, not timed: speed is for benchmarks/)."""

import copy

import numpy as np
import pytest
import scipy.stats

import pescador
import pescador._mux_base
import pescador.mux
from pescador import (ChainMux, PescadorError, RoundRobinMux, ShuffledMux,
                      StochasticMux, Streamer)

from .test_mux import P_MIN, constants, take

MUXES = [
    lambda s, **kw: ShuffledMux(s, **kw),
    lambda s, **kw: StochasticMux(s, 2, 4, **kw),
    lambda s, **kw: RoundRobinMux(s, **kw),
    lambda s, **kw: ChainMux(s, **kw),
]


# -- weights ------------------------------------------------------------------

@pytest.mark.parametrize("weights, shares", [
    ([1e308, 1e308], [0.5, 0.5]),
    ([1e308, 1e308 / 3], [0.75, 0.25]),
    ([5e-324, 1.5e-323], [0.25, 0.75]),     # subnormal
])
def test_extreme_weights_give_the_right_mixture(weights, shares):
    n = 8000
    for mux in [ShuffledMux(constants("ab"), weights=weights,
                            random_state=0),
                StochasticMux(constants("ab"), n_active=1, rate=0,
                              weights=weights, random_state=0)]:
        np.testing.assert_allclose(mux.weights, shares)
        out = take(mux, n)
        counts = [out.count("a"), out.count("b")]
        assert sum(counts) == n
        # Independent draws with these shares: chi-square, fixed seed.
        assert scipy.stats.chisquare(counts, n * np.array(shares)).pvalue \
            > P_MIN, counts


@pytest.mark.parametrize("weights", [
    ["1", "2"], [b"1", b"2"], np.array(["1", "2"]), [1, None],
    [{}, 1], "12", 3.0])
def test_weights_that_are_not_numbers(weights):
    for cls in (ShuffledMux, lambda s, weights: StochasticMux(
            s, 1, 1, weights=weights)):
        with pytest.raises(PescadorError, match="weights=.*not numbers"):
            cls(constants("ab"), weights=weights)


# -- collections ----------------------------------------------------------------

@pytest.mark.parametrize("make", MUXES)
@pytest.mark.parametrize("streamers", [
    {"ab": 1, "cd": 2}, {"ab": Streamer("ab")}, "abc", b"abc"])
def test_dict_or_string_as_streamers(make, streamers):
    # A dict would mix the characters of its keys; a string its letters.
    with pytest.raises(PescadorError, match="Invalid streamers="):
        make(streamers)


@pytest.mark.parametrize("n_active", [10**30, 2**24 + 1, 2**63])
def test_n_active_too_large_for_memory(n_active):
    with pytest.raises(PescadorError, match="n_active=.*at most"):
        StochasticMux(constants("ab"), n_active=n_active, rate=1)
    assert StochasticMux(constants("ab"), n_active=2**24, rate=1).n_active \
        == 2**24


# -- cycles and depth ------------------------------------------------------------

def test_a_mux_containing_itself():
    direct = ChainMux(["ab"])
    direct.streamers.append(direct)
    inner = ShuffledMux(["xy"], random_state=0)
    outer = RoundRobinMux([inner, "cd"])
    inner.streamers.append(outer)           # outer -> inner -> outer
    wrapped = StochasticMux(["ab"], 1, 2)
    wrapped.streamers.append(Streamer(wrapped))
    for mux in (direct, outer, inner, wrapped):
        with pytest.raises(PescadorError, match="contains itself"):
            next(iter(mux))
        assert mux.active == 0


def test_the_same_streamer_twice_is_not_a_cycle():
    shared = ChainMux(["ab"])
    assert "".join(RoundRobinMux([shared, shared, ChainMux([shared])])) \
        == "aaabbb"


def nested(depth, make):
    stream = Streamer("ab")
    for level in range(depth):
        stream = make(stream, level)
    return stream


NESTINGS = {
    "shuffled": lambda s, i: ShuffledMux([s], random_state=i),
    "stochastic": lambda s, i: StochasticMux([s], 1, None, random_state=i),
    "chain": lambda s, i: ChainMux([s]),
    "round robin": lambda s, i: RoundRobinMux([s]),
    "unseeded": lambda s, i: ShuffledMux([s]),
}


@pytest.mark.parametrize("kind", sorted(NESTINGS))
def test_nesting_200_deep(kind):
    # The random muxes restart their one exhausted streamer forever.
    mux = nested(200, NESTINGS[kind])
    expected = "ab" if kind in ("chain", "round robin") else "ababab"
    assert "".join(take(mux, 6)) == expected
    assert "".join(take(mux, 6)) == expected


def test_nested_start_is_linear_in_depth(monkeypatch):
    # Every deep copy and every generator made for the first item, counted:
    # before, each level copied the whole tree below it (quadratic).
    calls = {"deepcopy": 0, "rng": 0}
    deepcopy, seeded = Streamer.__deepcopy__, pescador._mux_base._seeded_rng

    def counting_deepcopy(self, memo):
        calls["deepcopy"] += 1
        return deepcopy(self, memo)

    def counting_rng(*args):
        calls["rng"] += 1
        return seeded(*args)

    monkeypatch.setattr(Streamer, "__deepcopy__", counting_deepcopy)
    monkeypatch.setattr(pescador._mux_base, "_seeded_rng", counting_rng)
    work = {}
    for depth in (25, 50, 100):
        calls.update(deepcopy=0, rng=0)
        next(iter(nested(depth, NESTINGS["shuffled"])))
        work[depth] = dict(calls)
    for depth in (25, 50, 100):
        # one generator per level; one copy, of the leaf Streamer only
        assert work[depth] == {"deepcopy": 1, "rng": depth}, work


def test_exhaustive_refill_does_not_redraw_the_pool(monkeypatch):
    # Before, each refill redrew a block over the whole pool: O(pool) per
    # refill. Now the order is drawn once, at the start.
    drawn = []
    weighted = pescador.mux._weighted_indices

    def counting(rng, weights, size):
        drawn.append(len(weights))
        return weighted(rng, weights, size)

    monkeypatch.setattr(pescador.mux, "_weighted_indices", counting)
    streamers = [Streamer([i]) for i in range(3000)]
    mux = StochasticMux(streamers, n_active=4, rate=None, mode="exhaustive",
                        random_state=0)
    assert sorted(mux) == list(range(3000))
    assert drawn == []


def test_exhaustive_order_is_drawn_by_weight_without_replacement():
    # P(first = i, second = j) = w_i / W * w_j / (W - w_i), over seeds.
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    total = weights.sum()
    runs = 3000
    counts = np.zeros((4, 4))
    for seed in range(runs):
        mux = StochasticMux([[i] for i in range(4)], n_active=1, rate=None,
                            weights=weights, mode="exhaustive",
                            random_state=seed)
        order = list(mux)
        assert sorted(order) == [0, 1, 2, 3]
        counts[order[0], order[1]] += 1
    expected = np.array([[wi / total * wj / (total - wi) if i != j else 0
                          for j, wj in enumerate(weights)]
                         for i, wi in enumerate(weights)]) * runs
    cells = ~np.eye(4, dtype=bool)
    assert counts[~cells].sum() == 0
    assert scipy.stats.chisquare(counts[cells], expected[cells]).pvalue \
        > P_MIN


def test_seeded_nested_muxes_do_not_share_generators():
    # Three levels, the middle one restarted many times: two iterations at
    # once give what two in turn give (each activation owns its generator).
    def build():
        leaves = [StochasticMux(constants("ab"), 1, 2, random_state=1),
                  StochasticMux(constants("xy"), 1, 2, random_state=2)]
        middle = StochasticMux(leaves, 1, 3, random_state=3)
        return ShuffledMux([middle, Streamer("-")], random_state=4)

    reference = build()
    expected = [take(reference, 300), take(reference, 300)]
    mux = build()
    a, b = mux.iterate(max_iter=300), mux.iterate(max_iter=300)
    pairs = list(zip(a, b))
    assert len(pairs) == 300
    assert [x for x, _ in pairs] == expected[0]
    assert [y for _, y in pairs] == expected[1]
    assert expected[0] != expected[1]
    assert take(copy.deepcopy(build()), 300) == expected[0]


# -- ChainMux's lazy sources -----------------------------------------------------

def test_chain_of_a_generator_function_is_called_at_each_pass():
    calls = []

    def words():
        calls.append(1)
        yield Streamer("ab")
        yield "cd"

    mux = ChainMux(words)
    assert "".join(mux) == "abcd" and "".join(mux) == "abcd"
    assert len(calls) == 2
    assert "".join(ChainMux(words, mode="cycle")(max_iter=10)) == "abcdabcdab"


def test_chain_of_a_streamer_of_streamers_and_of_nothing():
    def words(n):
        for i in range(n):
            yield Streamer(str(i) * 2)

    assert "".join(ChainMux(Streamer(words, 3))) == "001122"
    assert list(ChainMux(Streamer(words, 0))) == []

    def nothing():
        return
        yield

    assert list(ChainMux(nothing)) == []


def test_chain_rejects_a_plain_function():
    with pytest.raises(PescadorError, match="streamers="):
        ChainMux(lambda: [Streamer("ab")])
