"""Tests for ZMQStreamer's faults (worker errors, dead workers, early
stops, leaks), bounded queue, transport security and start methods."""

import gc
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
import zmq

import pescador
from pescador._background import address
from pescador.zmq_stream import RemoteTraceback, ZMQStreamer
from tests import streams

from .zmq_helpers import (
    ROOT,
    items_then_fail,
    items_then,
    items_then_die,
    counted,
    forever_with_cleanup,
    slow,
    stubborn,
    TwoArgError,
    children,
    n_fds)

pytestmark = pytest.mark.timeout(60)


# -- faults ---------------------------------------------------------------

def test_worker_exception_is_reraised_after_earlier_items():
    stream = ZMQStreamer(pescador.Streamer(items_then_fail, 3,
                                           ValueError("boom")))
    received = []
    with pytest.raises(ValueError, match="boom") as info:
        for item in stream:
            received.append(int(item["i"]))
    assert received == [0, 1, 2]
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "items_then_fail" in cause.traceback
    assert "ValueError: boom" in cause.traceback
    assert multiprocessing.active_children() == []


def test_unpicklable_worker_exception_becomes_pescador_error():
    stream = ZMQStreamer(pescador.Streamer(items_then_fail, 1,
                                           TwoArgError(1, 2)))
    with pytest.raises(pescador.PescadorError,
                       match="TwoArgError: 1 and 2") as info:
        list(stream)
    assert "TwoArgError" in info.value.__cause__.traceback


@pytest.mark.parametrize("bad, words", [
    ([1, 2], ["dict", "list"]),
    ({"x": [1]}, ["'x'", "list"]),
    ({"x": "abc"}, ["'x'", "str"]),
    ({"x": None}, ["'x'", "NoneType"]),
    ({"x": np.array([{}, None])}, ["'x'", "object"]),
])
def test_bad_item_raises_data_error_in_consumer(bad, words):
    received = []
    with pytest.raises(pescador.DataError) as info:
        for item in ZMQStreamer(pescador.Streamer(items_then, 2, bad)):
            received.append(int(item["i"]))
    assert received == [0, 1]
    for word in words:
        assert word in str(info.value)
    assert isinstance(info.value.__cause__, RemoteTraceback)


@pytest.mark.parametrize("how, code", [("exit", "3"), ("kill", "-9"),
                                       ("segfault", "-11")])
def test_worker_death_raises_naming_exit_code(how, code):
    stream = ZMQStreamer(pescador.Streamer(items_then_die, 2, how),
                         timeout=1)
    received = []
    with pytest.raises(pescador.PescadorError,
                       match="exited with code {}".format(code)):
        for item in stream:
            received.append(int(item["i"]))
    # Items still in flight die with the worker.
    assert received == [0, 1][:len(received)]
    assert multiprocessing.active_children() == []


def test_unpicklable_streamer_under_spawn_is_clear():
    def local_gen():
        yield {"x": np.zeros(1)}

    stream = ZMQStreamer(pescador.Streamer(local_gen), start_method="spawn")
    with pytest.raises(pescador.PescadorError, match="pickle"):
        next(stream.iterate())
    assert multiprocessing.active_children() == []


def _stop_break(stream):
    for _ in stream.iterate():
        break


def _stop_close(stream):
    items = stream.iterate()
    next(items)
    items.close()


def _stop_gc(stream):
    items = stream.iterate()
    next(items)
    del items
    gc.collect()


def _stop_throw(stream):
    items = stream.iterate()
    next(items)
    with pytest.raises(KeyboardInterrupt):
        items.throw(KeyboardInterrupt)


STOPS = [_stop_break, _stop_close, _stop_gc, _stop_throw]


@pytest.mark.parametrize("stop", STOPS)
def test_early_stop_runs_worker_cleanup(tmp_path, stop):
    path = tmp_path / "done"
    stop(ZMQStreamer(pescador.Streamer(forever_with_cleanup, str(path))))
    assert path.read_text() == "cleaned up"
    assert multiprocessing.active_children() == []


def test_keyboard_interrupt_while_waiting():
    stream = ZMQStreamer(pescador.Streamer(slow), timeout=1)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    received = 0
    with pytest.raises(KeyboardInterrupt):
        for _ in stream:
            received += 1
            if received == 1:
                timer.start()
    timer.join()
    assert received >= 1
    assert multiprocessing.active_children() == []


@pytest.mark.timeout(30)
def test_worker_stops_when_asked_after_zero_copy_sends():
    # Zero-copy sends start a pyzmq helper thread in the worker, which may
    # receive SIGTERM instead of the main thread: the worker must still
    # stop, or with timeout=None this would hang.
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 10, (300, 300)),
                         timeout=None, copy=False)
    for _ in range(10):
        assert len(list(stream)) == 10
        items = stream.iterate()
        next(items)
        items.close()
    assert multiprocessing.active_children() == []


def test_stubborn_worker_is_killed_after_timeout():
    items = ZMQStreamer(pescador.Streamer(stubborn), timeout=0.2).iterate()
    next(items)
    items.close()
    assert multiprocessing.active_children() == []


def test_no_leak_after_100_early_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 10 ** 6))
    _stop_close(stream)  # lazily created fds (e.g. pyzmq's) come first
    before_fds, before_children = n_fds(), children()
    for i in range(100):
        STOPS[i % len(STOPS)](stream)
    assert multiprocessing.active_children() == []
    assert children() == before_children
    assert n_fds() == before_fds
    assert os.listdir(str(tmp_path)) == []


# -- bounded queue --------------------------------------------------------

def _os_buffered_items(transport, nbytes):
    """How many items of nbytes the kernel may buffer on a connection."""
    if transport != "tcp":
        return 1
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        with open("/proc/sys/net/ipv4/" + name) as handle:
            total += int(handle.read().split()[2])
    return -(-total // nbytes)


def _settle(counter, quiet=0.5, deadline=15):
    """Wait until counter stops changing; return its value."""
    end = time.monotonic() + deadline
    value = -1
    while time.monotonic() < end:
        if counter.value == value:
            return value
        value = counter.value
        time.sleep(quiet)
    return value


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_worker_blocks_at_high_water_mark(transport):
    counter = multiprocessing.get_context("fork").Value("i", 0)
    hwm, nbytes = 2, 1 << 20
    slack = 2 + _os_buffered_items(transport, nbytes)
    n = 1 + 2 * hwm + slack + 30
    stream = ZMQStreamer(pescador.Streamer(counted, counter, n, nbytes),
                         hwm=hwm, transport=transport, start_method="fork")
    items = stream.iterate()
    next(items)
    produced = _settle(counter)
    # hwm on each side, plus what the OS buffers, plus the item being
    # encoded: far fewer than n.
    assert 1 <= produced <= 1 + 2 * hwm + slack
    next(items)
    assert _settle(counter) <= 2 + 2 * hwm + slack
    assert 2 + sum(1 for _ in items) == n
    assert counter.value == n


# -- security -------------------------------------------------------------

def _listening_tcp_addresses():
    """(address hex, port) of this process's listening TCP sockets."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    address, port = fields[1].split(":")
                    found.append((address, int(port, 16)))
    return found


def test_tcp_binds_loopback_only_and_ignores_intruders():
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 20),
                         transport="tcp", min_port=40000, max_port=60000)
    items = stream.iterate()
    received = [next(items)]
    listening = _listening_tcp_addresses()
    assert len(listening) == 1
    address, port = listening[0]
    assert address == "0100007F"  # 127.0.0.1
    assert 40000 <= port <= 60000
    # Another local process connecting to the port cannot inject items.
    context = zmq.Context()
    intruder = context.socket(zmq.PUSH)
    intruder.connect("tcp://127.0.0.1:{}".format(port))
    pescador.zmq_send_data(intruder, {"X": np.zeros(3), "Y": np.array(-1)})
    intruder.send_multipart([b"Q" + bytes(16)])
    received.extend(items)
    intruder.close(linger=0)
    context.term()
    assert [int(item["Y"]) for item in received] == list(range(20))


def _abstract_unix_names():
    with open("/proc/net/unix") as handle:
        return {line.split()[-1] for line in handle.readlines()[1:]
                if line.split()[-1].startswith("@pescador-")}


def test_ipc_on_linux_leaves_no_file_system_entry(tmp_path, monkeypatch):
    if not address.ABSTRACT_IPC:
        pytest.skip("no abstract Unix socket namespace")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = _abstract_unix_names()
    items = ZMQStreamer(pescador.Streamer(streams.arrays, 5),
                       transport="ipc").iterate()
    next(items)
    assert len(_abstract_unix_names() - before) == 1
    assert os.listdir(str(tmp_path)) == []
    assert _listening_tcp_addresses() == []
    assert len(list(items)) == 4
    assert _abstract_unix_names() - before == set()


def test_ipc_lives_in_private_directory_removed_afterwards(tmp_path,
                                                          monkeypatch):
    # Where there is no abstract namespace (not Linux).
    monkeypatch.setattr(address, "ABSTRACT_IPC", False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stream = ZMQStreamer(pescador.Streamer(streams.arrays, 5),
                         transport="ipc", start_method="fork")
    for _ in range(2):
        items = stream.iterate()
        next(items)
        (directory,) = os.listdir(str(tmp_path))
        mode = os.stat(str(tmp_path / directory)).st_mode
        assert stat.S_IMODE(mode) == 0o700
        (name,) = os.listdir(str(tmp_path / directory))
        assert stat.S_ISSOCK(os.stat(str(tmp_path / directory / name))
                             .st_mode)
        assert _listening_tcp_addresses() == []
        assert len(list(items)) == 4
        assert os.listdir(str(tmp_path)) == []


# -- start methods --------------------------------------------------------

SPAWN_SCRIPT = r"""
import json, multiprocessing, sys
import numpy as np
import pescador
from tests import streams

def make_local_gen():
    def local_gen():
        yield {'x': np.zeros(1)}
    return local_gen

if __name__ == '__main__':
    multiprocessing.set_start_method(sys.argv[1])
    out = {}
    stream = pescador.ZMQStreamer(pescador.Streamer(streams.arrays, 4, (2, 3)))
    expected = list(streams.arrays(4, (2, 3)))
    received = list(stream.iterate())
    out['same'] = len(received) == len(expected) == 4 and all(
        np.array_equal(a['X'], b['X']) and a['X'].dtype == b['X'].dtype
        and int(a['Y']) == int(b['Y'])
        for a, b in zip(received, expected))
    out['max_iter'] = len(list(stream.iterate(max_iter=3)))
    try:
        list(pescador.ZMQStreamer(pescador.Streamer(make_local_gen())))
    except pescador.PescadorError as exc:
        out['unpicklable'] = str(exc)
    try:
        list(pescador.ZMQStreamer(pescador.Streamer(streams.fail_after, 0,
                                                    KeyError, 'k')))
    except KeyError as exc:
        out['error'] = repr(exc)
    out['children'] = len(multiprocessing.active_children())
    print(json.dumps(out))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_start_method_in_subprocess(tmp_path, method):
    script = tmp_path / "run_spawn.py"
    script.write_text(SPAWN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, str(script), method], cwd=ROOT,
                            env=env, capture_output=True, text=True,
                            timeout=50)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["same"] is True
    assert out["max_iter"] == 3
    assert "pickle" in out["unpicklable"] and "local_gen" in \
        out["unpicklable"]
    assert out["error"] == "KeyError('k')"
    assert out["children"] == 0
