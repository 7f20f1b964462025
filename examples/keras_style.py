"""
Keras: ``keras_tuples`` feeding ``model.fit``
=============================================

Keras wants ``(inputs, targets)`` tuples, pescador streams dicts:
`pescador.maps.keras_tuples` converts one to the other. The talk's
"Keras-style" snippet used Keras 2's ``fit_generator``; with Keras 3,
``model.fit`` takes the generator directly::

    model.fit(pescador.maps.keras_tuples(train_gen, inputs='X', outputs='Y'),
              steps_per_epoch=..., epochs=...)

Validation uses a `pescador.ChainMux` over held-out sources, batched one
pass at a time and cycled, so that every epoch is scored on the same
batches (``validation_steps`` of them).

The script trains a small model when Keras 3 is installed (with any
backend); without Keras it only shows the batches it would feed.
"""

# sphinx_gallery_thumbnail_path = "_generated/mux_stochastic.png"

import argparse
import math

import numpy as np

import pescador

N_FEATURES, N_CLASSES = 8, 3


def centres():
    return np.random.default_rng(0).normal(scale=2,
                                           size=(N_CLASSES, N_FEATURES))


def train_rows(source):
    """Random labelled rows from one source, forever."""
    rng, means = np.random.default_rng(source), centres()
    while True:
        label = rng.integers(N_CLASSES)
        yield dict(X=(means[label] + rng.normal(size=N_FEATURES)).astype(
            np.float32), Y=np.array(label))


def val_rows(source, n_rows):
    """The same ``n_rows`` rows of one held-out source, every time."""
    rows = train_rows(1000 + source)
    for _ in range(n_rows):
        yield next(rows)


def train_tuples(n_sources, batch_size, seed):
    """Endless ``(x, y)`` batches from a StochasticMux over the sources."""
    mux = pescador.StochasticMux(
        [pescador.Streamer(train_rows, i) for i in range(n_sources)],
        n_active=4, rate=8, random_state=seed)
    batches = pescador.Streamer(pescador.buffer_stream, mux, batch_size)
    return pescador.keras_tuples(batches, inputs="X", outputs="Y")


def val_tuples(n_sources, n_rows, batch_size):
    """Cycled validation batches and the number of steps in one pass."""
    val_mux = pescador.ChainMux([pescador.Streamer(val_rows, i, n_rows)
                                 for i in range(n_sources)])
    one_pass = pescador.Streamer(pescador.buffer_stream, val_mux, batch_size,
                                 partial=True)
    steps = math.ceil(n_sources * n_rows / batch_size)
    return pescador.keras_tuples(one_pass.cycle(), "X", "Y"), steps


def build_model(keras):
    model = keras.Sequential([
        keras.Input(shape=(N_FEATURES,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(N_CLASSES, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None):
    """Train with Keras if it is installed; return what was done."""
    parser = argparse.ArgumentParser(
        description="Keras: keras_tuples feeding model.fit")
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--val-sources", type=int, default=4)
    parser.add_argument("--val-rows", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    train = train_tuples(args.sources, args.batch_size, args.seed)
    val, val_steps = val_tuples(args.val_sources, args.val_rows,
                                args.batch_size)
    try:
        import keras
    except ImportError:
        x, y = next(train)
        print("Keras is not installed; the first training batch would be "
              "x {} {}, y {} {}".format(x.shape, x.dtype, y.shape, y.dtype))
        print("validation: {} steps per epoch".format(val_steps))
        return dict(keras=False, x=x, y=y, val_steps=val_steps)

    keras.utils.set_random_seed(args.seed)
    model = build_model(keras)
    history = model.fit(train, steps_per_epoch=args.steps_per_epoch,
                        epochs=args.epochs, validation_data=val,
                        validation_steps=val_steps, shuffle=False,
                        verbose=2)
    accuracy = history.history["val_accuracy"][-1]
    print("validation accuracy after {} epochs: {:.3f} (chance {:.3f})"
          .format(args.epochs, accuracy, 1 / N_CLASSES))
    return dict(keras=True, accuracy=accuracy, val_steps=val_steps)


if __name__ == "__main__":
    main()
