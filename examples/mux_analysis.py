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

It then compares the budgets of an activation (``dist``) at one setting:
pescador 2.0's ``1 + Poisson(rate)`` and pescador 3.0's ``"constant"``,
``"poisson"`` and ``"binomial"``, all of mean ``rate + 1``: how much the
budgets vary, and how evenly the sources share a window of the stream.
"""

import argparse
import itertools

import numpy as np

import pescador


def constant(value):
    """A source that yields its own index forever."""
    while True:
        yield value


# A number for each activation of `tagged`, to count its items.
_activations = itertools.count()


def tagged(value):
    """A source that yields ``(its index, its activation's number)``."""
    activation = next(_activations)
    while True:
        yield value, activation


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


def window_spread(seq, n_streams, window):
    """The variance of each source's count in windows of ``window`` items,
    over the variance of independent draws (a ShuffledMux): 1 is ideal."""
    n_windows = len(seq) // window
    counts = np.stack([np.bincount(part, minlength=n_streams) for part in
                       seq[:n_windows * window].reshape(n_windows, window)])
    share = 1 / n_streams
    return float(counts.var(axis=0).mean() / (window * share * (1 - share)))


def compare_budgets(n_streams, n_active, rate, n_items, batch_size, window,
                    seed):
    """For each budget of mean ``rate + 1`` (``dist=None`` at ``rate``,
    the 3.0 budgets at ``rate + 1``): the budgets' standard deviation,
    the batch TV distance, the repeat probability and the window spread."""
    streams = [pescador.Streamer(tagged, i) for i in range(n_streams)]
    rows = {}
    for dist in (None, "constant", "poisson", "binomial"):
        mux = pescador.StochasticMux(
            streams, n_active=n_active, rate=rate if dist is None
            else rate + 1, dist=dist, random_state=seed)
        items = np.array(list(mux.iterate(max_iter=n_items)))
        seq, activation = items[:, 0], items[:, 1]
        # Activations still open at the end have not spent their budget.
        still_open = set(activation[-n_items // 4:].tolist())
        budgets = [n for a, n in zip(*np.unique(activation,
                                                 return_counts=True))
                   if a not in still_open]
        rows[str(dist)] = dict(
            budget_std=float(np.std(budgets)),
            tv=batch_tv_distance(seq, n_streams, batch_size),
            repeat=repeat_probability(seq),
            spread=window_spread(seq, n_streams, window))
    ideal = sources(pescador.ShuffledMux(
        [pescador.Streamer(constant, i) for i in range(n_streams)],
        random_state=seed), n_items)
    rows["ShuffledMux"] = dict(
        budget_std=0.0, tv=batch_tv_distance(ideal, n_streams, batch_size),
        repeat=repeat_probability(ideal),
        spread=window_spread(ideal, n_streams, window))
    return rows


def print_budgets(rows, n_active, rate):
    print("budgets of mean {} with n_active={}:".format(rate + 1, n_active))
    print("{:<12} {:>10} {:>8} {:>8} {:>8}".format(
        "dist", "budget std", "TV", "repeat", "spread"))
    for dist, row in rows.items():
        print("{:<12} {budget_std:>10.2f} {tv:>8.3f} {repeat:>8.3f} "
              "{spread:>8.2f}".format(dist, **row))


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
    parser.add_argument("--budget-setting", type=int, nargs=2,
                        default=[16, 7], metavar=("N_ACTIVE", "RATE"),
                        help="the setting at which to compare the budgets")
    parser.add_argument("--window", type=int, default=256,
                        help="items per window for the spread")
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
    n_active, rate = args.budget_setting
    budgets = compare_budgets(args.streams, n_active, rate, 16 * args.items,
                              args.batch_size, args.window, args.seed)
    print_budgets(budgets, n_active, rate)
    return dict(tv=result[0], repeat=result[1], ideal=ideal, figure=fig,
                n_active=args.n_active, rate=rates, budgets=budgets)


if __name__ == "__main__":
    main()
