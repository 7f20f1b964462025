"""Benchmark ZMQStreamer against raw pyzmq PUSH/PULL between two processes.

For dicts holding one float32 array of 4 KB, 1 MB and 16 MB, measure the
steady-state throughput (items/s and MB/s, from the first item received to
the last) of:

- raw pyzmq: a forked process sends the array zero-copy to a PULL socket,
  which receives it zero-copy, over the same transport and with the same
  high-water mark as ZMQStreamer, as a multipart message of a header frame
  and the array (the floor the issue names). The header is 19 bytes, as
  ZMQStreamer's is once a layout has been named ("raw": the same frames,
  so the ratio is the cost of ZMQStreamer's Python), or 45 bytes, as a
  JSON description of the array would be ("raw json"; this floor keeps its
  header frame as long as the array, a consumer that decodes the header
  and keeps only the array pays for it in page faults: see
  ``pescador._zmq_wire._encode``). "bare" sends the array alone: one
  frame, no header, a floor below any protocol.
- ZMQStreamer, over its default transport and over TCP loopback; arrays
  of 16 KB or more go through shared memory (one copy in the worker, none
  in the consumer);
- ZMQStreamer with shared memory turned off ("sock": the socket path of
  before shared memory, which is also the fallback; set through
  ``PESCADOR_SHM_BYTES=0``), for the items that do not use it (4 KB) and
  the time to the first item;
- ``np.copyto`` of the same array, for scale;

and the time to the first item of each. Every figure is a ratio against a
baseline measured in the same run: the contenders run one after another in
rounds (ZMQStreamer and its floor back to back, in alternating order), and
the table gives the median and the range of the per-round ratios, since a
2-core machine shared with others drifts by tens of percent between runs.

Run: ``python benchmarks/bench_zmq.py [--quick]``.
"""

import multiprocessing
import os
import shutil
import statistics
import sys
import time
import warnings

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import pescador  # noqa: E402
from pescador._background import address as address_module  # noqa: E402
from pescador._background.shm import (LIMIT_ENV,  # noqa: E402
                                      ShmFallbackWarning)
from harness import best_time, print_table  # noqa: E402

SIZES = {"4 KB": 4 << 10, "1 MB": 1 << 20, "16 MB": 16 << 20}
# About half a second of streaming per run on this machine (at the speed
# of shared memory for 1 MB and 16 MB, so that a stream's start, which
# creates the worker's pool of segments, does not weigh more than in use).
ITEMS = {"4 KB": 20000, "1 MB": 5000, "16 MB": 300}
HWM = pescador.ZMQStreamer([]).hwm  # the default high-water mark


def repeat_item(nbytes, n):
    """Yield n dicts holding the same float32 array of nbytes."""
    item = {"X": np.ones(nbytes // 4, dtype=np.float32)}
    for _ in range(n):
        yield item


# Header frames of the multipart floors: as long as the one ZMQStreamer
# sends for a large item of a layout it has sent before (kind, token and a
# 2-byte name), and as long as a JSON description of the array.
HEADERS = {"short": b"R" + bytes(16) + b"\0\0",
           "json": b"D" + bytes(16) + b'[["X","<f4",[262144],"C"]]',
           "bare": None}


def _raw_sender(address, nbytes, n, hwm, header):
    context = zmq.Context()
    socket = context.socket(zmq.PUSH)
    socket.sndhwm = hwm
    socket.connect(address)
    array = np.ones(nbytes // 4, dtype=np.float32)
    frames = [array] if header is None else [header, array]
    for _ in range(n):
        socket.send_multipart(frames, copy=False)
    # Exiting now would lose what the receiver has not read from the OS
    # yet: wait to be terminated, as ZMQStreamer's worker does.
    time.sleep(3600)


def raw_run(transport, nbytes, n, header="short", hwm=HWM):
    """(seconds to first item, seconds for the rest) of raw pyzmq."""
    start = time.perf_counter()
    context = zmq.Context()
    socket = context.socket(zmq.PULL)
    socket.rcvhwm = hwm
    directory = None
    if transport == "ipc":
        # The same kind of Unix socket as ZMQStreamer's (abstract on Linux).
        directory = address_module.private_directory("ipc")
        address = address_module.ipc_address(directory, 0)
        socket.bind(address)
    else:
        port = socket.bind_to_random_port("tcp://127.0.0.1")
        address = "tcp://127.0.0.1:{}".format(port)
    process = multiprocessing.Process(target=_raw_sender,
                                      args=(address, nbytes, n, hwm,
                                            HEADERS[header]))
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


def zmq_run(transport, nbytes, n, shared=True):
    """(seconds to first item, seconds for the rest) of ZMQStreamer (with
    shared memory turned off unless ``shared``)."""
    stream = pescador.ZMQStreamer(pescador.Streamer(repeat_item, nbytes, n),
                                  transport=transport)
    if not shared:
        os.environ[LIMIT_ENV] = "0"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ShmFallbackWarning)
            start = time.perf_counter()
            items = stream.iterate()
            next(items)
            first = time.perf_counter()
        for _ in items:
            pass
    finally:
        os.environ.pop(LIMIT_ENV, None)
    return first - start, time.perf_counter() - first


def copyto_rate(nbytes):
    source = np.ones(nbytes // 4, dtype=np.float32)
    target = np.empty_like(source)
    number = max(1, (64 << 20) // nbytes)
    return 1 / best_time(lambda: np.copyto(target, source), 5, number)


def measure_round(default, nbytes, n, flip):
    """One round: every contender once, ZMQStreamer and its floor run back
    to back (in an order that alternates between rounds, so that a drift
    of the machine's speed favours neither). Returns {name: (seconds to
    first item, items/s)}."""
    contenders = [
        ("raw", lambda: raw_run(default, nbytes, n)),
        ("zmq", lambda: zmq_run(default, nbytes, n)),
        ("raw tcp", lambda: raw_run("tcp", nbytes, n)),
        ("zmq tcp", lambda: zmq_run("tcp", nbytes, n)),
        ("raw json", lambda: raw_run(default, nbytes, n, "json")),
        ("bare", lambda: raw_run(default, nbytes, n, "bare")),
        ("zmq sock", lambda: zmq_run(default, nbytes, n, shared=False)),
    ]
    if flip:
        contenders[0:2] = contenders[1::-1]
        contenders[2:4] = contenders[3:1:-1]
    results = {}
    for name, run in contenders:
        first, rest = run()
        results[name] = (first, (n - 1) / rest)
    return results


def spread(values, fmt="{:.2f}"):
    """'median [min-max]' of values."""
    return (fmt + " [" + fmt + "-" + fmt + "]").format(
        statistics.median(values), min(values), max(values))


def main(quick=False):
    rounds = 3 if quick else 7
    default = address_module.default_transport()
    rows, first_rows = [], []
    for label, nbytes in SIZES.items():
        n = ITEMS[label] // (4 if quick else 1)
        mb = nbytes / 1e6
        runs = [measure_round(default, nbytes, n, i % 2)
                for i in range(rounds)]

        def ratios(a, b):
            return [r[a][1] / r[b][1] for r in runs]

        def rates(name):
            return [r[name][1] for r in runs]

        copy = copyto_rate(nbytes)
        rows.append([
            label, "{:.0f}".format(statistics.median(rates("raw"))),
            "{:.0f}".format(statistics.median(rates("zmq"))),
            "{:.0f}".format(statistics.median(rates("zmq")) * mb),
            spread(ratios("zmq", "raw")), spread(ratios("zmq", "zmq sock")), spread(ratios("zmq", "raw json")),
            spread(ratios("zmq", "bare")),
            spread(ratios("zmq tcp", "raw tcp")),
            spread(ratios("zmq", "zmq tcp")),
            "{:.0f}".format(copy * mb),
            "{:.3f}".format(statistics.median(rates("zmq")) / copy)])
        first_rows.append([label] + [
            "{:.1f}".format(min(r[name][0] for r in runs) * 1e3)
            for name in ("raw", "zmq", "zmq sock", "raw tcp", "zmq tcp")])
    print_table(
        "Steady throughput over {} interleaved rounds, default transport = "
        "{}, start method {}: median [min-max] of the per-round ratios. "
        "raw: a 19-byte header frame + the array (ZMQStreamer's frames); "
        "raw json: a 45-byte header + the array; bare: the array alone; "
        "sock: ZMQStreamer without shared memory; "
        "all at hwm={} like ZMQStreamer".format(
            rounds, default, multiprocessing.get_start_method(), HWM),
        ["item", "raw it/s", "ZMQ it/s", "ZMQ MB/s", "ZMQ/raw", "ZMQ/sock",
         "ZMQ/raw json", "ZMQ/bare", "ZMQ/raw tcp", "default/tcp",
         "copyto MB/s", "ZMQ/copyto"], rows)
    print_table("Time to first item (ms, best round)",
                ["item", "raw " + default, "ZMQ " + default,
                 "sock " + default, "raw tcp", "ZMQ tcp"], first_rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
