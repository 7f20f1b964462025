"""
The typical setup, end to end
=============================

The demo from the README: a classifier trained on a data set that lives in
many small files, streamed with pescador.

1. A synthetic classification data set is written as ``--shards`` small
   ``.npz`` files ("shards") in a temporary folder. Each shard has a few
   hundred rows and a lopsided mix of classes, as when files are recorded
   per session, per site or per speaker: a model that reads one shard at a
   time would see mostly one class.
2. Each training shard becomes a `pescador.Streamer` that draws random rows
   from its file forever.
3. A `pescador.StochasticMux` keeps ``--n-active`` shards open at a time,
   takes about ``--rate`` rows from each before replacing it, and so mixes
   the classes back together while only a few files are in memory.
4. `pescador.maps.buffer_stream` groups rows into mini-batches, and the
   whole pipeline runs in a background process with `pescador.ZMQStreamer`.
5. A scikit-learn ``SGDClassifier`` learns with ``partial_fit``, one batch at
   a time. The progress lines report its accuracy on each batch *before*
   it trains on that batch (progressive validation: rows the model has not
   seen yet, at no extra cost).
6. Validation reads the held-out shards once each, in order, with a
   `pescador.ChainMux`, so every evaluation sees exactly the same rows.

Run ``python examples/demo.py --help`` for the options. To see what the
mixing buys, compare with ``--n-active 1 --rate 1000``: one shard at a time,
and the model forgets the classes it has not seen lately.
"""

# sphinx_gallery_thumbnail_path = "_generated/mux_stochastic.png"

import argparse
import os
import tempfile
import time

import numpy as np

import pescador


def write_shards(folder, n_shards, rows, n_features, n_classes, seed):
    """Write a synthetic data set as ``n_shards`` .npz files; return paths.

    Classes are Gaussian clouds around random centres. The class mix of each
    shard is drawn from a Dirichlet distribution with a small concentration,
    so most shards are dominated by one or two classes.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.5, size=(n_classes, n_features))
    paths = []
    for shard in range(n_shards):
        mix = rng.dirichlet(np.full(n_classes, 0.3))
        labels = rng.choice(n_classes, size=rows, p=mix)
        features = centres[labels] + rng.normal(size=(rows, n_features))
        path = os.path.join(folder, "shard-{:03d}.npz".format(shard))
        np.savez(path, X=features.astype(np.float32), Y=labels)
        paths.append(path)
    return paths


def train_rows(path):
    """Yield random rows of one shard forever (the talk's ``data``)."""
    with np.load(path) as shard:
        features, labels = shard["X"], shard["Y"]
    rng = np.random.default_rng()
    while True:
        idx = rng.integers(len(labels))
        yield dict(X=features[idx], Y=labels[idx])


def validation_rows(path):
    """Yield every row of one shard once, in order (the talk's data_val)."""
    with np.load(path) as shard:
        features, labels = shard["X"], shard["Y"]
    for x, y in zip(features, labels):
        yield dict(X=x, Y=y)


def training_stream(paths, n_active, rate, batch_size, seed, background):
    """The training pipeline: shards -> StochasticMux -> batches (-> ZMQ)."""
    shards = [pescador.Streamer(train_rows, path) for path in paths]
    mux = pescador.StochasticMux(shards, n_active=n_active, rate=rate,
                                 random_state=seed)
    batches = pescador.Streamer(pescador.buffer_stream, mux, batch_size)
    if background:
        return pescador.ZMQStreamer(batches)
    return batches


def validation_accuracy(model, paths, batch_size):
    """Accuracy of ``model`` over every row of the validation shards."""
    rows = pescador.ChainMux([pescador.Streamer(validation_rows, path)
                              for path in paths])
    correct = total = 0
    for batch in pescador.buffer_stream(rows, batch_size, partial=True):
        correct += int(np.sum(model.predict(batch["X"]) == batch["Y"]))
        total += len(batch["Y"])
    return correct / total


def train(model, stream, steps, classes, report_every):
    """Run ``steps`` ``partial_fit`` updates; return (items, seconds,
    new-batch accuracy over the last report window).

    Each batch is scored *before* the model trains on it (progressive
    validation): the model has not seen those rows yet, so the figure tracks
    how well it generalises while training goes on, at no extra cost. (A
    score on the batch just trained on would flatter the model.)
    """
    items = correct = scored = 0
    accuracy = float("nan")
    start = time.perf_counter()
    for step, batch in enumerate(stream.iterate(max_iter=steps), 1):
        if step > 1:  # the model can predict once it has seen a batch
            correct += int(np.sum(model.predict(batch["X"]) == batch["Y"]))
            scored += len(batch["Y"])
        model.partial_fit(batch["X"], batch["Y"], classes=classes)
        items += len(batch["Y"])
        if report_every and (step % report_every == 0 or step == steps):
            elapsed = time.perf_counter() - start
            accuracy = correct / scored if scored else float("nan")
            print("step {:5d}/{}  {:7d} items  {:9,.0f} items/s  "
                  "new-batch accuracy {:.2f}".format(
                      step, steps, items, items / elapsed, accuracy),
                  flush=True)
            correct = scored = 0
    return items, time.perf_counter() - start, accuracy


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a classifier on many small files streamed with "
                    "pescador (StochasticMux + ZMQStreamer + buffer_stream).")
    parser.add_argument("--shards", type=int, default=40,
                        help="number of shard files (default: %(default)s)")
    parser.add_argument("--val-shards", type=int, default=8,
                        help="shards held out for validation "
                             "(default: %(default)s)")
    parser.add_argument("--rows", type=int, default=300,
                        help="rows per shard (default: %(default)s)")
    parser.add_argument("--features", type=int, default=20,
                        help="features per row (default: %(default)s)")
    parser.add_argument("--classes", type=int, default=4,
                        help="number of classes (default: %(default)s)")
    parser.add_argument("--n-active", type=int, default=8,
                        help="shards open at a time (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=16,
                        help="mean rows drawn from an open shard before it "
                             "is replaced (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="rows per mini-batch (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=600,
                        help="training batches (default: %(default)s)")
    parser.add_argument("--report-every", type=int, default=100,
                        help="print progress every N batches, 0 for never "
                             "(default: %(default)s)")
    parser.add_argument("--in-process", action="store_true",
                        help="stream in this process instead of a "
                             "background ZMQStreamer")
    parser.add_argument("--seed", type=int, default=20,
                        help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 0 < args.val_shards < args.shards:
        parser.error("--val-shards must be between 1 and --shards - 1")
    return args


def main(argv=None):
    """Run the demo; return a dict of its results."""
    args = parse_args(argv)
    from sklearn.linear_model import SGDClassifier

    with tempfile.TemporaryDirectory(prefix="pescador-demo-") as folder:
        paths = write_shards(folder, args.shards, args.rows, args.features,
                             args.classes, args.seed)
        train_paths = paths[args.val_shards:]
        val_paths = paths[:args.val_shards]
        print("{} training shards, {} validation shards, {} rows each, in {}"
              .format(len(train_paths), len(val_paths), args.rows, folder))
        stream = training_stream(train_paths, args.n_active, args.rate,
                                 args.batch_size, args.seed,
                                 background=not args.in_process)
        model = SGDClassifier(random_state=args.seed)
        if args.report_every:
            print("new-batch accuracy: on each batch before the model "
                  "trains on it, over the last {} batches".format(
                      args.report_every))
        items, seconds, new_batch_accuracy = train(
            model, stream, args.steps, np.arange(args.classes),
            args.report_every)
        accuracy = validation_accuracy(model, val_paths, args.batch_size)
    chance = 1 / args.classes
    print("validation accuracy: {:.3f} (chance: {:.3f})".format(
        accuracy, chance))
    print("throughput: {:,.0f} items/s ({} items in {:.2f} s, {})".format(
        items / seconds, items, seconds,
        "in process" if args.in_process else "background ZMQStreamer"))
    return dict(accuracy=accuracy, chance=chance, items=items,
                items_per_second=items / seconds,
                new_batch_accuracy=new_batch_accuracy)


if __name__ == "__main__":
    main()
