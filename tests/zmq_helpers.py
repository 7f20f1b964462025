"""Generators and helpers shared by the ZMQStreamer tests.

The generators live at module level so that they pickle for the spawn and
forkserver start methods."""

import ctypes
import faulthandler
import os
import signal
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- module-level generators (they pickle, for spawn) ---------------------

def items_then_fail(n, exc):
    """Yield n dict items, then raise ``exc``."""
    for i in range(n):
        yield {"i": np.array(i)}
    raise exc


def items_then(n, bad):
    """Yield n dict items, then the item ``bad``."""
    for i in range(n):
        yield {"i": np.array(i)}
    yield bad


def items_then_die(n, how):
    """Yield n dict items, then kill the process without a goodbye."""
    for i in range(n):
        yield {"i": np.array(i)}
    if how == "exit":
        os._exit(3)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    faulthandler.disable()  # the crash is on purpose: no stack dump
    ctypes.string_at(0)  # segmentation fault


def counted(counter, n, nbytes):
    """Yield n items of nbytes, counting them in a shared counter."""
    block = np.ones(nbytes // 8)
    for _ in range(n):
        with counter.get_lock():
            counter.value += 1
        yield {"X": block}


def forever_with_cleanup(path):
    """Yield forever; write ``path`` when stopped."""
    try:
        while True:
            yield {"x": np.zeros(3)}
    finally:
        with open(path, "w") as handle:
            handle.write("cleaned up")


def slow():
    """Yield an item every half second, forever."""
    while True:
        yield {"x": np.zeros(3)}
        time.sleep(0.5)


def stubborn():
    """Yield items, and refuse to stop when asked."""
    try:
        while True:
            yield {"x": np.zeros(3)}
    except BaseException:
        while True:
            time.sleep(1)


class TwoArgError(Exception):
    """An exception that pickles but does not unpickle."""

    def __init__(self, a, b):
        super().__init__("{} and {}".format(a, b))


# -- helpers --------------------------------------------------------------

def assert_same_item(received, sent):
    assert list(received) == list(sent)
    for key, value in sent.items():
        value = np.asarray(value)
        got = received[key]
        assert got.dtype == value.dtype and got.dtype.str == value.dtype.str
        assert got.shape == value.shape
        np.testing.assert_array_equal(got, value)
        assert got.flags.aligned and got.flags.writeable
        if value.flags.f_contiguous and not value.flags.c_contiguous:
            assert got.flags.f_contiguous
        else:
            assert got.flags.c_contiguous


def sample_arrays():
    rng = np.random.RandomState(0)
    dtypes = ["?", "i1", "u1", ">i2", "<u2", "i4", ">i8", "u8", "f2", ">f2",
              "f4", ">f4", "f8", ">f8", "g", "c8", ">c8", "c16", "G",
              "U5", "S3", "M8[ns]", "m8[s]", "V4",
              [("a", "<i4"), ("b", ">f8", (2,))]]
    shapes = [(), (0,), (0, 3), (5,), (3, 4), (2, 3, 4), (200, 100)]
    out = {}
    for d, dtype in enumerate(dtypes):
        dtype = np.dtype(dtype)
        for s, shape in enumerate(shapes):
            size = int(np.prod(shape)) * dtype.itemsize
            raw = rng.randint(0, 100, size=size).astype(np.uint8)
            array = raw.view(dtype).reshape(shape)
            if dtype.kind == "f" or dtype.kind == "c":
                array = rng.standard_normal(shape).astype(dtype)
            out["{}-{}".format(d, s)] = array
            if len(shape) >= 2:
                out["{}-{}-F".format(d, s)] = np.asfortranarray(array)
                out["{}-{}-strided".format(d, s)] = array[::2, ::-1]
    return out


ARRAYS = sample_arrays()


def children():
    """The pids of this process's live (non-zombie) children, from /proc."""
    pids = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/{}/stat".format(name)) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            pids.add(int(name))
    return pids


def n_fds():
    return len(os.listdir("/proc/self/fd"))


def items_then_sleep(n, seconds):
    """Yield n items, then sleep (slow user code) before the next."""
    for i in range(n):
        yield {"i": np.array(i)}
    time.sleep(seconds)
    yield {"i": np.array(n)}


def limited_with_cleanup(path):
    """Yield forever; when closed, take a moment, then append a line to
    ``path``."""
    try:
        while True:
            yield {"x": np.zeros(3)}
    finally:
        time.sleep(0.05)
        with open(path, "a") as handle:
            handle.write("cleaned up\n")


def global_draws(n):
    """Yield n draws from numpy's and random's global generators."""
    import random
    for _ in range(n):
        yield {"np": np.array(np.random.random_sample()),
               "py": np.array(random.random())}


def touch(path):
    """Create ``path`` (what a malicious pickle would do)."""
    with open(path, "w") as handle:
        handle.write("unpickled")


class Evil(Exception):
    """An exception whose unpickling creates a file."""

    def __init__(self, path):
        super().__init__(path)
        self.path = path

    def __reduce__(self):
        return touch, (self.path,)


def pid_gone(pid, within=5.0):
    """True once ``pid`` is gone or a zombie, waiting at most ``within``."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open("/proc/{}/stat".format(pid)) as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def fd_targets(pid="self"):
    """{fd: link target} of a process's descriptors."""
    base = "/proc/{}/fd".format(pid)
    out = {}
    for name in os.listdir(base):
        try:
            out[int(name)] = os.readlink(os.path.join(base, name))
        except OSError:
            pass
    return out


def run_script(tmp_path, source, *args, timeout=60, env=None):
    """Run ``source`` as a script in a fresh interpreter (bounded)."""
    import subprocess
    import sys
    script = tmp_path / "script.py"
    script.write_text(source)
    environ = dict(os.environ, PYTHONPATH=ROOT)
    environ.update(env or {})
    return subprocess.run([sys.executable, str(script)] + list(args),
                          cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def new_worker_fd_targets(stream):
    """The descriptor targets of the worker that a new iteration of
    ``stream`` (one worker) starts, read once it has sent an item."""
    import multiprocessing
    old = {child.pid for child in multiprocessing.active_children()}
    items = stream.iterate()
    try:
        next(items)
        (pid,) = {child.pid for child in
                  multiprocessing.active_children()} - old
        return set(fd_targets(pid).values())
    finally:
        items.close()
