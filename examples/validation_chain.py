"""
Deterministic validation with ``ChainMux``
==========================================

Training wants random, endless streams; validation and testing want the
opposite: the same examples, in the same order, every time, so that two
evaluations can be compared. The talk's recipe is a finite generator per
file, read one file after another with a `pescador.ChainMux`.

A framework that asks for a number of validation steps (Keras'
``validation_steps``) needs that number up front: here it is computed from
the file sizes. To serve the same batches at every epoch, batch one pass
(with its short last batch) and cycle *that*: cycling the rows instead
would let batches straddle the end of a pass, and each epoch would then
start somewhere else.
"""

# sphinx_gallery_thumbnail_path = "_generated/mux_chain.png"

import argparse
import math

import numpy as np

import pescador


def load(file_id):
    """Stand-in for reading a file: a few rows, a different count per file."""
    rng = np.random.default_rng(file_id)
    n_rows = 5 + file_id % 4
    return rng.normal(size=(n_rows, 3)), rng.integers(2, size=n_rows)


def data_val(file_id):
    """Every row of one file, once, in order (the talk's ``data_val``)."""
    features, labels = load(file_id)
    for x, y in zip(features, labels):
        yield dict(X=x, Y=y)


def validation_mux(file_ids):
    return pescador.ChainMux([pescador.Streamer(data_val, file_id)
                              for file_id in file_ids])


def validation_steps(file_ids, batch_size):
    """The ``N`` the talk warns about: batches in one pass over the files."""
    n_rows = sum(len(load(file_id)[1]) for file_id in file_ids)
    return math.ceil(n_rows / batch_size)


def fingerprint(stream):
    """A summary of a pass that changes if any value or the order changes."""
    return [round(float(item["X"][0]), 6) for item in stream]


def main(argv=None):
    """Check that two passes agree; return the pass and the step count."""
    parser = argparse.ArgumentParser(
        description="Deterministic validation with ChainMux")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    file_ids = range(args.files)

    val_mux = validation_mux(file_ids)
    first, second = fingerprint(val_mux), fingerprint(val_mux)
    print("rows per pass:", len(first))
    print("two passes identical:", first == second)

    steps = validation_steps(file_ids, args.batch_size)
    one_pass = pescador.Streamer(pescador.buffer_stream, val_mux,
                                 args.batch_size, partial=True)
    batches = one_pass.cycle()
    epochs = [[next(batches)["Y"].tolist() for _ in range(steps)]
              for _ in range(2)]
    print("validation_steps = ceil({} / {}) = {}".format(
        len(first), args.batch_size, steps))
    print("batch sizes:", [len(batch) for batch in epochs[0]])
    print("both epochs saw the same batches:", epochs[0] == epochs[1])
    return dict(first=first, second=second, steps=steps, epochs=epochs)


if __name__ == "__main__":
    main()
