"""
Class-balanced sampling by mux composition
==========================================

A mux is itself a streamer, so muxes nest. The talk's recipe for
class-balanced training:

1. for each class, a `pescador.StochasticMux` over that class's files;
2. one `pescador.ShuffledMux` over the per-class muxes, whose ``weights``
   set how often each class is drawn, whatever the number or size of its
   files.

Here the classes are very unequal (many files of class 0, one of class 2).
A single `StochasticMux` over all files reproduces that imbalance; the
composition gives the frequencies asked for.
"""

# sphinx_gallery_thumbnail_path = "_generated/mux_shuffled_weighted.png"

import argparse
from collections import Counter

import numpy as np

import pescador

FILES_PER_CLASS = (12, 4, 1)


def data(label, file_id):
    """A stand-in for a file holding examples of one class."""
    rng = np.random.default_rng(file_id)
    while True:
        yield dict(X=rng.normal(loc=label, size=2), Y=label)


def class_streams(files_per_class):
    """The file streamers of each class: ``{label: [Streamer, ...]}``."""
    streams, file_id = {}, 0
    for label, n_files in enumerate(files_per_class):
        streams[label] = [pescador.Streamer(data, label, file_id + i)
                          for i in range(n_files)]
        file_id += n_files
    return streams


def balanced_mux(streams, weights, n_active, rate, seed):
    per_class = [pescador.StochasticMux(files, n_active=n_active, rate=rate,
                                        random_state=seed + label)
                 for label, files in streams.items()]
    return pescador.ShuffledMux(per_class, weights=weights,
                                random_state=seed)


def flat_mux(streams, n_active, rate, seed):
    files = [stream for files in streams.values() for stream in files]
    return pescador.StochasticMux(files, n_active=n_active, rate=rate,
                                  random_state=seed)


def class_frequencies(mux, n_items, n_classes):
    counts = Counter(item["Y"] for item in mux(max_iter=n_items))
    return np.array([counts[label] for label in range(n_classes)]) / n_items


def main(argv=None):
    """Print the class frequencies of both setups; return them."""
    parser = argparse.ArgumentParser(
        description="Class-balanced sampling by mux composition")
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--n-active", type=int, default=4)
    parser.add_argument("--rate", type=float, default=8)
    parser.add_argument("--weights", type=float, nargs=3,
                        default=[0.5, 0.25, 0.25],
                        help="target class frequencies")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    streams = class_streams(FILES_PER_CLASS)
    n_classes = len(FILES_PER_CLASS)
    flat = class_frequencies(
        flat_mux(streams, args.n_active, args.rate, args.seed),
        args.items, n_classes)
    balanced = class_frequencies(
        balanced_mux(streams, args.weights, args.n_active, args.rate,
                     args.seed), args.items, n_classes)
    target = np.asarray(args.weights) / np.sum(args.weights)
    print("files per class:         ", list(FILES_PER_CLASS))
    print("one StochasticMux:       ", np.round(flat, 3))
    print("ShuffledMux of per-class:", np.round(balanced, 3))
    print("target weights:          ", np.round(target, 3))
    return dict(flat=flat, balanced=balanced, target=target)


if __name__ == "__main__":
    main()
