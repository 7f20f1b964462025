"""
scikit-learn: learning with ``partial_fit``
===========================================

The talk's "SKLearn-style" loop: a stream per data file, mixed at random with
a `pescador.ShuffledMux`, and one ``partial_fit`` call per example::

    for example in train_gen(max_iter=1000):
        model.partial_fit(example['X'], example['Y'])

scikit-learn expects 2-d inputs, so a single example is given as a batch of
one. The second half does the same with mini-batches from
`pescador.maps.buffer_stream`, which is how one usually feeds
``partial_fit``: fewer, larger updates.
"""

# sphinx_gallery_thumbnail_path = "_generated/mux_shuffled.png"

import argparse

import numpy as np

import pescador


def load(file_id, n_rows=200, n_features=5):
    """Stand-in for reading a file: a small regression problem.

    Every "file" shares the same linear relation, with its own inputs.
    """
    rng = np.random.default_rng(file_id)
    features = rng.normal(size=(n_rows, n_features))
    labels = features @ np.arange(1.0, n_features + 1) + rng.normal(
        scale=0.1, size=n_rows)
    return features, labels


def data(file_id):
    """Random examples from one file, forever (the talk's generator)."""
    features, labels = load(file_id)
    rng = np.random.default_rng(file_id)
    while True:
        idx = rng.integers(len(features))
        yield dict(X=features[idx], Y=labels[idx])


def make_train_gen(n_files, seed):
    streams = [pescador.Streamer(data, file_id) for file_id in range(n_files)]
    return pescador.ShuffledMux(streams, random_state=seed)


def fit_one_at_a_time(model, train_gen, steps):
    for example in train_gen(max_iter=steps):
        model.partial_fit(example["X"][np.newaxis], [example["Y"]])
    return model


def fit_mini_batches(model, train_gen, steps, batch_size):
    batches = pescador.buffer_stream(train_gen(max_iter=steps * batch_size),
                                     batch_size)
    for batch in batches:
        model.partial_fit(batch["X"], batch["Y"])
    return model


def main(argv=None):
    """Run both loops; return the fitted coefficients of each."""
    parser = argparse.ArgumentParser(
        description="scikit-learn: learning with partial_fit")
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1000,
                        help="examples for the one-at-a-time loop")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from sklearn.linear_model import SGDRegressor

    def model():
        return SGDRegressor(learning_rate="constant", eta0=0.01,
                            random_state=args.seed)

    train_gen = make_train_gen(args.files, args.seed)
    single = fit_one_at_a_time(model(), train_gen, args.steps)
    batched = fit_mini_batches(model(), train_gen, args.steps,
                               args.batch_size)
    print("true coefficients:          ", np.arange(1.0, 6))
    print("one example per update:     ", np.round(single.coef_, 2))
    print("{:2d} examples per update:     ".format(args.batch_size),
          np.round(batched.coef_, 2))
    return dict(single=single.coef_, batched=batched.coef_)


if __name__ == "__main__":
    main()
