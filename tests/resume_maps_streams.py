"""Streams of maps over seeded muxes, for the checkpoint/resume tests of
the maps (tests/test_resume_maps.py), built by name so that a fresh
process can rebuild them.

Run as ``python -m tests.resume_maps_streams`` with a JSON list of jobs on
stdin (see `run_jobs`): prints the items of each job, pickled and base64
encoded, on stdout.
"""

import base64
import json
import pickle
import sys

import numpy as np

import pescador
from pescador import (ChainMux, ShuffledMux, StochasticMux, Streamer,
                      buffer_stream, cache, keras_tuples, tuples)

#: Items produced by `numbered` so far in this process (the resume cost).
PRODUCED = [0]


def numbered(k, n):
    """n dicts of numpy arrays, deterministic given (k, n)."""
    for i in range(n):
        PRODUCED[0] += 1
        yield {"X": np.arange(3, dtype=np.float32) + 100 * k + i,
               "Y": np.int64(1000 * k + i)}


def make_mux(kind):
    """A seeded mux (or a ChainMux) over 5 small deterministic Streamers."""
    streamers = [Streamer(numbered, k, 5 + 2 * k) for k in range(5)]
    if kind == "stochastic":        # finite epochs
        return StochasticMux(streamers, 2, rate=None, mode="exhaustive",
                             random_state=7)
    if kind == "stochastic_replace":    # endless
        return StochasticMux(streamers, 3, rate=4, random_state=8)
    if kind == "shuffled":              # endless
        return ShuffledMux(streamers, weights=[1, 2, 3, 4, 5],
                           random_state=11)
    if kind == "chain":
        return ChainMux(streamers)
    if kind == "list":      # no mux: a re-iterable
        return [item for k in range(5) for item in numbered(k, 8)]
    raise ValueError(kind)


MAPS = {
    "buffer": lambda m: Streamer(buffer_stream, m, 4),
    "buffer_partial": lambda m: Streamer(buffer_stream, m, 3, True),
    "tuples": lambda m: Streamer(tuples, m, "X", "Y"),
    "keras": lambda m: Streamer(keras_tuples, m, inputs=["X"], outputs="Y"),
    "cache": lambda m: Streamer(cache, m, 5, 0.4, 3),
    "cache_generator": lambda m: Streamer(
        cache, m, 4, prob=0.6, random_state=np.random.default_rng(5)),
    # Maps over maps.
    "tuples_over_buffer": lambda m: Streamer(
        tuples, Streamer(buffer_stream, m, 4), "X"),
    "buffer_over_buffer": lambda m: Streamer(
        buffer_stream, Streamer(buffer_stream, m, 2), 3, True, 0),
    "cache_over_buffer": lambda m: Streamer(
        cache, Streamer(buffer_stream, m, 2), 3, 0.5, 1),
    "keras_over_cache": lambda m: Streamer(
        keras_tuples, Streamer(cache, m, 4, 0.5, 2), "X", "Y"),
}


def build(map_name, mux_kind):
    """The stream ``map_name`` over the mux ``mux_kind``."""
    return MAPS[map_name](make_mux(mux_kind))


def run_job(job):
    """Rebuild ``job``'s stream, resume its call from ``job['state']``, and
    return the items of the resumed iteration and of the ``epochs`` next
    ones (each a list)."""
    stream = build(job["map"], job["mux"])
    call = getattr(stream, job["call"])
    out = [list(call(max_iter=job["max_iter"], state=job["state"]))]
    for _ in range(job["epochs"]):
        out.append(list(call(max_iter=job["max_iter"])))
    return out


def run_jobs(jobs):
    return [run_job(job) for job in jobs]


def main():
    jobs = json.loads(sys.stdin.read())
    sys.stdout.write(base64.b64encode(pickle.dumps(run_jobs(jobs)))
                     .decode("ascii"))


if __name__ == "__main__":
    assert pescador.get_state   # the package under test, from PYTHONPATH
    main()
