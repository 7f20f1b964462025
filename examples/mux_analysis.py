"""
How to set ``n_active`` and ``rate`` in ``StochasticMux``
=========================================================

`pescador.ShuffledMux` is the ideal: every item comes from a source drawn
afresh at random. It needs every source open at once, though, and with
thousands of files that is too much memory. `pescador.StochasticMux` keeps
only ``n_active`` sources open and takes about ``rate`` items from each
before replacing it, so its items come in *bursts* from few sources.

This script measures how far that is from the ideal, for ``--streams``
sources of equal weight, over a grid of ``n_active`` and ``rate``:

* left: the mean total-variation distance between the mix of sources in a
  mini-batch and the ideal (uniform) mix. ShuffledMux is not at zero either,
  since a batch is a small sample: its value is given in the title;
* right: the probability that an item comes from the same source as the
  item before it (ideal: ``1 / streams``).

The talk's advice reads straight off the maps: keep ``rate`` small and
``n_active`` large.
"""

import argparse

import numpy as np

import pescador


def constant(value):
    """A source that yields its own index forever."""
    while True:
        yield value


def sources(mux, n_items):
    """The source index of each of the first ``n_items`` items."""
    return np.fromiter(mux.iterate(max_iter=n_items), dtype=int,
                       count=n_items)


def batch_tv_distance(seq, n_streams, batch_size):
    """Mean total-variation distance between batch histograms and uniform."""
    n_batches = len(seq) // batch_size
    batches = seq[:n_batches * batch_size].reshape(n_batches, batch_size)
    counts = np.stack([np.bincount(batch, minlength=n_streams)
                       for batch in batches])
    distance = 0.5 * np.abs(counts / batch_size - 1 / n_streams).sum(axis=1)
    return distance.mean()


def repeat_probability(seq):
    """How often an item comes from the same source as the one before."""
    return float(np.mean(seq[1:] == seq[:-1]))


def measure(mux, n_items, n_streams, batch_size):
    seq = sources(mux, n_items)
    return (batch_tv_distance(seq, n_streams, batch_size),
            repeat_probability(seq))


def grid(n_streams, n_actives, rates, n_items, batch_size, seed):
    """Both measures for each (n_active, rate), and for ShuffledMux."""
    streams = [pescador.Streamer(constant, i) for i in range(n_streams)]
    result = np.empty((2, len(n_actives), len(rates)))
    for i, n_active in enumerate(n_actives):
        for j, rate in enumerate(rates):
            mux = pescador.StochasticMux(streams, n_active=n_active,
                                         rate=rate, random_state=seed)
            result[:, i, j] = measure(mux, n_items, n_streams, batch_size)
    ideal = measure(pescador.ShuffledMux(streams, random_state=seed),
                    n_items, n_streams, batch_size)
    return result, ideal


def heat_map(ax, values, n_actives, rates, title, floor):
    """Colours run from ``floor`` (the ShuffledMux value) to 1."""
    import matplotlib.pyplot as plt

    image = ax.imshow(values, origin="lower", cmap="viridis", vmin=floor,
                      vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        dark = value < floor + 0.6 * (1 - floor)
        ax.text(j, i, "{:.2f}".format(value), ha="center", va="center",
                fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(rates)), [str(r) for r in rates])
    ax.set_yticks(range(len(n_actives)), [str(n) for n in n_actives])
    ax.set_xlabel("rate")
    ax.set_ylabel("n_active")
    ax.set_title(title, fontsize=10)
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def plot(result, ideal, n_streams, n_actives, rates, batch_size):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    heat_map(axes[0], result[0], n_actives, rates,
             "TV distance of a {}-item batch from uniform\n"
             "(ShuffledMux: {:.2f})".format(batch_size, ideal[0]), ideal[0])
    heat_map(axes[1], result[1], n_actives, rates,
             "P(same source as previous item)\n"
             "(ShuffledMux: {:.3f}; ideal 1/{} = {:.3f})".format(
                 ideal[1], n_streams, 1 / n_streams), ideal[1])
    fig.suptitle("StochasticMux over {} sources vs. the ideal ShuffledMux "
                 "(lower is better; the colour scales start at the "
                 "ShuffledMux value)".format(n_streams), fontsize=11)
    return fig


def main(argv=None):
    """Compute the grid, save the figure; return the numbers and figure."""
    import matplotlib

    matplotlib.use("Agg")
    parser = argparse.ArgumentParser(
        description="How to set n_active and rate in StochasticMux")
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--n-active", type=int, nargs="+",
                        default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--rate", type=float, nargs="+",
                        default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--items", type=int, default=4096,
                        help="items drawn per cell")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="mux_analysis.png",
                        help="where to save the figure (PNG)")
    args = parser.parse_args(argv)
    rates = [int(r) if float(r).is_integer() else r for r in args.rate]

    result, ideal = grid(args.streams, args.n_active, rates, args.items,
                         args.batch_size, args.seed)
    fig = plot(result, ideal, args.streams, args.n_active, rates,
               args.batch_size)
    fig.savefig(args.output, dpi=100)
    print("saved", args.output)
    return dict(tv=result[0], repeat=result[1], ideal=ideal, figure=fig,
                n_active=args.n_active, rate=rates)


if __name__ == "__main__":
    main()
