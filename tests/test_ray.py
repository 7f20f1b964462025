"""RayStreamer on a two-node Ray cluster simulated on this machine.

One module-scoped cluster (a head node and a worker node of one CPU each)
serves every test; a third node, added and removed by one test, stands for
a machine that is lost mid-stream.
"""

import copy
import os
import time
from collections import Counter

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.state import list_tasks  # noqa: E402

import pescador  # noqa: E402
from pescador import ChainMux, StochasticMux, Streamer  # noqa: E402
from pescador.adapters import RayStreamer  # noqa: E402
from pescador.split import merge_plan, shard  # noqa: E402
from pescador.zmq_stream import RemoteTraceback  # noqa: E402

from . import streams  # noqa: E402

SHARE_TASK = "_run_share"


def tagged(stream_id, n):
    """Yield n items ``(stream_id, i, node id of the worker)``."""
    node = ray.get_runtime_context().get_node_id()
    for i in range(n):
        yield (stream_id, i, node)


def failing(n):
    """Yield 0, ..., n - 1, then raise ValueError."""
    yield from range(n)
    raise ValueError("bad item {}".format(n))


def forever_marked(folder, label):
    """Yield ``label`` forever; write folder/label.started at the start and
    folder/label.stopped when stopped (by a cancel: KeyboardInterrupt)."""
    open(os.path.join(folder, label + ".started"), "w").close()
    try:
        while True:
            time.sleep(0.005)
            yield label
    finally:
        open(os.path.join(folder, label + ".stopped"), "w").close()


def slow(seconds):
    time.sleep(seconds)
    yield "late"


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()  # a local cluster left by a doctest
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def running_share_tasks():
    return [task for task in list_tasks(
        filters=[("name", "=", SHARE_TASK)], limit=1000)
        if task.state not in ("FINISHED", "FAILED")]


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_every_item_once_on_both_nodes(cluster):
    mux = ChainMux([Streamer(tagged, s, 5 + s) for s in range(6)])
    got = list(RayStreamer(mux, n_workers=2))
    values = [(s, i) for s, i, _ in got]
    expected = [(s, i) for s in range(6) for i in range(5 + s)]
    assert len(values) == len(expected)
    assert Counter(values) == Counter(expected)
    # The ChainMux merge is round-robin over the shares: the order is the
    # in-process merge's.
    local = merge_plan(mux, 2).merge([shard(mux, i, 2) for i in range(2)])
    assert values == [(s, i) for s, i, _ in local]
    nodes = {node for _, _, node in got}
    assert len(nodes) == 2
    # Each share ran on one node, the two on different ones (a CPU each).
    assert {node for s, _, node in got if s % 2 == 0}.isdisjoint(
        {node for s, _, node in got if s % 2 == 1})


def test_unordered_gives_every_item_once(cluster):
    mux = ChainMux([Streamer(streams.count, 7, start=100 * s)
                    for s in range(5)])
    got = list(RayStreamer(mux, n_workers=2, ordered=False))
    assert len(got) == 35
    assert Counter(got) == Counter(100 * s + i for s in range(5)
                                   for i in range(7))


def seeded_mux(seed=3):
    return StochasticMux([Streamer(streams.constant, s) for s in range(6)],
                         n_active=2, rate=4, random_state=seed)


def test_seeded_ordered_stream_replays_and_epochs_differ(cluster):
    first = list(RayStreamer(seeded_mux(), 2).iterate(max_iter=150))
    stream = RayStreamer(seeded_mux(), 2)
    replay = copy.deepcopy(stream)
    second = list(stream.iterate(max_iter=150))
    assert len(first) == 150
    assert first == second
    # The same as merging the shares in process.
    mux = seeded_mux()
    local = merge_plan(mux, 2).merge([shard(mux, i, 2) for i in range(2)])
    assert first == [next(local) for _ in range(150)]
    # The next epoch differs; a deep copy replays the epochs.
    assert stream.epoch == 1
    third = list(stream.iterate(max_iter=150))
    assert third != first
    assert list(replay.iterate(max_iter=150)) == first
    assert list(replay.iterate(max_iter=150)) == third


def test_cycle_restarts_with_the_next_epoch(cluster):
    mux = ChainMux([Streamer(streams.count, 2, start=10 * s)
                    for s in range(3)])
    stream = RayStreamer(mux, n_workers=2)
    assert list(stream.cycle(max_iter=14)) == \
        [0, 10, 1, 11, 20, 21] * 2 + [0, 10]
    assert stream.epoch == 3


def test_worker_exception_reraised_with_its_type(cluster):
    mux = ChainMux([Streamer(streams.count, 10, start=100),
                    Streamer(failing, 3)])
    got = []
    with pytest.raises(ValueError, match="bad item 3") as error:
        for item in RayStreamer(mux, n_workers=2):
            got.append(item)
    assert type(error.value) is ValueError
    assert got == [100, 0, 101, 1, 102, 2, 103]
    cause = error.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in failing" in cause.traceback
    assert 'raise ValueError("bad item {}".format(n))' in cause.traceback
    assert wait_for(lambda: not running_share_tasks(), 30)


def test_unsplittable_stream_fails_before_remote_work(cluster):
    with pytest.raises(pescador.PescadorError, match="no mux to split"):
        list(RayStreamer(Streamer(streams.count, 5), n_workers=2))
    assert list(RayStreamer(Streamer(streams.count, 3), n_workers=1)) == \
        [0, 1, 2]


def test_silent_share_is_an_error_within_timeout(cluster):
    start = time.monotonic()
    with pytest.raises(pescador.PescadorError, match="in 1.5 s"):
        list(RayStreamer(ChainMux([Streamer(slow, 60)]), 1, timeout=1.5))
    assert time.monotonic() - start < 20
    assert wait_for(lambda: not running_share_tasks(), 30)


@pytest.mark.parametrize("how", ["break", "close", "gc"])
def test_early_stop_leaves_no_running_task(cluster, tmp_path, how):
    mux = ChainMux([Streamer(forever_marked, str(tmp_path), label)
                    for label in "ab"])
    items = RayStreamer(mux, n_workers=2).iterate()
    if how == "break":
        for count, _ in enumerate(items):
            if count == 20:
                break
    else:
        assert [next(items) for _ in range(20)] == ["a", "b"] * 10
    if how == "gc":
        del items
    else:
        items.close()
    # RayStreamer waits for the cancelled tasks to stop.
    assert sorted(os.listdir(tmp_path)) == [
        "a.started", "a.stopped", "b.started", "b.stopped"]
    assert wait_for(lambda: not running_share_tasks(), 30)


def test_max_iter_stops_the_shares(cluster, tmp_path):
    mux = ChainMux([Streamer(forever_marked, str(tmp_path), label)
                    for label in "ab"])
    assert list(RayStreamer(mux, 2).iterate(max_iter=5)) == list("ababa")
    assert sorted(os.listdir(tmp_path)) == [
        "a.started", "a.stopped", "b.started", "b.stopped"]


def test_lost_node_is_an_error_within_timeout(cluster):
    # A third node that only the shares fit on, lost mid-stream.
    doomed = cluster.add_node(num_cpus=1, resources={"doomed": 2})
    cluster.wait_for_nodes()
    mux = ChainMux([Streamer(streams.constant, s) for s in range(2)])
    timeout = 30
    stream = RayStreamer(mux, n_workers=2, timeout=timeout, options={
        "num_cpus": 0.5, "resources": {"doomed": 1}})
    items = stream.iterate()
    assert [next(items) for _ in range(10)] == [0, 1] * 5
    cluster.remove_node(doomed)
    start = time.monotonic()
    with pytest.raises(pescador.PescadorError, match="lost|timeout") as error:
        for _ in range(10 ** 6):
            next(items)
    assert time.monotonic() - start < timeout + 15
    # Ray reports the node's death (NodeDiedError), or the timeout hits.
    assert isinstance(error.value.__cause__, (ray.exceptions.RayError,
                                              type(None)))
    items.close()


def global_draws(n):
    """n draws from numpy's and Python's global generators, which it then
    leaves seeded with 0 (for the next task of its worker process)."""
    import random

    import numpy as np
    for _ in range(n):
        yield (int(np.random.randint(2 ** 31)), random.getrandbits(31))
    np.random.seed(0)
    random.seed(0)


def test_unseeded_shares_draw_fresh_entropy(cluster):
    # Ray reuses worker processes: without a reseed, each share after the
    # first run would start from the seed 0 the previous one left.
    mux = ChainMux([Streamer(global_draws, 5) for _ in range(2)])
    runs = [list(RayStreamer(mux, n_workers=2)) for _ in range(3)]
    for run in runs:
        assert len(run) == 10
        assert run[0::2] != run[1::2]   # the two shares
    assert runs[1] != runs[2]


@pytest.mark.parametrize("kwargs, message", [
    ({"n_workers": 0}, "n_workers=0"),
    ({"n_workers": 2.0}, "n_workers=2.0"),
    ({"n_workers": 2, "timeout": 0}, "timeout=0"),
    ({"n_workers": 2, "max_in_flight": 0}, "max_in_flight=0"),
    ({"n_workers": 2, "options": ["num_cpus"]}, "options="),
    ({"n_workers": 2, "options": {"max_retries": 3}}, "max_retries"),
])
def test_invalid_parameters(kwargs, message):
    with pytest.raises(pescador.PescadorError, match=message):
        RayStreamer(ChainMux([Streamer("ab")]), **kwargs)


def test_loaded_lazily_from_adapters():
    import pescador.adapters

    assert "RayStreamer" in dir(pescador.adapters)
    stream = pescador.adapters.RayStreamer(ChainMux([Streamer("ab")]), 2)
    assert isinstance(stream, Streamer)
    assert (stream.ordered, stream.timeout, stream.max_in_flight,
            stream.options, stream.epoch) == (True, 60.0, 8,
                                              {"num_cpus": 1}, 0)
