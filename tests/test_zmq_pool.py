"""Tests for ZMQStreamer's worker pool (``n_workers > 1``): the merge is
exact and reproducible, every item comes once, errors and dead workers end
the stream, and nothing outlives an iteration."""

import copy
import gc
import multiprocessing
import os
import random
import signal
import tempfile
import threading
import time
from itertools import islice

import numpy as np
import pytest
import scipy.stats

import pescador
from pescador._background import process as process_module
from pescador.split import merge_plan
from pescador.zmq_stream import RemoteTraceback, ZMQStreamer

from .zmq_helpers import (children, fd_targets, forever_with_cleanup,
                          items_then_fail, kill_quietly, n_fds,
                          new_worker_fd_targets, pid_gone, run_script)

pytestmark = pytest.mark.timeout(60)


# -- module-level generators (they pickle, for spawn) ----------------------

def numbered(source, n=None, jitter=0.0):
    """Yield ``{'s': source, 'i': i}`` (n items, or forever); with
    ``jitter``, sleep up to that many seconds at random (unseeded) before
    each item, so that the workers' timing differs from run to run."""
    sleep = random.Random(os.urandom(8)).uniform if jitter else None
    i = 0
    while n is None or i < n:
        if sleep is not None:
            time.sleep(sleep(0, jitter))
        yield {"s": np.array(source), "i": np.array(i)}
        i += 1


def labels(source):
    """Yield the same small item forever (fast: the chi-square test)."""
    item = {"s": np.array(source)}
    while True:
        yield item


def keys(items):
    return [(int(item["s"]), int(item["i"])) for item in items]


def streamers(sizes, jitter=0.0):
    return [pescador.Streamer(numbered, s, n, jitter)
            for s, n in enumerate(sizes)]


def in_process(stream, count, epoch=0, n=None):
    """What the pool must yield with ``ordered=True``: the plan's merge of
    the shares, run here."""
    shares = [pescador.shard(stream, i, count, epoch) for i in range(count)]
    return keys(islice(merge_plan(stream, count, epoch).merge(shares), n))


def zombies():
    """Our children that exited and were not reaped."""
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/{}/stat".format(name)) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] == "Z":
                out.add(int(name))
    return out


@pytest.fixture
def no_leftovers(tmp_path, monkeypatch):
    """Private ipc folders go to tmp_path; after the test, no child, zombie,
    descriptor or folder of ours is left."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ZMQStreamer([]).iterate()  # (nothing runs: a generator not started)
    list(ZMQStreamer(pescador.Streamer(numbered, 0, 1)))  # lazy fds first
    before_fds, before_children = n_fds(), children()
    yield
    assert multiprocessing.active_children() == []
    assert children() == before_children
    assert zombies() == set()
    assert n_fds() == before_fds
    assert os.listdir(str(tmp_path)) == []


# -- every streamer ----------------------------------------------------------

MUXES = {
    "stochastic": lambda: pescador.StochasticMux(
        streamers([None] * 5), n_active=2, rate=3,
        weights=[4, 1, 1, 2, 2], random_state=3),
    "stochastic-exhaustive": lambda: pescador.StochasticMux(
        streamers([4, 7, 2, 5, 6]), n_active=2, rate=None,
        mode="exhaustive", random_state=4),
    "shuffled": lambda: pescador.ShuffledMux(
        streamers([None] * 4), weights=[1, 2, 3, 4], random_state=5),
    "mux": lambda: pescador.Mux(
        streamers([None] * 4), k=2, rate=2, random_state=6),
    "round-robin": lambda: pescador.RoundRobinMux(streamers([3, 5, 2, 4])),
    "round-robin-cycle": lambda: pescador.RoundRobinMux(
        streamers([3, 5, 2]), mode="permuted_cycle", random_state=7),
    "chain": lambda: pescador.ChainMux(streamers([3, 0, 5, 2, 4])),
    "nested": lambda: pescador.ChainMux([
        pescador.StochasticMux(streamers([None] * 3), 2, 2, random_state=8),
        pescador.Streamer(numbered, 9, 5)], mode="cycle", random_state=8),
}


@pytest.mark.filterwarnings("ignore:pescador.Mux is deprecated")
@pytest.mark.parametrize("name", sorted(MUXES))
@pytest.mark.parametrize("count", [2, 3])
def test_every_mux_merges_as_in_process(name, count):
    mux = MUXES[name]()
    got = keys(ZMQStreamer(mux, n_workers=count).iterate(max_iter=60))
    expected = in_process(mux, count, n=60)
    assert 0 < len(got) == len(expected) <= 60
    assert got == expected


def test_a_map_around_the_mux_runs_in_each_worker():
    # A batch holds the items of one share (one worker) only.
    mux = pescador.ChainMux(streamers([4, 4, 4, 4]))
    batches = pescador.Streamer(pescador.buffer_stream, mux, 2)
    got = list(ZMQStreamer(batches, n_workers=2))
    assert len(got) == 8
    for batch in got:
        assert set(batch["s"].tolist()) in ({0}, {2}, {0, 2}, {1}, {3},
                                            {1, 3})
    assert [b["s"].tolist() for b in got] == [
        b["s"].tolist() for b in in_process_batches(batches, 2)]


def in_process_batches(stream, count):
    shares = [pescador.shard(stream, i, count) for i in range(count)]
    return list(merge_plan(stream, count).merge(shares))


def test_max_iter_is_the_total_and_cycle_restarts():
    mux = pescador.ChainMux(streamers([5, 5, 5]))
    stream = ZMQStreamer(mux, n_workers=3)
    full = keys(stream)
    assert len(full) == 15
    assert keys(stream.iterate(max_iter=7)) == full[:7]
    assert keys(stream.cycle(max_iter=20)) == (full + full)[:20]
    assert len(list(ZMQStreamer(mux, n_workers=3, ordered=False).iterate(
        max_iter=7))) == 7


def test_more_workers_than_streamers_end_at_once():
    mux = pescador.ChainMux(streamers([3, 2]))
    assert keys(ZMQStreamer(mux, n_workers=5)) == [
        (0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    assert sorted(keys(ZMQStreamer(mux, n_workers=5, ordered=False))) == \
        sorted(keys(mux))


@pytest.mark.parametrize("kwargs", [
    {"n_workers": 0}, {"n_workers": -1}, {"n_workers": 1.5},
    {"n_workers": "2"}, {"n_workers": None}, {"ordered": "yes"},
    {"ordered": None}, {"ordered": 1}])
def test_invalid_pool_parameters(kwargs):
    with pytest.raises(pescador.PescadorError, match=list(kwargs)[0]):
        ZMQStreamer(pescador.ChainMux(streamers([1, 1])), **kwargs)


# -- reproducible, exact --------------------------------------------------

def test_seeded_ordered_stream_replays_whatever_the_timing():
    def make():
        return pescador.StochasticMux(
            streamers([None] * 6, jitter=0.002), n_active=2, rate=2,
            weights=[3, 1, 1, 2, 1, 1], random_state=11)
    runs = [keys(ZMQStreamer(make(), n_workers=3).iterate(max_iter=150))
            for _ in range(2)]
    assert len(runs[0]) == 150
    assert runs[0] == runs[1] == in_process(make(), 3, n=150)


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("make", [
    lambda: pescador.ChainMux(streamers([6, 0, 9, 3, 7, 1, 5])),
    lambda: pescador.StochasticMux(
        streamers([6, 0, 9, 3, 7, 1, 5], jitter=0.001), n_active=3,
        rate=None, mode="exhaustive", random_state=2)],
    ids=["chain", "stochastic"])
def test_finite_streams_give_every_item_exactly_once(make, count, ordered):
    got = keys(ZMQStreamer(make(), n_workers=count, ordered=ordered))
    expected = [(s, i) for s, n in enumerate([6, 0, 9, 3, 7, 1, 5])
                for i in range(n)]
    assert len(got) == len(expected) == 31
    assert sorted(got) == expected
    # Each streamer's items keep their order.
    for s in range(7):
        assert [i for t, i in got if t == s] == sorted(
            i for t, i in got if t == s)


def test_long_run_shares_match_the_weights():
    # Shares of unequal total weight: with 2 workers, share 0 holds
    # streamers 0, 2, 4 (weights 5+1+2 = 0.8 of the total) and share 1
    # streamers 1, 3 (0.2). The merge draws the share of each item
    # independently with those probabilities, so the counts per share are
    # exactly multinomial: plain chi-square. Within a share, StochasticMux
    # gives streamers runs of 1 + Poisson(rate) items (its budgets), so
    # the count of a streamer is a sum of runs of length L and its
    # variance is inflated by about E[L^2] / E[L] = 1 + r + r / (1 + r)
    # (5.8 for rate r = 4; the factor (1 - p) is dropped: conservative);
    # the chi-square statistic is divided by that. Both tests at p = 0.001,
    # on a fixed seed (deterministic). A merge that ignored the weights
    # (50/50) would give a share statistic above 10 000.
    weights = np.array([5, 1, 1, 1, 2], dtype=float)
    weights /= weights.sum()
    rate, n = 4, 20000
    mux = pescador.StochasticMux(
        [pescador.Streamer(labels, s) for s in range(5)], n_active=2,
        rate=rate, weights=weights, random_state=1)
    got = [int(item["s"]) for item in ZMQStreamer(
        mux, n_workers=2, hwm=64).iterate(max_iter=n)]
    assert len(got) == n
    counts = np.bincount(got, minlength=5)
    shares = np.array([counts[0::2].sum(), counts[1::2].sum()])
    share_stat = (((shares - n * np.array([0.8, 0.2])) ** 2)
                  / (n * np.array([0.8, 0.2]))).sum()
    assert share_stat < scipy.stats.chi2.ppf(0.999, 1)
    inflation = 1 + rate + rate / (1 + rate)
    stat = (((counts - n * weights) ** 2) / (n * weights)).sum() / inflation
    assert stat < scipy.stats.chi2.ppf(0.999, 4)


def _seeded():
    return pescador.StochasticMux(streamers([None] * 5), n_active=2, rate=2,
                                  random_state=21)


def test_epochs_differ_and_a_deep_copy_replays_them():
    stream = ZMQStreamer(_seeded(), n_workers=2)
    replay = copy.deepcopy(stream)
    epochs = [keys(stream.iterate(max_iter=40)) for _ in range(3)]
    assert all(len(epoch) == 40 for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3
    assert [keys(replay.iterate(max_iter=40)) for _ in range(3)] == epochs
    assert epochs == [in_process(_seeded(), 2, e, 40) for e in range(3)]


def test_spawn_gives_the_same_stream_as_fork():
    mux = _seeded()
    got = {method: keys(ZMQStreamer(mux, n_workers=2, start_method=method)
                        .iterate(max_iter=30))
           for method in ("fork", "spawn")}
    assert len(got["fork"]) == 30
    assert got["fork"] == got["spawn"] == in_process(mux, 2, n=30)


# -- refused, failed, killed -------------------------------------------------

def _lazy_streamers():
    for s in range(3):
        yield pescador.Streamer(numbered, s, 2)


@pytest.mark.parametrize("stream", [
    pescador.Streamer(numbered, 0, 5),
    pescador.ChainMux(_lazy_streamers())], ids=["no mux", "lazy source"])
def test_unsplittable_streams_are_refused_before_any_process(stream,
                                                             monkeypatch):
    started = []
    monkeypatch.setattr(process_module.WorkerProcess, "start",
                        lambda self: started.append(self))
    before = children()
    with pytest.raises(pescador.PescadorError, match="shard|split"):
        next(ZMQStreamer(stream, n_workers=2).iterate())
    assert started == [] and children() == before


@pytest.mark.parametrize("ordered", [True, False])
def test_an_error_in_one_worker_stops_the_others(tmp_path_factory, ordered,
                                                 no_leftovers):
    cleaned = tmp_path_factory.mktemp("cleaned") / "cleaned"
    mux = pescador.ChainMux([
        pescador.Streamer(forever_with_cleanup, str(cleaned)),
        pescador.Streamer(items_then_fail, 3, ValueError("boom"))])
    received = 0
    with pytest.raises(ValueError, match="boom") as info:
        for _ in ZMQStreamer(mux, n_workers=2, ordered=ordered):
            received += 1
    assert received >= (6 if ordered else 3)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "items_then_fail" in info.value.__cause__.traceback
    assert cleaned.read_text() == "cleaned up"


@pytest.mark.parametrize("ordered", [True, False])
def test_sigkill_of_one_worker_is_a_pescador_error(ordered, no_leftovers):
    stream = ZMQStreamer(pescador.ChainMux(streamers([None] * 3)),
                         n_workers=3, ordered=ordered)
    items = stream.iterate()
    next(items)
    workers = sorted(p.pid for p in multiprocessing.active_children())
    assert len(workers) == 3
    os.kill(workers[1], signal.SIGKILL)
    deadline = time.monotonic() + 20
    with pytest.raises(pescador.PescadorError, match="SIGKILL"):
        for _ in items:
            assert time.monotonic() < deadline
    for pid in workers:
        assert pid_gone(pid, 5)


# -- early stops leave nothing ----------------------------------------------
# Each stop takes 3 items and returns the sources they came from (the
# generators that surely started, so whose ``finally`` must have run).

def _sources(items, n=3):
    return {int(next(items)["x"][0]) for _ in range(n)}


def _break(stream):
    got = set()
    for item in stream.iterate():
        got.add(int(item["x"][0]))
        if len(got) == 3:
            break
    return got


def _close(stream):
    items = stream.iterate()
    got = _sources(items)
    items.close()
    return got


def _collect(stream):
    items = stream.iterate()
    got = _sources(items)
    del items
    gc.collect()
    return got


def _max_iter(stream):
    items = list(stream.iterate(max_iter=5))
    assert len(items) == 5
    return {int(item["x"][0]) for item in items}


def _throw(stream):
    items = stream.iterate()
    got = _sources(items)
    with pytest.raises(KeyboardInterrupt):
        items.throw(KeyboardInterrupt)
    return got


def tagged_forever(tag, path):
    """Yield ``{'x': [tag]}`` forever; write ``path`` when stopped."""
    try:
        while True:
            yield {"x": np.array([tag])}
    finally:
        with open(path, "w") as handle:
            handle.write("cleaned up")


@pytest.mark.parametrize("ordered", [True, False])
def test_early_stops_leave_nothing(tmp_path_factory, ordered, no_leftovers):
    folder = tmp_path_factory.mktemp("cleaned")
    cleaned = [folder / "c{}".format(i) for i in range(3)]
    mux = pescador.ChainMux([pescador.Streamer(tagged_forever, i, str(path))
                             for i, path in enumerate(cleaned)])
    stream = ZMQStreamer(mux, n_workers=3, ordered=ordered)
    for stop in [_break, _close, _collect, _max_iter, _throw] * 2:
        sources = stop(stream)
        if ordered:  # round-robin: one item of each share first
            assert sources == {0, 1, 2}
        assert sources and all(cleaned[s].read_text() == "cleaned up"
                               for s in sources)
        for path in cleaned:
            if path.exists():
                os.remove(str(path))


def test_ctrl_c_while_waiting_leaves_nothing(no_leftovers):
    mux = pescador.ChainMux(streamers([None] * 2, jitter=0.5))
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(ZMQStreamer(mux, n_workers=2, timeout=1)):
            if i == 0:
                timer.start()
    timer.join()


EXIT_SCRIPT = r"""
import multiprocessing
import pescador
from tests import test_zmq_pool

if __name__ == '__main__':
    mux = pescador.ChainMux(test_zmq_pool.streamers([None] * 3))
    it = pescador.ZMQStreamer(mux, n_workers=3).iterate()
    next(it)
    print(*[p.pid for p in multiprocessing.active_children()], flush=True)
"""


def test_interpreter_exit_with_an_open_pool(tmp_path):
    result = run_script(tmp_path, EXIT_SCRIPT, timeout=30)
    pids = [int(pid) for pid in result.stdout.split()]
    try:
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert len(pids) == 3
        assert all(pid_gone(pid, 5) for pid in pids)
    finally:
        for pid in pids:
            kill_quietly(pid)


def test_a_worker_closes_every_descriptor_of_another_pool():
    before = set(fd_targets().values())
    first = ZMQStreamer(pescador.ChainMux(streamers([None] * 3)),
                        n_workers=3, start_method="fork").iterate()
    # The workers' connections open as each one sends: take an item of
    # each share (round-robin) and let the others arrive.
    for _ in range(6):
        next(first)
    owned = {target for target in set(fd_targets().values()) - before
             if target.startswith(("socket:", "pipe:"))}
    assert len(owned) >= 6  # 3 listening sockets, 3 connections, pipes
    inherited = new_worker_fd_targets(ZMQStreamer(
        pescador.Streamer(numbered, 0, None, 0.5), start_method="fork"))
    first.close()
    assert owned & inherited == set()
    assert multiprocessing.active_children() == []


def test_the_workers_example_measures_and_replays(monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    from .test_examples import load
    result = load("parallel_workers").main([
        "--items", "20", "--ffts", "1", "--max-workers", "2",
        "--rounds", "1"])
    assert sorted(result["rates"]) == [0, 1, 2]
    assert all(rate > 0 for rate in result["rates"].values())
    assert result["reproducible"] is True
