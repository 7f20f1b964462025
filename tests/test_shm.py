"""The shared-memory transport (pescador._background.shm), on its own:
round trips, values at put time, lifetimes, cleanup on every exit path
(with real processes and SIGKILL), the bound on arrays in flight, and the
fallback when shared memory is too small."""

import multiprocessing
import os
import resource
import signal
import time
import warnings

import numpy as np
import pytest

from pescador import DataError
from pescador._background import shm
from tests.zmq_helpers import ARRAYS, assert_same_item

pytestmark = pytest.mark.skipif(shm.probe() is not None,
                                reason="no usable /dev/shm")

MB = 1 << 20
START_METHODS = [m for m in ("fork", "forkserver", "spawn")
                 if m in multiprocessing.get_all_start_methods()]


def leftovers(prefix):
    return sorted(n for n in os.listdir(shm.SHM_DIR) if n.startswith(prefix))


def mapped(prefix):
    """Lines of /proc/self/maps mapping a segment of ``prefix``."""
    with open("/proc/self/maps") as handle:
        return [line for line in handle if prefix in line]


@pytest.fixture
def prefix():
    prefix = shm.run_prefix()
    yield prefix
    left = leftovers(prefix)
    shm.sweep(prefix)  # even when the test failed
    assert left == []


def refilled(nbytes, n):
    """Yield n times the same buffer, refilled with i each time."""
    buffer = np.empty(nbytes // 8)
    for i in range(n):
        buffer.fill(i)
        yield buffer


def reap(process):
    """Kill ``process`` (our child) unless it has exited."""
    if process.exitcode is None:
        process.kill()
        process.join()


def wait_gone(pid, seconds=10):
    """Wait until ``pid`` (not necessarily our child) has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open("/proc/{}/stat".format(pid)) as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] in "ZX":
                    return
        except OSError:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("process {} did not exit".format(pid))


# -- in one process --------------------------------------------------------

@pytest.mark.parametrize("copy", [False, True])
def test_round_trip_every_dtype_and_layout(prefix, copy):
    arrays = {k: v for k, v in ARRAYS.items() if v.nbytes}
    assert len(arrays) > 200
    writer, reader = shm.Writer(prefix), shm.Reader(prefix)
    got = {}
    for key, array in arrays.items():
        descriptor = writer.put(array)
        assert len(descriptor) == shm.DESCRIPTOR_SIZE
        got[key] = reader.take(descriptor, array.dtype, array.shape,
                               shm.storage_order(array), copy)
    # Views held outnumber the pool: both pooled and one-shot segments;
    # copies free their slot at once.
    assert len(writer._pool) == writer.slots if not copy \
        else 1 < len(writer._pool) < writer.slots
    writer.close()
    reader.close()
    assert_same_item(got, arrays)
    if not copy:  # views of segments: cache-line aligned
        assert all(a.ctypes.data % 64 == 0 for a in got.values())


def test_values_are_those_at_put_time(prefix):
    writer, reader = shm.Writer(prefix, slots=2), shm.Reader(prefix)
    for nbytes in (MB, 8 * MB):
        descriptors = [writer.put(buffer) for buffer in refilled(nbytes, 6)]
        got = [reader.take(d, np.float64, (nbytes // 8,), "C")
               for d in descriptors]
        assert len(got) == 6
        for i, array in enumerate(got):
            assert (array == i).all()
    writer.close()
    reader.close()


def test_pooled_segments_are_reused_once_dropped(prefix):
    writer, reader = shm.Writer(prefix, slots=2), shm.Reader(prefix)
    first = writer.put(np.ones(1000))
    x = reader.take(first, np.float64, (1000,), "C")
    view = x[10:20]
    del x
    # A view still holds the segment: the writer must not reuse it.
    second = writer.put(np.zeros(1000))
    assert second[2:4] != first[2:4]
    assert (view == 1).all()
    del view
    third = writer.put(np.full(1000, 3.0))
    assert third == first  # same slot, same generation
    assert (reader.take(third, np.float64, (1000,), "C") == 3).all()
    writer.close()
    reader.close()


def test_several_writers_one_reader(prefix):
    writers = [shm.Writer(prefix, worker=w, slots=2) for w in (0, 1, 300)]
    reader = shm.Reader(prefix)
    descriptors = [(w, i, writer.put(np.full(3000, 1000 * w + i)))
                   for i in range(4) for w, writer in zip((0, 1, 300),
                                                          writers)]
    got = {(w, i): reader.take(d, np.int64, (3000,), "C")
           for w, i, d in descriptors[:-3]}
    assert len(got) == 9
    assert all((a == 1000 * w + i).all() for (w, i), a in got.items())
    # Closing one writer unlinks only its own unreceived segment.
    assert len(leftovers(prefix)) == 3
    writers[0].close()
    assert len(leftovers(prefix)) == 2
    assert (reader.take(descriptors[-2][2], np.int64, (3000,), "C")
            == 1003).all()
    for writer in writers[1:]:
        writer.close()
    reader.close()


def _drop_and_exit(held):
    held.clear()
    os._exit(0)


def test_a_forked_child_dropping_an_array_does_not_free_it(prefix):
    writer, reader = shm.Writer(prefix, slots=1), shm.Reader(prefix)
    held = [reader.take(writer.put(np.ones(1000)), np.float64, (1000,), "C")]
    process = multiprocessing.get_context("fork").Process(
        target=_drop_and_exit, args=(held,))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    # Still busy for the parent: the next array gets a one-shot segment.
    assert writer.put(np.zeros(1000))[2:4] == b"\0\0"
    assert (held[0] == 1).all()
    writer.close()
    reader.close()


def test_copy_releases_the_segment_at_once(prefix):
    writer, reader = shm.Writer(prefix, slots=1), shm.Reader(prefix)
    for i in range(5):
        array = reader.take(writer.put(np.full(5000, i)), np.int64, (5000,),
                            "C", copy=True)
        assert (array == i).all() and array.flags.writeable
    assert len(writer._pool) == 1
    writer.close()
    reader.close()


def test_dropping_arrays_unmaps_and_frees(prefix):
    writer, reader = shm.Writer(prefix, slots=1), shm.Reader(prefix)
    pooled = reader.take(writer.put(np.ones(MB)), np.float64, (MB,), "C")
    one_shot = reader.take(writer.put(np.ones(MB)), np.float64, (MB,), "C")
    # Every name is gone once received; the memory lives in the mappings.
    assert leftovers(prefix) == []
    writer.close()
    reader.close()
    assert len(mapped(prefix)) == 2
    assert all("(deleted)" in line for line in mapped(prefix))
    pooled[:] = 2
    one_shot[:] = 3
    assert pooled.sum() == 2 * MB and one_shot.sum() == 3 * MB
    del one_shot
    assert len(mapped(prefix)) == 1
    del pooled
    assert mapped(prefix) == []


def test_in_flight_is_bounded(prefix):
    calls = []

    class Abort(Exception):
        pass

    def waiting():
        calls.append(time.monotonic())
        raise Abort()

    writer = shm.Writer(prefix, in_flight=3, waiting=waiting)
    reader = shm.Reader(prefix)
    descriptors = [writer.put(np.ones(100)) for _ in range(3)]
    start = time.monotonic()
    with pytest.raises(Abort):
        writer.put(np.ones(100))
    assert len(calls) == 1 and 0.05 < calls[0] - start < 2
    reader.take(descriptors[0], np.float64, (100,), "C")
    assert writer.put(np.ones(100)) is not None  # one taken: room for one
    writer.close()
    reader.close()


def test_bad_descriptors_are_data_errors(prefix):
    writer, reader = shm.Writer(prefix), shm.Reader(prefix)
    descriptor = writer.put(np.ones(10))
    with pytest.raises(DataError, match="Malformed"):
        reader.take(b"abc", np.float64, (10,), "C")
    with pytest.raises(DataError, match="fewer than its header says"):
        reader.take(descriptor, np.float64, (10000,), "C")
    with pytest.raises(DataError, match="is gone"):
        reader.take(descriptor, np.float64, (10,), "C")
    writer.close()
    reader.close()


def test_empty_arrays_are_refused(prefix):
    writer = shm.Writer(prefix)
    with pytest.raises(ValueError, match="empty"):
        writer.put(np.ones(0))
    writer.close()


# -- the fallback ------------------------------------------------------------

def test_tiny_simulated_limit_falls_back_with_one_warning(prefix,
                                                          monkeypatch):
    monkeypatch.setenv(shm.LIMIT_ENV, str(100 << 10))
    assert "fewer than" in shm.probe()
    writer = shm.Writer(prefix)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Half of the free space at most: 40 KB fits, 1 MB does not.
        small = [writer.put(np.ones(5 << 10)) for _ in range(3)]
        large = [writer.put(np.ones(MB // 8)) for _ in range(3)]
    assert all(d is not None for d in small)
    assert large == [None, None, None]
    assert [w.category for w in caught] == [shm.ShmFallbackWarning]
    assert "over the socket" in str(caught[0].message)
    assert "Errno 28" in writer.fallback
    writer.close()
    quiet = shm.Writer(prefix, warn=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert quiet.put(np.ones(MB // 8)) is None
    assert caught == [] and "Errno 28" in quiet.fallback
    quiet.close()


def _fallocate_refused(connection, prefix):
    # The kernel refuses to reserve past RLIMIT_FSIZE (EFBIG; Python
    # ignores SIGXFSZ): a real failure of posix_fallocate.
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
    writer = shm.Writer(prefix)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [writer.put(np.ones(MB // 8)) for _ in range(3)]
    writer.close()
    connection.send((results, [str(w.message) for w in caught]))


def test_failed_reservation_falls_back_cleanly(prefix):
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_fallocate_refused, args=(child, prefix))
    process.start()
    assert parent.poll(30)
    results, messages = parent.recv()
    process.join(10)
    assert process.exitcode == 0
    assert results == [None, None, None]
    assert len(messages) == 1 and "File too large" in messages[0]


def test_probe_reports_a_missing_directory(monkeypatch):
    monkeypatch.setattr(shm, "SHM_DIR", "/nonexistent/shm")
    assert "missing" in shm.probe()
    assert shm.available_bytes() == 0


# -- with processes ----------------------------------------------------------

def _producer(connection, prefix, nbytes, n, in_flight, watch_parent):
    """Put n refilled arrays, sending the descriptors; once told to stop
    ('stop' or SIGTERM, as ZMQStreamer's worker is), or when the parent is
    gone, clean up."""
    def waiting():
        if watch_parent and not multiprocessing.parent_process().is_alive():
            raise SystemExit(7)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    writer = shm.Writer(prefix, in_flight=in_flight, waiting=waiting)
    try:
        for buffer in refilled(nbytes, n):
            connection.send_bytes(writer.put(buffer))
        connection.send_bytes(b"end")
        connection.recv()  # stay until the consumer is done
    finally:
        writer.close()


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("nbytes", [MB, 8 * MB])
def test_worker_process_to_consumer(prefix, method, nbytes):
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context(method).Process(
        target=_producer, args=(child, prefix, nbytes, 12, 4, False))
    process.start()
    reader = shm.Reader(prefix)
    got = []
    try:
        while parent.poll(30):
            descriptor = parent.recv_bytes()
            if descriptor == b"end":
                break
            got.append(reader.take(descriptor, np.float64, (nbytes // 8,),
                                   "C"))
        parent.send("stop")
        process.join(30)
        assert process.exitcode == 0
    finally:
        reap(process)
        reader.close()
    # The arrays outlive their producer, with the values at put time.
    assert len(got) == 12
    for i, array in enumerate(got):
        assert (array == i).all()
        array += 1
        assert (array == i + 1).all()
    assert mapped(prefix)
    del got, array
    assert mapped(prefix) == []


def test_100_start_stop_cycles_leave_nothing():
    context = multiprocessing.get_context("fork")
    prefixes = []
    for _ in range(100):
        prefix = shm.run_prefix()
        prefixes.append(prefix)
        parent, child = multiprocessing.Pipe()
        process = context.Process(target=_producer, args=(
            child, prefix, 64 << 10, 50, 4, False))
        process.start()
        reader = shm.Reader(prefix)
        try:
            assert parent.poll(30)
            # An early stop: one array taken, others in flight, the
            # producer waiting for room.
            array = reader.take(parent.recv_bytes(), np.float64, (8192,),
                                "C")
            assert (array == 0).all()
            process.terminate()
            process.join(30)
            assert process.exitcode == 0
        finally:
            reap(process)
            reader.close()
            parent.close()
            child.close()
    del array
    assert [n for n in os.listdir(shm.SHM_DIR)
            if n.startswith(tuple(prefixes))] == []
    assert not any(p in line for line in mapped("pescador-")
                   for p in prefixes)


def test_producer_sigkill_then_consumer_sweep(prefix):
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_producer, args=(child, prefix, MB, 1000, 6, False))
    process.start()
    reader = shm.Reader(prefix)
    try:
        assert parent.poll(30)
        array = reader.take(parent.recv_bytes(), np.float64, (MB // 8,), "C")
        deadline = time.monotonic() + 10
        while len(leftovers(prefix)) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(leftovers(prefix)) >= 5  # arrays in flight, unreceived
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
        assert process.exitcode == -signal.SIGKILL
        assert leftovers(prefix)
    finally:
        reap(process)
        reader.close()  # the survivor's sweep
    assert leftovers(prefix) == []
    assert (array == 0).all()


def _consumer(report, prefix):
    """Start a producer, take three arrays, report, then wait to be
    killed."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_producer, args=(child, prefix, MB, 1000, 4, True))
    process.start()
    reader = shm.Reader(prefix)
    held = [reader.take(parent.recv_bytes(), np.float64, (MB // 8,), "C")
            for _ in range(3)]
    report.send((process.pid, [float(a[0]) for a in held]))
    time.sleep(60)


def test_consumer_sigkill_then_producer_sweep(prefix):
    report, child = multiprocessing.Pipe()
    consumer = multiprocessing.get_context("fork").Process(
        target=_consumer, args=(child, prefix))
    consumer.start()
    try:
        assert report.poll(30)
        producer, values = report.recv()
        assert values == [0.0, 1.0, 2.0]
        deadline = time.monotonic() + 10
        while len(leftovers(prefix)) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(leftovers(prefix)) >= 4  # the producer waits, 4 out
        os.kill(consumer.pid, signal.SIGKILL)
        consumer.join(10)
        assert consumer.exitcode == -signal.SIGKILL
        wait_gone(producer)  # its watchdog (the waiting hook) ended it
    finally:
        reap(consumer)
    assert leftovers(prefix) == []
