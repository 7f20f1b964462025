"""
Background streaming with ``ZMQStreamer``
=========================================

`pescador.ZMQStreamer` runs a streamer in a separate process and receives
its items over ZeroMQ, so that preparing data (here: spectra of random
signals) overlaps with the model's work (here: a pause standing in for a
training step on an accelerator).

Wrap the whole pipeline, ``ZMQStreamer(Mux(...))``, not each stream inside
the mux: one background process then does all the data work, and only
finished batches cross the process boundary.

Both runs below use a mux with the same seed, so they deliver exactly the
same batches; only the time differs.
"""

# sphinx_gallery_thumbnail_path = "_generated/mux_stochastic.png"

import argparse
import time

import numpy as np

import pescador


def spectra(stream_id, n_frames=16, frame=256):
    """Feature extraction for one source: magnitude spectra of frames."""
    rng = np.random.default_rng(stream_id)
    while True:
        signal = rng.normal(size=(n_frames, frame))
        yield dict(X=np.abs(np.fft.rfft(signal, axis=1)).astype(np.float32),
                   Y=np.array(stream_id))


def pipeline(n_streams, batch_size, seed):
    """Sources -> StochasticMux -> mini-batches, as one Streamer."""
    mux = pescador.StochasticMux(
        [pescador.Streamer(spectra, i) for i in range(n_streams)],
        n_active=4, rate=16, random_state=seed)
    return pescador.Streamer(pescador.buffer_stream, mux, batch_size)


def consume(stream, n_batches, step_seconds):
    """Pretend to train on ``n_batches``; return (labels seen, seconds)."""
    labels = []
    start = time.perf_counter()
    for batch in stream.iterate(max_iter=n_batches):
        time.sleep(step_seconds)
        labels.append(batch["Y"].tolist())
    return labels, time.perf_counter() - start


def main(argv=None):
    """Time the pipeline in process and in the background; return both."""
    parser = argparse.ArgumentParser(
        description="Background streaming with ZMQStreamer")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--step-ms", type=float, default=5.0,
                        help="simulated model time per batch, in ms")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    step = args.step_ms / 1000
    local, local_s = consume(pipeline(args.streams, args.batch_size,
                                      args.seed), args.batches, step)
    remote, remote_s = consume(pescador.ZMQStreamer(
        pipeline(args.streams, args.batch_size, args.seed)),
        args.batches, step)
    print("in process:           {:.2f} s".format(local_s))
    print("background (ZMQ):     {:.2f} s".format(remote_s))
    print("speed-up:             {:.2f}x".format(local_s / remote_s))
    print("same batches in both: {}".format(local == remote))
    return dict(local=local, remote=remote, local_seconds=local_s,
                remote_seconds=remote_s)


if __name__ == "__main__":
    main()
