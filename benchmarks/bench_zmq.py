"""Benchmark ZMQStreamer against raw pyzmq PUSH/PULL between two processes.

For dicts holding one float32 array of 4 KB, 1 MB and 16 MB, measure the
steady-state throughput (items/s and MB/s, from the first item received to
the last) of:

- raw pyzmq: a forked process sends the array zero-copy to a PULL socket,
  which receives it zero-copy, over the same transport: as a multipart
  message of a small header frame and the array (the floor the issue names:
  what any dict-of-arrays protocol over ZeroMQ sends), and as the bare
  array alone (one frame, no header: a floor below any protocol), with
  the same high-water mark as ZMQStreamer, and with zmq's default (1000);
- ZMQStreamer, over its default transport and over TCP loopback;
- ``np.copyto`` of the same array, for scale;

and the time to the first item of each. Every figure is a ratio against a
baseline measured in the same run.

Run: ``python benchmarks/bench_zmq.py [--quick]``.
"""

import multiprocessing
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import pescador  # noqa: E402
from harness import best_time, print_table  # noqa: E402

SIZES = {"4 KB": 4 << 10, "1 MB": 1 << 20, "16 MB": 16 << 20}
TOTAL_BYTES = 1 << 30
HWM = pescador.ZMQStreamer([]).hwm  # the default high-water mark


def repeat_item(nbytes, n):
    """Yield n dicts holding the same float32 array of nbytes."""
    item = {"X": np.ones(nbytes // 4, dtype=np.float32)}
    for _ in range(n):
        yield item


# The header frame of the multipart floor: about what ZMQStreamer sends.
HEADER = b"D" + bytes(16) + b'[["X","<f4",[262144],"C"]]'


def _raw_sender(address, nbytes, n, hwm, multipart):
    context = zmq.Context()
    socket = context.socket(zmq.PUSH)
    socket.sndhwm = hwm
    socket.connect(address)
    array = np.ones(nbytes // 4, dtype=np.float32)
    frames = [HEADER, array] if multipart else [array]
    for _ in range(n):
        socket.send_multipart(frames, copy=False)
    # Exiting now would lose what the receiver has not read from the OS
    # yet: wait to be terminated, as ZMQStreamer's worker does.
    time.sleep(3600)


def raw_run(transport, nbytes, n, hwm=HWM, multipart=True):
    """(seconds to first item, seconds for the rest) of raw pyzmq."""
    start = time.perf_counter()
    context = zmq.Context()
    socket = context.socket(zmq.PULL)
    socket.rcvhwm = hwm
    directory = None
    if transport == "ipc":
        directory = tempfile.mkdtemp()
        address = "ipc://" + os.path.join(directory, "raw")
        socket.bind(address)
    else:
        port = socket.bind_to_random_port("tcp://127.0.0.1")
        address = "tcp://127.0.0.1:{}".format(port)
    process = multiprocessing.Process(target=_raw_sender,
                                      args=(address, nbytes, n, hwm, multipart))
    process.start()
    frames = socket.recv_multipart(copy=False)
    first = time.perf_counter()
    for _ in range(n - 1):
        # Hold each message until the next arrives, as a consumer of
        # ZMQStreamer items does.
        frames = socket.recv_multipart(copy=False)  # noqa: F841
    end = time.perf_counter()
    process.terminate()
    process.join()
    socket.close(linger=0)
    context.term()
    if directory:
        shutil.rmtree(directory)
    return first - start, end - first


def zmq_run(transport, nbytes, n):
    """(seconds to first item, seconds for the rest) of ZMQStreamer."""
    stream = pescador.ZMQStreamer(pescador.Streamer(repeat_item, nbytes, n),
                                  transport=transport)
    start = time.perf_counter()
    items = stream.iterate()
    next(items)
    first = time.perf_counter()
    for _ in items:
        pass
    return first - start, time.perf_counter() - first


def best(run, transport, nbytes, n, repeat, *args):
    """Best time to first item and best steady throughput (items/s)."""
    results = [run(transport, nbytes, n, *args) for _ in range(repeat)]
    return (min(r[0] for r in results),
            (n - 1) / min(r[1] for r in results))


def copyto_rate(nbytes):
    source = np.ones(nbytes // 4, dtype=np.float32)
    target = np.empty_like(source)
    number = max(1, (64 << 20) // nbytes)
    return 1 / best_time(lambda: np.copyto(target, source), 5, number)


def main(quick=False):
    repeat = 2 if quick else 3
    default = pescador.zmq_stream._default_transport()
    rows, first_rows = [], []
    for label, nbytes in SIZES.items():
        n = max(50, min(20000, TOTAL_BYTES // nbytes // (4 if quick else 1)))
        mb = nbytes / 1e6
        raw_first, raw = best(raw_run, default, nbytes, n, repeat)
        _, raw_bare = best(raw_run, default, nbytes, n, repeat, HWM, False)
        _, raw_1000 = best(raw_run, default, nbytes, n, repeat, 1000)
        ours_first, ours = best(zmq_run, default, nbytes, n, repeat)
        tcp_raw_first, tcp_raw = best(raw_run, "tcp", nbytes, n, repeat)
        tcp_first, tcp = best(zmq_run, "tcp", nbytes, n, repeat)
        copy = copyto_rate(nbytes)
        rows.append([label, "{:.0f}".format(raw), "{:.0f}".format(raw_1000),
                     "{:.0f}".format(ours), "{:.0f}".format(ours * mb),
                     "{:.2f}x".format(ours / raw),
                     "{:.2f}x".format(ours / raw_bare),
                     "{:.2f}x".format(ours / raw_1000),
                     "{:.2f}x".format(tcp / tcp_raw),
                     "{:.2f}x".format(ours / tcp),
                     "{:.0f}".format(copy * mb),
                     "{:.3f}".format(ours * mb / (copy * mb))])
        first_rows.append([label, "{:.1f}".format(raw_first * 1e3),
                           "{:.1f}".format(ours_first * 1e3),
                           "{:.1f}".format(tcp_raw_first * 1e3),
                           "{:.1f}".format(tcp_first * 1e3)])
    print_table(
        "Steady throughput, default transport = {}, start method {}; raw: "
        "header + array frames, bare: the array alone, both at hwm={} like "
        "ZMQStreamer; raw1000: zmq's default hwm".format(
            default, multiprocessing.get_start_method(), HWM),
        ["item", "raw it/s", "raw1000 it/s", "ZMQ it/s", "ZMQ MB/s",
         "ZMQ/raw", "ZMQ/bare", "ZMQ/raw1000", "ZMQ/raw tcp", "default/tcp",
         "copyto MB/s", "ZMQ/copyto"], rows)
    print_table("Time to first item (ms)",
                ["item", "raw " + default, "ZMQ " + default, "raw tcp",
                 "ZMQ tcp"], first_rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
