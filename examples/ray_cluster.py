"""
Beyond one machine: ``RayStreamer`` on a two-node cluster
=========================================================

`pescador.adapters.RayStreamer` runs the shares of a stream as tasks on a
Ray cluster and merges their items in your process, exactly as
``ZMQStreamer(n_workers=k)`` merges its local workers.

This script simulates a cluster of two nodes on one machine
(``ray.cluster_utils.Cluster``: a head node and a worker node, one CPU
each), connects to it, and streams feature frames prepared on both nodes.
Each item records the node that made it. On a real cluster, replace the
simulated one by ``ray.init(address="auto")`` (or the head's address) and
keep the rest.

The stream is seeded and ordered, so a second run gives the same items in
the same order, whichever node made them and whenever they arrived.
"""

import argparse
from collections import Counter

import numpy as np

import pescador


def frames(stream_id, n_frames, size=1024):
    """One source: ``n_frames`` magnitude spectra, tagged with the node."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    rng = np.random.default_rng(stream_id)
    for _ in range(n_frames):
        signal = rng.standard_normal(size)
        yield {"X": np.abs(np.fft.rfft(signal)).astype(np.float32),
               "stream": stream_id, "node": node}


def pipeline(n_streams, n_frames, seed):
    """A seeded mux over ``n_streams`` sources."""
    return pescador.StochasticMux(
        [pescador.Streamer(frames, s, n_frames) for s in range(n_streams)],
        n_active=2, rate=8, random_state=seed)


def start_cluster():
    """A head node and a worker node, one CPU each, on this machine."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    # py_modules ships this pescador to every node: needed only where it
    # is not installed there.
    ray.init(address=cluster.address, log_to_driver=False,
             runtime_env={"py_modules": [pescador]})
    return cluster


def main(argv=None):
    """Stream from both nodes, twice; return what was seen."""
    parser = argparse.ArgumentParser(
        description="RayStreamer on a simulated two-node Ray cluster")
    parser.add_argument("--streams", type=int, default=6)
    parser.add_argument("--frames", type=int, default=40,
                        help="frames per source")
    parser.add_argument("--items", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("This example needs Ray: pip install pescador[ray]")
        return {"ray": False}
    from pescador.adapters import RayStreamer

    cluster = start_cluster()
    try:
        runs = []
        for _ in range(2):
            stream = RayStreamer(
                pipeline(args.streams, args.frames, args.seed), n_workers=2)
            runs.append(list(stream.iterate(max_iter=args.items)))
        first, second = runs
        nodes = Counter(item["node"][:8] for item in first)
        print("items per node:     ", dict(nodes))
        print("items per stream:   ",
              dict(sorted(Counter(item["stream"] for item in first)
                          .items())))
        same = [item["stream"] for item in first] == \
            [item["stream"] for item in second] and all(
                np.array_equal(a["X"], b["X"]) for a, b in zip(first, second))
        print("same items, same order in both runs:", same)
        print("arrays are read-only views:",
              not first[0]["X"].flags.writeable)
        return {"ray": True, "nodes": nodes, "same": same,
                "streams": [item["stream"] for item in first]}
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
