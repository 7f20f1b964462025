"""Train small Keras 3 models from pescador streams on one backend.

Run as ``KERAS_BACKEND=<backend> python tests/keras_fit.py`` (the backend
is fixed when keras is imported, so tests/test_adapters.py runs one process
per backend). Prints one JSON line: ``{case: [first loss, last loss]}``,
and exits non-zero, with the traceback, if a case fails to train.
"""

import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pescador  # noqa: E402
import pescador.adapters  # noqa: E402

W_A = np.array([[1.5], [-2.0], [0.5]], np.float32)
W_B = np.array([[1.0], [3.0]], np.float32)


def samples(seed):
    """Items with two inputs, A (3 features) and B (2), and a target Y."""
    rng = np.random.default_rng(seed)
    while True:
        a = rng.standard_normal(3).astype(np.float32)
        b = rng.standard_normal(2).astype(np.float32)
        yield {"X": a, "A": a, "B": b, "Y": a @ W_A,
               "Z": a @ W_A + b @ W_B}


def batches():
    mux = pescador.ShuffledMux([pescador.Streamer(samples, seed)
                                for seed in range(4)], random_state=0)
    return pescador.Streamer(pescador.buffer_stream, mux, 16)


def one_input(keras):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def two_inputs(keras):
    a, b = keras.Input((3,)), keras.Input((2,))
    joined = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], keras.layers.Dense(1)(joined))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def losses(history):
    values = history.history["loss"]
    return [float(values[0]), float(values[-1])]


def main():
    warnings.filterwarnings("ignore")
    import keras

    keras.utils.set_random_seed(0)
    fit = dict(epochs=4, verbose=0)
    results = {}
    # The talk's idiom: one-element lists of keys.
    results["talk idiom"] = losses(one_input(keras).fit(
        pescador.maps.keras_tuples(batches(), inputs=["X"], outputs=["Y"]),
        steps_per_epoch=10, **fit))
    results["single keys"] = losses(one_input(keras).fit(
        pescador.keras_tuples(batches(), "X", "Y"), steps_per_epoch=10,
        **fit))
    results["two inputs"] = losses(two_inputs(keras).fit(
        pescador.keras_tuples(batches(), inputs=["A", "B"], outputs="Z"),
        steps_per_epoch=10, **fit))
    results["KerasPyDataset two inputs"] = losses(two_inputs(keras).fit(
        pescador.adapters.KerasPyDataset(batches(), num_batches=10,
                                         inputs=["A", "B"],
                                         outputs=["Z"]), **fit))
    print(json.dumps({"backend": keras.backend.backend(),
                      "losses": results}))


if __name__ == "__main__":
    main()
