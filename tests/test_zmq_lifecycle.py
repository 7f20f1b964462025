"""ZMQStreamer's lifecycle (issue 11): every way an iteration ends, at any
moment, leaves no process, descriptor, folder or stderr line behind; each
iteration is a new epoch; the worker dies with its consumer.

Exit and signal tests run a script in a subprocess, bounded by a timeout,
and clean up by PID."""

import copy
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pescador
from pescador.zmq_stream import ZMQStreamer
from tests import streams

from .zmq_helpers import (ROOT, fd_targets, global_draws,
                          items_then_sleep, kill_quietly,
                          limited_with_cleanup, pid_gone, run_script)

pytestmark = pytest.mark.timeout(90)

METHODS = multiprocessing.get_all_start_methods()


def _popen(tmp_path, source, *args, **kwargs):
    script = tmp_path / "script.py"
    script.write_text(source)
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, str(script)] + list(args),
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _finish(process, timeout):
    """(stdout, stderr) of ``process``; kill it if it runs too long."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
        pytest.fail("the script did not exit within {} s; stdout {!r}, "
                    "stderr {!r}".format(timeout, out, err))


# -- 1. exit and garbage collection with an open iteration ----------------

EXIT_SCRIPT = r"""
import multiprocessing, sys
import pescador
from tests import streams

if __name__ == '__main__':
    how, method = sys.argv[1], sys.argv[2]
    stream = pescador.ZMQStreamer(pescador.Streamer(streams.arrays, 10 ** 6),
                                  start_method=method)
    it = stream.iterate() if how == 'iterate' else stream.cycle()
    next(it)
    (worker,) = multiprocessing.active_children()
    print(worker.pid, flush=True)
"""


@pytest.mark.parametrize("how, method", [("iterate", "fork"),
                                         ("cycle", "fork"),
                                         ("iterate", "spawn")])
def test_process_exits_with_an_open_iteration(tmp_path, how, method):
    process = _popen(tmp_path, EXIT_SCRIPT, how, method)
    try:
        out, err = _finish(process, 20)
    finally:
        kill_quietly(process.pid)
    pid = int(out.split()[0])
    try:
        assert process.returncode == 0, err
        assert err == ""
        assert pid_gone(pid, 5)
    finally:
        kill_quietly(pid)


REPL_INPUT = """\
import multiprocessing
import pescador
from tests import streams
stream = pescador.ZMQStreamer(pescador.Streamer(streams.arrays, 10 ** 6))
it = stream.{}()
next(it)
print('PID', multiprocessing.active_children()[0].pid)
exit()
"""


@pytest.mark.parametrize("how", ["iterate", "cycle"])
def test_repl_exits_with_an_open_iteration(how):
    env = dict(os.environ, PYTHONPATH=ROOT)
    process = subprocess.Popen([sys.executable, "-q", "-i"], cwd=ROOT,
                               env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(REPL_INPUT.format(how), timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
    finally:
        kill_quietly(process.pid)
    pid = int(out.split("PID ")[1].split()[0])
    try:
        assert process.returncode == 0, "the REPL did not exit"
        assert err.replace(">>> ", "").strip() == ""
        assert pid_gone(pid, 5)
    finally:
        kill_quietly(pid)


GC_SCRIPT = r"""
import gc, multiprocessing
import pescador
from tests import streams

gc.disable()
stream = pescador.ZMQStreamer(pescador.Streamer(streams.arrays, 10 ** 6))
it = stream.iterate()
next(it)
(worker,) = multiprocessing.active_children()
print(worker.pid, flush=True)


class Box:
    pass


box = Box()
box.items, box.me = it, box  # the iterator is only reachable from a cycle
del it, box
gc.collect()
print(len(multiprocessing.active_children()), flush=True)
"""


def test_garbage_collector_frees_an_iterator_in_a_cycle(tmp_path):
    process = _popen(tmp_path, GC_SCRIPT)
    try:
        out, err = _finish(process, 20)
    finally:
        kill_quietly(process.pid)
    pid, alive = (int(word) for word in out.split())
    try:
        assert process.returncode == 0, err
        assert (alive, err) == (0, "")
        assert pid_gone(pid, 5)
    finally:
        kill_quietly(pid)


# -- 2. max_iter over a generator with cleanup ----------------------------

def test_max_iter_with_user_cleanup_stops_promptly(tmp_path, capfd):
    log = tmp_path / "log"
    stream = ZMQStreamer(pescador.Streamer(limited_with_cleanup, str(log)),
                         timeout=3)
    for run in range(40):
        start = time.monotonic()
        assert len(list(stream.iterate(max_iter=3))) == 3
        # A stall ends only when the worker is killed, after `timeout`.
        assert time.monotonic() - start < 2, "run {} stalled".format(run)
        assert log.read_text().count("cleaned up") == run + 1
    assert multiprocessing.active_children() == []
    assert capfd.readouterr().err == ""


# -- 3. no noise, under every start method --------------------------------

NOISE_SCRIPT = r"""
import gc, multiprocessing, sys
import pescador
from tests import streams, zmq_helpers

if __name__ == '__main__':
    method, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sources = [pescador.Streamer(zmq_helpers.forever_with_cleanup, path),
               pescador.Streamer(streams.arrays, 10 ** 6, (300, 300))]
    for i in range(n):
        stream = pescador.ZMQStreamer(sources[i % 2], start_method=method)
        how = (i // 2) % 4
        if how == 0:
            for _ in stream:
                break
        elif how == 1:
            items = stream.iterate()
            next(items)
            items.close()
        elif how == 2:
            items = stream.iterate()
            next(items)
            del items
            gc.collect()
        else:
            assert len(list(stream.iterate(max_iter=2))) == 2
    print(len(multiprocessing.active_children()))
"""


@pytest.mark.parametrize("method, n", [("fork", 200), ("forkserver", 40),
                                       ("spawn", 16)])
def test_early_stops_print_nothing(tmp_path, method, n):
    if method not in METHODS:
        pytest.skip("no " + method)
    result = run_script(tmp_path, NOISE_SCRIPT, method, str(n),
                        str(tmp_path / "cleanup"), timeout=80)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.split() == ["0"]


# -- 4. epochs ------------------------------------------------------------

def _epoch(items):
    return [item["X"].tobytes() for item in items]


def _seeded_mux():
    return pescador.StochasticMux(
        [pescador.Streamer(streams.arrays, 6, (2,), "float32", seed)
         for seed in range(6)], n_active=2, rate=2, random_state=7)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_seeded_epochs_differ_and_a_deep_copy_replays_them(method):
    stream = ZMQStreamer(_seeded_mux(), start_method=method)
    replay = copy.deepcopy(stream)
    epochs = [_epoch(stream.iterate(max_iter=30)) for _ in range(3)]
    assert all(len(epoch) == 30 for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3
    assert [_epoch(replay.iterate(max_iter=30)) for _ in range(3)] == epochs
    # The first epoch is the stream as it runs in process.
    assert epochs[0] == _epoch(_seeded_mux().iterate(max_iter=30))


def test_cycle_restarts_are_new_epochs():
    stream = ZMQStreamer(pescador.Streamer(global_draws, 3))
    draws = [float(item["np"]) for item in stream.cycle(max_iter=9)]
    assert len(draws) == 9 and len(set(draws)) == 9


@pytest.mark.parametrize("unseeded", [
    lambda: pescador.Streamer(global_draws, 4),
    lambda: pescador.StochasticMux(
        [pescador.Streamer(global_draws, 4) for _ in range(3)],
        n_active=2, rate=2, random_state=None)])
def test_unseeded_epochs_differ_under_fork(unseeded):
    np.random.seed(0)  # the workers must not start from this state
    stream = ZMQStreamer(unseeded(), start_method="fork")
    epochs = []
    for _ in range(3):
        items = list(stream.iterate(max_iter=4))
        assert len(items) == 4
        # (`random` is reseeded at fork by Python itself; numpy is not.)
        epochs.append(tuple(float(item["np"]) for item in items))
    assert len(set(epochs)) == 3


# -- 5 and 7. the consumer dies -------------------------------------------

ORPHAN_SCRIPT = r"""
import multiprocessing, sys, tempfile, time
import pescador
from pescador._background import address
from tests import zmq_helpers

tempfile.tempdir = sys.argv[2]
address.ABSTRACT_IPC = sys.argv[1] == 'abstract'
it = pescador.ZMQStreamer(pescador.Streamer(zmq_helpers.items_then_sleep, 1,
                                            60)).iterate()
next(it)
(worker,) = multiprocessing.active_children()
# A sibling forked after the worker holds every pipe the consumer had.
sibling = multiprocessing.get_context('fork').Process(target=time.sleep,
                                                      args=(60,))
sibling.start()
print(worker.pid, sibling.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("ipc", ["abstract", "folder"])
def test_worker_dies_with_its_killed_consumer(tmp_path, ipc):
    folder = tmp_path / "tmp"
    folder.mkdir()
    process = _popen(tmp_path, ORPHAN_SCRIPT, ipc, str(folder))
    pids = []
    try:
        line = process.stdout.readline()
        pids = [int(word) for word in line.split()]
        assert len(pids) == 2, process.stderr.read()
        worker = pids[0]
        if ipc == "folder":
            assert len(os.listdir(str(folder))) == 1
        else:
            assert os.listdir(str(folder)) == []
        time.sleep(0.3)  # the worker is inside time.sleep(60)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert pid_gone(worker, 5), "the worker outlived its consumer"
        # ... after removing what the consumer left.
        assert os.listdir(str(folder)) == []
    finally:
        for pid in [process.pid] + pids:
            kill_quietly(pid)
        process.communicate(timeout=10)


# -- 6. Ctrl-C --------------------------------------------------------------

SECOND_CTRL_C_SCRIPT = r"""
import json, os, signal, sys, tempfile, threading, time
import pescador
from pescador._background import address
from tests import zmq_helpers

tempfile.tempdir = sys.argv[1]
address.ABSTRACT_IPC = False  # exercise the folder path
stream = pescador.ZMQStreamer(pescador.Streamer(zmq_helpers.stubborn),
                              timeout=1)
list(stream.iterate(max_iter=1))  # lazily created fds come first
before = (zmq_helpers.n_fds(), sorted(zmq_helpers.children()))
items = stream.iterate()
next(items)
timers = [threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
          for delay in (0.2, 0.5)]
for timer in timers:
    timer.start()
start = time.monotonic()
interrupted = 0
try:
    items.close()  # the stubborn worker takes `timeout` to kill
    time.sleep(5)  # a KeyboardInterrupt lands here at the latest
except KeyboardInterrupt:
    interrupted += 1
try:
    time.sleep(1)
except KeyboardInterrupt:  # the old code let the second one through
    interrupted += 1
for timer in timers:
    timer.join()
print(json.dumps(dict(
    interrupted=interrupted, seconds=time.monotonic() - start,
    before=before, after=(zmq_helpers.n_fds(),
                          sorted(zmq_helpers.children())),
    leftovers=[name for name in os.listdir(sys.argv[1])
               if name.startswith('pescador-')])))
"""


def test_second_ctrl_c_during_cleanup_leaks_nothing(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    result = run_script(tmp_path, SECOND_CTRL_C_SCRIPT, str(folder),
                        timeout=30)
    assert (result.returncode, result.stderr) == (0, "")
    out = json.loads(result.stdout)
    # The two Ctrl-C during the cleanup make one KeyboardInterrupt after.
    assert out["interrupted"] == 1
    assert out["seconds"] < 3.5
    assert out["after"] == out["before"]
    assert out["leftovers"] == []


CTRL_C_SCRIPT = r"""
import json, multiprocessing, os, random, signal, sys, tempfile, threading
import time
import pescador
from pescador._background import address
from tests import streams, zmq_helpers

if __name__ == '__main__':
    method, n, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    tempfile.tempdir = folder
    address.ABSTRACT_IPC = False  # exercise the folder path
    random.seed(0)


    def all_children():
        found = []
        for name in os.listdir('/proc'):
            try:
                with open('/proc/{}/stat'.format(name)) as handle:
                    fields = handle.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                found.append((int(name), fields[0]))
        return sorted(found)


    stream = pescador.ZMQStreamer(pescador.Streamer(streams.arrays, 10 ** 6),
                                  start_method=method)
    list(stream.iterate(max_iter=2))
    before = (zmq_helpers.n_fds(), all_children())
    interrupted = 0
    for i in range(n):
        fired = threading.Event()

        def fire(delay=random.uniform(0, 0.03)):
            time.sleep(delay)
            os.killpg(os.getpgrp(), signal.SIGINT)  # as the terminal does
            fired.set()

        threading.Thread(target=fire).start()
        while True:
            try:
                try:
                    for j, _ in enumerate(stream.iterate()):
                        if j == 20:
                            break
                finally:
                    fired.wait(5)
                    time.sleep(0.1)  # a pending SIGINT is raised by now
                break
            except KeyboardInterrupt:
                interrupted += 1
                if fired.is_set():
                    break
    time.sleep(0.2)
    after = (zmq_helpers.n_fds(), all_children())
    print(json.dumps(dict(interrupted=interrupted, before=before, after=after,
                          leftovers=[name for name in os.listdir(folder)
                                     if name.startswith('pescador-')])))
"""


@pytest.mark.parametrize("method, n", [("fork", 60), ("forkserver", 15),
                                       ("spawn", 6)])
def test_repeated_ctrl_c_leaks_nothing(tmp_path, method, n):
    if method not in METHODS:
        pytest.skip("no " + method)
    folder = tmp_path / "tmp"
    folder.mkdir()
    process = _popen(tmp_path, CTRL_C_SCRIPT, method, str(n), str(folder),
                     start_new_session=True)
    try:
        out, err = _finish(process, 80)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
    assert process.returncode == 0, err
    assert err == ""
    result = json.loads(out)
    if method == "fork":
        assert result["interrupted"] == n  # none lost
    else:
        # While a spawn starts, SIGINT is ignored (so that the new process
        # starts immune): one that lands on another thread is lost then.
        assert 0 < result["interrupted"] <= n
    assert result["after"] == result["before"]
    assert result["leftovers"] == []


# -- 11. no fork while our ZeroMQ threads run ------------------------------

FORK_WARNING_SCRIPT = r"""
import multiprocessing, warnings
import pescador
from tests import streams

stream = pescador.ZMQStreamer(pescador.Streamer(streams.arrays, 5),
                              start_method='fork')
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    for _ in range(3):
        assert len(list(stream)) == 5
        items = stream.iterate()
        next(items)
        items.close()
print(sum('use of fork' in str(warning.message) for warning in caught))
"""


def test_no_fork_while_our_zeromq_threads_run(tmp_path):
    result = run_script(tmp_path, FORK_WARNING_SCRIPT, timeout=60)
    # Python 3.12+ warns when forking with threads running: the workers
    # are forked before the iteration's ZeroMQ threads exist.
    assert (result.returncode, result.stderr, result.stdout) == \
        (0, "", "0\n")


# -- 12. what the worker inherits ----------------------------------------

def test_worker_closes_descriptors_of_other_iterations():
    before = set(fd_targets().values())
    first = ZMQStreamer(pescador.Streamer(streams.arrays, 10 ** 6),
                        start_method="fork").iterate()
    next(first)
    owned = {target for target in set(fd_targets().values()) - before
             if target.startswith(("socket:", "pipe:"))}
    assert owned  # its listening socket, connection, sentinel...
    old = {child.pid for child in multiprocessing.active_children()}
    second = ZMQStreamer(pescador.Streamer(items_then_sleep, 1, 30),
                         start_method="fork").iterate()
    next(second)
    (pid,) = {child.pid for child in multiprocessing.active_children()} \
        - old
    inherited = set(fd_targets(pid).values())
    second.close()
    first.close()
    assert owned & inherited == set()
    assert multiprocessing.active_children() == []
