"""ZMQStreamer through shared memory: values at yield time, lifetimes of
the received arrays, nothing left in /dev/shm on any exit path (with real
processes and SIGKILL), the fallback when shared memory is too small,
every dtype and layout, every start method and transport.

Each test records the prefixes of the runs it starts (`shm.run_prefix` is
wrapped) and, at the end, checks and removes exactly those names."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import pescador
from pescador import PescadorError
from pescador._background import session as session_module
from pescador._background import shm
from tests.test_shm import leftovers, mapped
from tests.zmq_helpers import (ARRAYS, ROOT, assert_same_item, kill_quietly,
                               pid_gone)

pytestmark = pytest.mark.skipif(shm.probe() is not None,
                                reason="no usable /dev/shm")

MB = 1 << 20
START_METHODS = [m for m in ("fork", "forkserver", "spawn")
                 if m in multiprocessing.get_all_start_methods()]


def refilled(nbytes, n):
    """Yield n items holding the same buffer, refilled with i each time."""
    buffer = np.empty(nbytes // 8)
    for i in range(n):
        buffer.fill(i)
        yield {"X": buffer, "i": np.array(i)}


def forever(nbytes):
    """Yield large arrays without end."""
    i = 0
    while True:
        yield {"X": np.full(nbytes // 8, float(i))}
        i += 1


@pytest.fixture
def prefixes(monkeypatch):
    """The run prefixes made during the test; checked and swept after."""
    made = []

    def recorded():
        prefix = original()
        made.append(prefix)
        return prefix

    original = shm.run_prefix
    monkeypatch.setattr(shm, "run_prefix", recorded)
    yield made
    left = [name for prefix in made for name in leftovers(prefix)]
    for prefix in made:
        shm.sweep(prefix)  # even when the test failed
    assert left == []


def check_refilled(items, n):
    assert len(items) == n
    wrong = [k for k, item in enumerate(items)
             if int(item["i"]) != k or item["X"][0] != k
             or item["X"][-1] != k]
    assert wrong == []


# -- values at yield time ---------------------------------------------------

@pytest.mark.parametrize("nbytes, n", [(MB, 200), (8 * MB, 30)])
def test_reused_buffer_arrives_as_yielded(prefixes, nbytes, n):
    # Fails before shared memory: 199 of 200 items arrived wrong.
    stream = pescador.ZMQStreamer(pescador.Streamer(refilled, nbytes, n))
    check_refilled(list(stream), n)
    assert len(prefixes) == 1


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_start_methods_and_transports(prefixes, method, transport):
    stream = pescador.ZMQStreamer(pescador.Streamer(refilled, MB, 40),
                                  start_method=method, transport=transport)
    items = list(stream)
    check_refilled(items, 40)
    # The arrays are views of shared memory, still mapped, names gone.
    assert mapped(prefixes[0]) and leftovers(prefixes[0]) == []


def test_copy_gives_private_arrays(prefixes):
    stream = pescador.ZMQStreamer(pescador.Streamer(refilled, MB, 40),
                                  copy=True)
    items = list(stream)
    check_refilled(items, 40)
    assert mapped(prefixes[0]) == []
    assert all(item["X"].flags.owndata for item in items)


# -- lifetimes ----------------------------------------------------------------

def test_arrays_outlive_the_stream_and_stay_writeable(prefixes):
    stream = pescador.ZMQStreamer(pescador.Streamer(refilled, 2 * MB, 30))
    items = list(stream)
    assert leftovers(prefixes[0]) == [] and mapped(prefixes[0])
    for k, item in enumerate(items):
        x = item["X"]
        assert x.flags.writeable and x.flags.aligned
        assert x.ctypes.data % 64 == 0
        x += 1
    check_refilled([{"X": item["X"] - 1, "i": item["i"]} for item in items],
                   30)
    del items, item, x
    assert mapped(prefixes[0]) == []  # freed once dropped


def test_every_dtype_and_layout(prefixes):
    large = [key for key, value in ARRAYS.items()
             if value.nbytes >= shm.THRESHOLD]
    assert len(large) > 20
    for copy in (False, True):
        stream = pescador.ZMQStreamer(pescador.Streamer([ARRAYS] * 3),
                                      copy=copy)
        items = list(stream)
        assert len(items) == 3
        for item in items:
            assert_same_item(item, ARRAYS)
        assert bool(mapped(prefixes[-1])) == (not copy)
        del items, item


# -- nothing left in /dev/shm ---------------------------------------------

def test_no_leftovers_after_early_stops(prefixes):
    stream = pescador.ZMQStreamer(pescador.Streamer(forever, MB))
    for _ in range(100):
        items = stream.iterate()
        next(items)
        next(items)
        items.close()
    assert len(prefixes) == 100
    assert [p for p in prefixes if leftovers(p)] == []


def test_no_leftovers_after_the_worker_is_killed(prefixes):
    stream = pescador.ZMQStreamer(pescador.Streamer(forever, MB))
    items = stream.iterate()
    held = [next(items) for _ in range(3)]
    (session,) = [s for s in session_module._OPEN
                  if s.reader is not None
                  and s.reader.prefix == prefixes[0]]
    time.sleep(0.2)  # the worker fills what may be in flight
    assert leftovers(prefixes[0])  # names not received yet
    os.kill(session.workers[0].pid, signal.SIGKILL)
    with pytest.raises(PescadorError, match="SIGKILL"):
        for _ in items:
            pass
    assert leftovers(prefixes[0]) == []
    assert held[2]["X"][0] == 2.0


CONSUMER_SCRIPT = r"""
import itertools, sys
import numpy as np
import pescador
from pescador._background import session
from tests import test_zmq_shm

items = pescador.ZMQStreamer(pescador.Streamer(test_zmq_shm.forever,
                                               1 << 20)).iterate()
held = list(itertools.islice(items, 3))
(run,) = session._OPEN
print(run.reader.prefix, run.workers[0].pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_no_leftovers_after_the_consumer_is_killed():
    process = subprocess.Popen(
        [sys.executable, "-c", CONSUMER_SCRIPT], cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prefix, pid = None, None
    try:
        words = process.stdout.readline().split()
        assert len(words) == 2, process.stderr.read()
        prefix, pid = words[0], int(words[1])
        assert prefix.startswith("pescador-{}-".format(process.pid))
        deadline = time.monotonic() + 5
        while not leftovers(prefix) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftovers(prefix)  # items in flight, not received
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert pid_gone(pid, 5), "the worker outlived its consumer"
        deadline = time.monotonic() + 5
        while leftovers(prefix) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftovers(prefix) == []
    finally:
        for each in (process.pid, pid):
            if each is not None:
                kill_quietly(each)
        process.communicate(timeout=10)
        if prefix is not None:
            shm.sweep(prefix)


# -- fallback -------------------------------------------------------------------

@pytest.mark.parametrize("limit, nbytes", [
    (1000, MB),  # the consumer finds shared memory too small
    (20 * MB, 16 * MB),  # the worker cannot place an array
])
def test_small_shared_memory_falls_back_once(prefixes, monkeypatch, limit,
                                             nbytes):
    monkeypatch.setenv(shm.LIMIT_ENV, str(limit))
    stream = pescador.ZMQStreamer(pescador.Streamer(refilled, nbytes, 12))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = list(stream)
    assert [w.category for w in caught] == [shm.ShmFallbackWarning]
    assert "/dev/shm" in str(caught[0].message)
    check_refilled(items, 12)


# -- a pool of workers --------------------------------------------------------

@pytest.mark.parametrize("ordered", [True, False])
def test_pool_of_workers_shares_one_reader(prefixes, ordered):
    streams = [pescador.Streamer(refilled, MB, 30) for _ in range(4)]
    mux = pescador.RoundRobinMux(streams)
    stream = pescador.ZMQStreamer(mux, n_workers=2, ordered=ordered)
    items = list(stream)
    assert len(items) == 120
    expected = sorted(k for k in range(30) for _ in range(4))
    assert sorted(int(item["i"]) for item in items) == expected
    assert all(item["X"][0] == item["i"] and item["X"][-1] == item["i"]
               for item in items)
    assert len(prefixes) == 1 and mapped(prefixes[0])
    assert leftovers(prefixes[0]) == []
