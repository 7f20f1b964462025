"""Sphinx extension: draw what each mux does, with the real muxes.

At the start of every build, each mux in `PICTURES` mixes the same five
small sources (A to E, eight items each) and the first `N_ITEMS` items it
yields are drawn as a raster: one row per source, one column per item of
the output, the cell labelled with the item's position in its source. The
PNGs go to ``docs/_generated/`` for the pages to include.
"""

from pathlib import Path

import numpy as np

import pescador

GENERATED = Path(__file__).resolve().parent.parent / "_generated"
LETTERS = "ABCDE"
SOURCE_LENGTH = 8
N_ITEMS = 40
SEED = 3


def source(index):
    """Eight items from source ``index``: (source, position) pairs."""
    for position in range(SOURCE_LENGTH):
        yield index, position


def streams():
    return [pescador.Streamer(source, i) for i in range(len(LETTERS))]


# name: (title, factory); the titles are the calls that made the pictures.
PICTURES = {
    "shuffled": ("ShuffledMux(streams)", lambda: pescador.ShuffledMux(
        streams(), random_state=SEED)),
    "shuffled_weighted": (
        "ShuffledMux(streams, weights=[4, 2, 1, 1, 0])",
        lambda: pescador.ShuffledMux(streams(), weights=[4, 2, 1, 1, 0],
                                     random_state=SEED)),
    "chain": ("ChainMux(streams)", lambda: pescador.ChainMux(streams())),
    "round_robin": ("RoundRobinMux(streams)",
                    lambda: pescador.RoundRobinMux(streams())),
    "stochastic": ("StochasticMux(streams, n_active=2, rate=3)",
                   lambda: pescador.StochasticMux(
                       streams(), n_active=2, rate=3, random_state=SEED)),
}


def draw(items, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(9, 1.9))
    for column, (row, position) in enumerate(items):
        ax.add_patch(plt.Rectangle((column, row), 1, 1, color=colours[row]))
        ax.text(column + 0.5, row + 0.5, str(position), ha="center",
                va="center", fontsize=7, color="white")
    ax.set_xlim(0, N_ITEMS)
    ax.set_ylim(len(LETTERS), 0)
    ax.set_yticks(np.arange(len(LETTERS)) + 0.5, list(LETTERS))
    ax.set_xticks(np.arange(0, N_ITEMS + 1, 5))
    ax.set_xlabel("position in the mux's output")
    ax.set_ylabel("source")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", color="0.9")
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def generate(app=None):
    """Write every picture to ``docs/_generated/mux_<name>.png``."""
    GENERATED.mkdir(exist_ok=True)
    for name, (title, make) in PICTURES.items():
        items = list(make().iterate(max_iter=N_ITEMS))
        draw(items, GENERATED / "mux_{}.png".format(name), title)


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "version": "1"}


if __name__ == "__main__":
    generate()
