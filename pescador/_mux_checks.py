"""Checks of the muxes' parameters, and their weighted draws."""

from collections.abc import Iterable, Mapping

import numpy as np

from .core import Streamer
from .exceptions import PescadorError
from .util import _is_number


def _as_streamer(element, index):
    if isinstance(element, Streamer):
        return element
    if isinstance(element, Iterable):
        return Streamer(element)
    raise PescadorError(
        "Invalid streamers[{}]={!r} ({}): expected a Streamer or an iterable;"
        " wrap a generator function as Streamer(func, *args)".format(
            index, element, type(element).__name__))


def _check_streamers(streamers, allow_empty=False):
    if (isinstance(streamers, (Streamer, Mapping, str, bytes))
            or not isinstance(streamers, Iterable)):
        raise PescadorError(
            "Invalid streamers={!r} ({}): expected a list of Streamers or "
            "iterables".format(streamers, type(streamers).__name__))
    result = [_as_streamer(s, i) for i, s in enumerate(streamers)]
    if not result and not allow_empty:
        raise PescadorError(
            "Invalid streamers=[] (empty): expected at least one streamer")
    return result


def _check_weights(weights, n):
    if weights is None:
        return np.full(n, 1.0 / n)
    problem = None
    values = np.asarray(weights) if isinstance(weights, Iterable) else None
    if values is None or values.dtype.kind not in "iuf":
        # np.asarray(['1', '2'], dtype=float) would parse strings.
        problem = "not numbers"
    else:
        values = values.astype(float)
        if values.shape != (n,):
            problem = "shape {}, not ({},)".format(values.shape, n)
        elif not np.isfinite(values).all():
            problem = "not all finite"
        elif (values < 0).any():
            problem = "negative"
        elif not values.any():
            problem = "all zero"
    if problem or values is None:     # (values is None only with a problem)
        raise PescadorError(
            "Invalid weights={!r} ({}): expected {} non-negative numbers, one"
            " per streamer, at least one positive".format(weights, problem, n))
    # Scaled by the largest first, so that the sum of huge weights (such
    # as 1e308 twice) cannot overflow.
    values = values / values.max()
    return values / values.sum()


def _check_rate(rate):
    if rate is None or (_is_number(rate) and 0 <= rate < float("inf")):
        return rate
    raise PescadorError(
        "Invalid rate={!r} ({}): expected None or a non-negative finite "
        "number".format(rate, type(rate).__name__))


def _weighted_indices(rng, weights, size):
    """``size`` indices drawn with probability proportional to ``weights``
    (non-negative, not all zero), as a list of ints. An index of weight 0
    is never drawn: its interval of the cumulative sum is empty."""
    cumulative = np.cumsum(weights)
    uniforms = rng.random(size) * cumulative[-1]
    return np.searchsorted(cumulative[:-1], uniforms, side="right").tolist()
