"""Tests for pescador.shard and pescador.split.merge_plan: the split that
every parallel path (ZMQStreamer's pool, TorchDataset, ranks) uses."""

import copy
import pickle
import warnings
from collections import Counter

import numpy as np
import pytest

import pescador
import pescador.adapters
from pescador import (ChainMux, PescadorError, RoundRobinMux, ShuffledMux,
                      StochasticMux, Streamer, buffer_stream)
from pescador._merge import MergePlan
from pescador.split import merge_plan, mux_size

from . import streams


def chain_of_counts(n_streams=5, length=4):
    return ChainMux([Streamer(streams.count, length, start=100 * i)
                     for i in range(n_streams)])


def all_counts(n_streams=5, length=4):
    return Counter(100 * i + j for i in range(n_streams)
                   for j in range(length))


def passthrough(stream):
    """A plain generator function around a stream (a map that maps
    nothing), to nest a mux inside a plain Streamer."""
    yield from stream


def labels(stream, n=60):
    return [item["label"] for item in stream.iterate(max_iter=n)]


# -- coverage ----------------------------------------------------------------

def test_alias_and_export():
    assert pescador.adapters.shard is pescador.shard
    from pescador.adapters._shard import shard
    assert shard is pescador.shard


def test_shards_of_a_chain_are_disjoint_and_complete():
    mux = chain_of_counts(7)
    shares = [list(pescador.shard(mux, i, 3)) for i in range(3)]
    assert shares[1] == [100, 101, 102, 103, 400, 401, 402, 403]
    assert Counter(sum(shares, [])) == all_counts(7)


def finite_muxes(n):
    sources = [Streamer(streams.count, 4, start=100 * i) for i in range(n)]
    return [ChainMux(sources), RoundRobinMux(sources),
            StochasticMux(sources, n_active=2, rate=None, mode="exhaustive",
                          random_state=3),
            Streamer(passthrough, ChainMux(sources))]


@pytest.mark.parametrize("n_streams, count", [
    (1, 1), (5, 2), (6, 3), (7, 7), (3, 5)])
def test_union_of_shares_is_every_item_once(n_streams, count):
    # Every streamer belongs to exactly one share; with more shares than
    # streamers the extra shares are empty and end at once.
    for mux in finite_muxes(n_streams):
        shares = [list(pescador.shard(mux, i, count, epoch=1))
                  for i in range(count)]
        assert Counter(sum(shares, [])) == all_counts(n_streams)
        assert [len(share) == 0 for share in shares] == [
            i >= n_streams for i in range(count)]


def test_every_streamer_of_an_infinite_mux_is_in_one_share():
    mux = ShuffledMux([Streamer(streams.constant, i) for i in range(5)],
                      random_state=0)
    seen = [set(pescador.shard(mux, i, 2).iterate(max_iter=300))
            for i in range(2)]
    assert seen == [{0, 2, 4}, {1, 3}]


def test_shard_reaches_a_mux_inside_a_batching_streamer():
    mux = ChainMux([Streamer(streams.arrays, 2, seed=i) for i in range(4)])
    batches = Streamer(buffer_stream, mux, 2)
    share = pescador.shard(batches, 1, 2)
    assert [b["X"].tolist() for b in share] == [
        np.stack([item["X"] for item in streams.arrays(2, seed=seed)])
        .tolist() for seed in (1, 3)]
    assert len(list(batches)) == 4  # the original is untouched


def test_shard_keeps_the_weights_of_its_streamers():
    mux = StochasticMux([Streamer(streams.constant, i) for i in range(4)],
                        n_active=2, rate=4, weights=[3, 1, 1, 3],
                        random_state=0)
    share = pescador.shard(mux, 0, 2)
    assert isinstance(share, StochasticMux)
    assert (share.n_active, share.rate) == (2, 4)
    np.testing.assert_allclose(share.weights, [0.75, 0.25])
    assert set(share.iterate(max_iter=100)) == {0, 2}


def test_empty_shares_yield_nothing():
    assert list(pescador.shard(chain_of_counts(2), 2, 3)) == []
    mux = ShuffledMux([Streamer(streams.constant, i) for i in range(2)],
                      weights=[1, 0])
    assert list(pescador.shard(mux, 1, 2)) == []


def test_shard_of_deprecated_mux_does_not_warn_again():
    with pytest.warns(DeprecationWarning):
        mux = pescador.Mux([Streamer(streams.constant, i) for i in range(4)],
                           k=2, rate=3, with_replacement=False,
                           revive=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        share = pescador.shard(mux, 1, 2)
    assert (share.k, share.mode, share.rate) == (2, "single_active", 3)
    assert set(share.iterate(max_iter=50)) == {1, 3}


def test_shard_rejects_bad_index_and_epoch():
    with pytest.raises(PescadorError, match="index=3, count=3"):
        pescador.shard(chain_of_counts(), 3, 3)
    with pytest.raises(PescadorError, match="index=0, count=0"):
        pescador.shard(chain_of_counts(), 0, 0)
    with pytest.raises(PescadorError, match="epoch=-1"):
        pescador.shard(chain_of_counts(), 0, 1, epoch=-1)
    with pytest.raises(PescadorError, match="epoch=1.0"):
        pescador.shard(chain_of_counts(), 0, 2, epoch=1.0)
    with pytest.raises(PescadorError, match="merge_plan: .*count=0"):
        merge_plan(chain_of_counts(), 0)
    with pytest.raises(PescadorError, match="merge_plan: .*epoch=-2"):
        merge_plan(chain_of_counts(), 2, -2)


# -- streams that cannot be split -----------------------------------------

def lazy_chain():
    return ChainMux(Streamer(streams.count, 2, start=10 * i)
                    for i in range(3))


def streamer_of_streamers():
    """A Streamer whose items are streamers."""
    for i in range(3):
        yield Streamer(streams.count, 2, start=10 * i)


@pytest.mark.parametrize("build, why", [
    (lambda: Streamer(streams.count, 4), "no mux to split"),
    (lambda: Streamer(passthrough, Streamer(streams.count, 4)),
     "no mux to split"),
    (lazy_chain, "ChainMux over a lazy source of streamers \\(generator\\)"),
    (lambda: ChainMux(Streamer(streamer_of_streamers)),
     "ChainMux over a lazy source of streamers \\(Streamer\\)"),
    (lambda: Streamer(buffer_stream, lazy_chain(), 2),
     "lazy source of streamers"),
])
def test_unsplittable_streams_are_refused_with_count_above_1(build, why):
    # Before: shard returned the whole stream to every share.
    with pytest.raises(PescadorError, match="shard: .*" + why):
        pescador.shard(build(), 1, 2)
    with pytest.raises(PescadorError, match="merge_plan: .*" + why):
        merge_plan(build(), 2)


@pytest.mark.parametrize("build", [
    lambda: Streamer(streams.count, 4), lazy_chain,
    lambda: ChainMux(Streamer(streamer_of_streamers))])
def test_unsplittable_streams_are_accepted_with_count_1(build):
    stream = build()
    assert pescador.shard(stream, 0, 1) is stream
    assert sorted(pescador.shard(build(), 0, 1, epoch=3)) == sorted(
        list(build()))
    assert merge_plan(stream, 1) == MergePlan(1, None, None)


def test_lazy_seeded_mux_with_count_1_is_reseeded_by_epoch():
    def mux():
        return ChainMux((s for s in [Streamer("ab")]), random_state=4)
    assert pescador.shard(mux(), 0, 1, epoch=1).random_state != 4
    assert pescador.shard(mux(), 0, 1, epoch=1).random_state == \
        pescador.shard(mux(), 0, 1, epoch=1).random_state


def test_mux_size():
    assert mux_size(Streamer(passthrough, chain_of_counts(3))) == 3
    assert mux_size(Streamer(streams.count, 3)) is None
    assert mux_size(lazy_chain()) is None


# -- seeds and epochs ------------------------------------------------------

def test_shard_seeds_differ_by_share_and_epoch_and_reproduce():
    mux = StochasticMux([Streamer(streams.labelled, i) for i in range(4)],
                        n_active=2, rate=2, random_state=5)

    def share(index, epoch):
        return labels(pescador.shard(mux, index, 1, epoch=epoch))

    assert share(0, 1) == share(0, 1)
    assert share(0, 1) != share(0, 2)


def nested_pipeline():
    """An unseeded ChainMux whose shares hold seeded muxes: one bare, one
    inside a plain Streamer, and an unseeded one."""
    inner_a = ShuffledMux([Streamer(streams.labelled, "a%d" % i)
                           for i in range(3)], random_state=1)
    inner_b = StochasticMux([Streamer(streams.labelled, "b%d" % i)
                             for i in range(3)], n_active=2, rate=2,
                            random_state=2)
    inner_c = ShuffledMux([Streamer(streams.labelled, "c%d" % i)
                           for i in range(3)])
    return ChainMux([Streamer(passthrough, inner_a), inner_b,
                     ChainMux([inner_c])])


def test_epochs_differ_at_every_nesting_level_and_replay():
    # A worker rebuilds its share from a fresh copy of the pipeline at each
    # epoch. Before: only the outermost mux was reseeded, so with an
    # unseeded outer ChainMux every epoch replayed the same nested orders.
    pipeline = nested_pipeline()

    def share(index, epoch, n=40):
        fresh = pickle.loads(pickle.dumps(pipeline))
        return labels(pescador.shard(fresh, index, 2, epoch=epoch), n)

    for index in range(2):
        assert share(index, 1) == share(index, 1)
        assert share(index, 1) != share(index, 2)
        assert share(index, 0) != share(index, 1)
    # The ChainMux runs inner_a (share 0) and inner_b (share 1) first.
    assert {label[0] for label in share(0, 1)} == {"a"}
    assert {label[0] for label in share(1, 1)} == {"b"}


def test_nested_seeds_derive_from_own_seed_share_and_epoch():
    pipeline = nested_pipeline()
    wrapped_a, inner_b, chain_c = pipeline.streamers
    share0 = pescador.shard(pipeline, 0, 2, epoch=1)
    new_a = share0.streamers[0].args[0]
    assert new_a.random_state not in (None, 1)
    assert pescador.shard(pipeline, 0, 2, epoch=2).streamers[0].args[0] \
        .random_state != new_a.random_state
    assert share0.streamers[1] is chain_c      # nothing seeded inside
    share1 = pescador.shard(pipeline, 1, 2, epoch=1)
    assert share1.streamers[0].random_state not in (None, 2)
    # Share 1 of count 1 (same seed, other share index) differs too.
    same_mux = ChainMux([inner_b, inner_b])
    a, b = (pescador.shard(same_mux, i, 2).streamers[0] for i in range(2))
    assert a.random_state != b.random_state
    # The original is untouched, and its generators did not move.
    assert wrapped_a.args[0].random_state == 1
    assert inner_b.random_state == 2
    assert labels(inner_b) == labels(nested_pipeline().streamers[1])


def test_unseeded_muxes_keep_the_global_generator():
    inner = ShuffledMux(["ab", "cd"])
    outer = ShuffledMux([inner, "xy", "z"])
    share = pescador.shard(outer, 0, 2, epoch=3)
    assert share.random_state is None and share.rng is np.random
    assert share.streamers[0] is inner


def test_count_1_epoch_0_is_the_stream_itself():
    pipeline = nested_pipeline()
    assert pescador.shard(pipeline, 0, 1) is pipeline
    assert pescador.shard(pipeline, 0, 1, epoch=1) is not pipeline


def test_a_seeded_random_state_object_is_not_moved():
    state = np.random.RandomState(3)
    mux = ShuffledMux(["ab", "cd", "ef"], random_state=state)
    before = state.get_state()[1].copy()
    first = pescador.shard(mux, 0, 2, epoch=1)
    np.testing.assert_array_equal(state.get_state()[1], before)
    assert first.random_state == pescador.shard(mux, 0, 2,
                                                epoch=1).random_state
    generator = ShuffledMux(["ab", "cd"],
                            random_state=np.random.default_rng(3))
    assert isinstance(pescador.shard(generator, 0, 2).random_state, int)


# -- merge plans -------------------------------------------------------------

def test_plan_of_a_weighted_mux_sums_each_share_weights():
    mux = StochasticMux([Streamer(streams.constant, i) for i in range(5)],
                        n_active=2, rate=4, weights=[4, 2, 1, 2, 1],
                        random_state=0)
    plan = merge_plan(mux, 3)
    assert plan.count == 3
    np.testing.assert_allclose(plan.weights, [0.6, 0.3, 0.1])
    np.testing.assert_allclose(merge_plan(Streamer(passthrough, mux), 2)
                               .weights, [0.6, 0.4])


def test_plan_of_an_unweighted_mux_is_uniform_per_streamer():
    mux = ShuffledMux([Streamer(streams.constant, i) for i in range(5)])
    np.testing.assert_allclose(merge_plan(mux, 2).weights, [0.6, 0.4])
    np.testing.assert_allclose(merge_plan(mux, 7).weights,
                               [0.2] * 5 + [0.0] * 2)
    assert merge_plan(mux, 2).seed is None      # unseeded: fresh entropy


@pytest.mark.parametrize("mux", [
    ChainMux(["ab", "cd"], random_state=3),
    RoundRobinMux(["ab", "cd"], mode="permuted_cycle", random_state=3)])
def test_plan_of_a_deterministic_mux_is_round_robin(mux):
    assert merge_plan(mux, 2) == MergePlan(2, None, None)


def test_plan_seed_derives_from_mux_seed_and_epoch():
    def mux(seed):
        return ShuffledMux(["ab", "cd", "ef"], random_state=seed)
    seeds = {merge_plan(mux(seed), 2, epoch).seed
             for seed in (0, 1) for epoch in (0, 1, 2)}
    assert len(seeds) == 6 and None not in seeds
    assert merge_plan(mux(0), 2, 1) == merge_plan(copy.deepcopy(mux(0)), 2,
                                                  1)
    # Not the seed of any share.
    shares = {pescador.shard(mux(0), i, 2, epoch=1).random_state
              for i in range(2)}
    assert merge_plan(mux(0), 2, 1).seed not in shares
