"""Tests for pescador._merge: the merge of a split stream's shares.

Statistical tests use a fixed seed and chi-square p > P_MIN = 1e-3: each
draw of the weighted merge is an independent categorical draw, so the
share counts are multinomial and the statistic is chi-square distributed
(a correct merge fails at a given seed with probability 1e-3; the seed is
fixed, so the test is deterministic).
"""

import queue
import random
import threading
import time
from collections import Counter
from itertools import count as counter, islice, repeat

import numpy as np
import pytest
import scipy.stats

import pescador
from pescador import (ChainMux, PescadorError, RoundRobinMux, ShuffledMux,
                      StochasticMux, Streamer)
from pescador._merge import MergePlan, merge
from pescador.split import merge_plan

from . import streams

P_MIN = 1e-3


def shares_of(stream, count, epoch=0):
    """Each share of ``stream``, iterated in-process."""
    return [pescador.shard(stream, i, count, epoch).iterate()
            for i in range(count)]


def merged(stream, count, epoch=0, n=None):
    plan = merge_plan(stream, count, epoch)
    return list(islice(plan.merge(shares_of(stream, count, epoch)), n))


class Pulls:
    """Iterators over ``sources`` that log each pull as (share, item)."""

    def __init__(self, sources):
        self.log = []
        self.iterators = [self._pull(k, iter(s)) for k, s in
                          enumerate(sources)]

    def _pull(self, k, source):
        for item in source:
            self.log.append((k, item))
            yield item
        self.log.append((k, None))


# -- round-robin -------------------------------------------------------------

def test_round_robin_skips_ended_shares_in_order():
    assert "".join(merge(["abc", "", "wxyz", "1"])) == "aw1bxcyz"
    assert list(merge([])) == []
    assert list(merge(["abc"])) == ["a", "b", "c"]


def test_finite_chain_and_round_robin_give_every_item_once():
    sources = [Streamer(streams.count, 3 + i, start=100 * i)
               for i in range(7)]
    want = Counter(x for s in sources for x in s)
    for mux in (ChainMux(sources), RoundRobinMux(sources)):
        for count in (1, 2, 3, 9):
            got = merged(mux, count)
            assert len(got) == len(want) and Counter(got) == want
    # Round-robin over the shares, each share in its own chain order.
    assert merged(ChainMux(sources[:3]), 2)[:5] == [0, 100, 1, 101, 2]


# -- weighted ----------------------------------------------------------------

def test_exhaustive_stochastic_mux_gives_every_item_once():
    sources = [Streamer(streams.count, 5 + i, start=100 * i)
               for i in range(7)]
    want = Counter(x for s in sources for x in s)
    mux = StochasticMux(sources, n_active=2, rate=None, mode="exhaustive",
                        weights=[5, 1, 1, 2, 1, 3, 1], random_state=4)
    for count in (2, 3, 8):
        plan = merge_plan(mux, count)
        assert plan.weights is not None
        got = merged(mux, count)
        assert len(got) == len(want) and Counter(got) == want
        assert got == merged(mux, count)            # seeded: same order
        assert got != merged(mux, count, epoch=1)   # another epoch


def test_share_counts_match_unequal_weights_chi_square():
    # Shares of total weight 0.6, 0.3, 0.1 (StochasticMux shares, budgets
    # of mean 5). The merge picks the share of each item by an independent
    # draw, so the share counts are multinomial whatever the budgets do
    # inside a share: no variance inflation at this level, plain
    # chi-square with 2 degrees of freedom.
    mux = StochasticMux([Streamer(streams.constant, i) for i in range(5)],
                        n_active=2, rate=4, weights=[4, 2, 1, 2, 1],
                        random_state=11)
    n = 30000
    share_of = {0: 0, 3: 0, 1: 1, 4: 1, 2: 2}
    counts = np.bincount([share_of[x] for x in merged(mux, 3, n=n)],
                         minlength=3)
    assert scipy.stats.chisquare(counts, n * np.array([0.6, 0.3, 0.1])) \
        .pvalue > P_MIN
    # The test has power: the uniform merge it replaces is far off.
    assert scipy.stats.chisquare(counts, n * np.full(3, 1 / 3)).pvalue \
        < 1e-100


def test_streamer_counts_match_weights_through_shuffled_shares():
    # ShuffledMux draws every item independently too, so each streamer's
    # count over the merged shares is multinomial with its weight:
    # chi-square with 4 degrees of freedom.
    weights = np.array([4, 2, 1, 2, 1]) / 10
    mux = ShuffledMux([Streamer(streams.constant, i) for i in range(5)],
                      weights=weights, random_state=2)
    n = 30000
    counts = np.bincount(merged(mux, 2, n=n), minlength=5)
    assert scipy.stats.chisquare(counts, n * weights).pvalue > P_MIN


def test_an_ended_share_is_dropped_and_the_rest_renormalised():
    plan = MergePlan(3, (0.5, 0.25, 0.25), seed=3)
    out = list(islice(plan.merge([repeat("a"), "bb", repeat("c")]), 4000))
    tail = Counter(out[100:])
    assert Counter(out)["b"] == 2
    # After b ends: a and c at 2:1.
    assert scipy.stats.chisquare([tail["a"], tail["c"]],
                                 len(out[100:]) * np.array([2, 1]) / 3) \
        .pvalue > P_MIN


def test_zero_weight_share_is_never_pulled():
    def forbidden():
        raise AssertionError("pulled")
        yield  # pragma: no cover

    assert "".join(merge(["ab", forbidden(), "c"], [1, 0, 1], seed=0)) in \
        {"abc", "acb", "cab"}


def test_unseeded_merge_uses_fresh_entropy():
    def run():
        return list(islice(merge([repeat(0), repeat(1)], [1, 1]), 200))
    assert run() != run()


def test_bad_weights_and_plan_size():
    for weights in ([1], [1, -1], [0, 0], [1, np.nan]):
        with pytest.raises(PescadorError, match="invalid weights"):
            merge(["a", "b"], weights)
    with pytest.raises(PescadorError, match="3 shares for a plan of 2"):
        MergePlan(2, None, None).merge(["a", "b", "c"])


# -- only the pulling order matters ------------------------------------------

def test_the_merge_pulls_lazily_one_item_per_item():
    # No prefetch: the log of pulls is the output itself, plus one pull
    # that finds each share's end; so a slow share only delays the merge.
    pulls = Pulls(["abc", "xy", "12345"])
    out = list(merge(pulls.iterators, [1, 2, 3], seed=5))
    assert [item for _, item in pulls.log if item is not None] == out
    assert sorted(k for k, item in pulls.log if item is None) == [0, 1, 2]
    first = Pulls(["abc", "xy", "12345"])
    again = list(merge(first.iterators, [1, 2, 3], seed=5))
    assert again == out and first.log == pulls.log


def threaded_share(items, jitter, out_queue):
    """Put ``items`` on ``out_queue`` with random sleeps, then None."""
    for item in items:
        time.sleep(jitter.uniform(0, 0.002))
        out_queue.put(item)
    out_queue.put(None)


def receiver(in_queue):
    """What an executor passes to the merge: receive worker i's items."""
    while True:
        item = in_queue.get(timeout=10)
        if item is None:
            return
        yield item


@pytest.mark.parametrize("stream", [
    StochasticMux([Streamer(streams.count, 20, start=100 * i)
                   for i in range(5)], n_active=2, rate=3,
                  mode="exhaustive", weights=[3, 1, 1, 2, 2],
                  random_state=8),
    ChainMux([Streamer(streams.count, 10 + i, start=100 * i)
              for i in range(5)])])
def test_seeded_order_is_the_same_whatever_the_timing(stream):
    # Each share is produced by a thread that sleeps at random between
    # items, as workers would; the merged stream is the same as in-process.
    count = 3
    want = merged(stream, count, epoch=2)
    for run in range(3):
        jitter = random.Random(run)
        queues = [queue.Queue(maxsize=4) for _ in range(count)]
        threads = [threading.Thread(
            target=threaded_share, daemon=True,
            args=(list(pescador.shard(stream, i, count, 2)),
                  random.Random(jitter.random()), queues[i]))
            for i in range(count)]
        for thread in threads:
            thread.start()
        plan = merge_plan(stream, count, 2)
        got = list(plan.merge([receiver(q) for q in queues]))
        for thread in threads:
            thread.join(timeout=10)
            assert not thread.is_alive()
        assert got == want


# -- errors and early stops --------------------------------------------------

def test_an_error_in_a_share_propagates_and_closes_the_others():
    closed = []

    def share(name):
        try:
            yield from counter()
        finally:
            closed.append(name)

    shares = [share("a"), streams.fail_after(3), share("c")]
    with pytest.raises(ValueError, match="boom"):
        list(merge(shares))
    assert sorted(closed) == ["a", "c"]


@pytest.mark.parametrize("weights", [None, [1, 1]])
def test_closing_the_merge_closes_the_shares(weights):
    closed = []

    def share(name):
        try:
            yield from repeat(name)
        finally:
            closed.append(name)

    out = merge([share("a"), share("b")], weights, seed=0)
    assert len(list(islice(out, 10))) == 10
    out.close()
    assert sorted(closed) == ["a", "b"]
