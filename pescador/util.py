"""Small helpers shared by the rest of pescador: random states, batch
lengths, and the deprecation machinery."""

import functools
import numbers
import warnings
from typing import Any, Callable, TypeVar, Union

import numpy as np

from .exceptions import PescadorError

__all__ = [
    "get_rng",
    "derive_rng",
    "batch_length",
    "Deprecated",
    "rename_kw",
    "moved",
    "deprecated",
]

#: What a ``random_state`` parameter accepts.
RandomStateLike = Union[None, int, np.random.RandomState, np.random.Generator]
#: A random number generator as pescador uses them.
Rng = Union[np.random.RandomState, np.random.Generator]
_F = TypeVar("_F", bound=Callable[..., Any])


def _is_int(value):
    """True for a Python or numpy integer, but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    """True for a Python or numpy real number, but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices`` (strings or None), else
    `PescadorError`."""
    if not isinstance(value, (str, type(None))) or value not in choices:
        raise PescadorError("Invalid {}={!r}: expected one of {}".format(
            name, value, ", ".join(map(repr, choices))))
    return value


def _check_positive_int(value, name, func=None):
    """Return ``value`` as an int if it is a positive integer, else
    `PescadorError` (its message prefixed with ``func``'s name, if given)."""
    if not (_is_int(value) and value > 0):
        raise PescadorError(
            "{} {}={!r} ({}): expected a positive int".format(
                func + ": invalid" if func else "Invalid", name, value,
                type(value).__name__))
    return int(value)


def get_rng(random_state: RandomStateLike) -> Rng:
    """Turn a ``random_state`` argument into a random number generator.

    Parameters
    ----------
    random_state : None, int, np.random.RandomState or np.random.Generator
        - ``None``: the global numpy generator (``np.random``'s own state).
        - an int: a new ``np.random.RandomState`` seeded with it.
        - a ``RandomState`` or ``Generator``: returned as it is.

    Returns
    -------
    rng : np.random.RandomState or np.random.Generator

    Raises
    ------
    PescadorError
        For anything else (a float, a string, a bool, a negative seed...).

    Examples
    --------
    >>> import numpy as np
    >>> from pescador.util import get_rng
    >>> rng = get_rng(20)
    >>> int(rng.randint(100)) == int(np.random.RandomState(20).randint(100))
    True
    >>> get_rng(None) is np.random.mtrand._rand
    True
    >>> get_rng('seed')
    Traceback (most recent call last):
    ...
    pescador.exceptions.PescadorError: Invalid random_state='seed' (str): expected None, a non-negative int seed, an np.random.RandomState or an np.random.Generator
    """
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if _is_int(random_state) and 0 <= random_state < 2**32:
        return np.random.RandomState(int(random_state))
    raise PescadorError(
        "Invalid random_state={!r} ({}): expected None, a non-negative int "
        "seed, an np.random.RandomState or an np.random.Generator".format(
            random_state, type(random_state).__name__))


def derive_rng(rng: Rng) -> Rng:
    """Draw a fresh, independent generator of the same kind from ``rng``.

    This advances ``rng`` by one draw, so successive calls give different
    generators while the whole sequence stays reproducible from the seed of
    ``rng``. Muxes use it to give each activation (epoch) its own stream of
    random numbers.

    Parameters
    ----------
    rng : np.random.RandomState or np.random.Generator

    Returns
    -------
    child : same type as ``rng``

    Examples
    --------
    >>> import numpy as np
    >>> from pescador.util import derive_rng
    >>> parent = np.random.RandomState(0)
    >>> a, b = derive_rng(parent), derive_rng(parent)
    >>> int(a.randint(1000)) != int(b.randint(1000))
    True
    >>> replay = np.random.RandomState(0)
    >>> int(derive_rng(replay).randint(10**9)) == int(
    ...     derive_rng(np.random.RandomState(0)).randint(10**9))
    True
    """
    if isinstance(rng, np.random.Generator):
        return np.random.Generator(type(rng.bit_generator)(
            int(rng.integers(2**63))))
    return np.random.RandomState(int(rng.randint(2**32, dtype=np.uint64)))


def batch_length(batch: Any) -> int:
    """The common length of the arrays in a batch (a dict of arrays).

    Parameters
    ----------
    batch : dict
        Maps keys to arrays (or sequences) that share their first dimension.

    Returns
    -------
    length : int
        The size of the leading dimension shared by every value.

    Raises
    ------
    PescadorError
        If the values differ in length, a value has no length (a 0-d array
        or a scalar), or ``batch`` is empty or not a dict.

    Examples
    --------
    >>> import numpy as np
    >>> from pescador.util import batch_length
    >>> batch_length({'X': np.zeros((8, 3)), 'Y': np.arange(8)})
    8
    >>> batch_length({'X': np.zeros((8, 3)), 'Y': np.arange(5)})
    Traceback (most recent call last):
    ...
    pescador.exceptions.PescadorError: batch_length: the values differ in length: {'X': 8, 'Y': 5}
    """
    if not isinstance(batch, dict) or not batch:
        raise PescadorError(
            "batch_length: expected a non-empty dict of arrays, got "
            "{!r}".format(type(batch).__name__))
    lengths = {}
    for key, value in batch.items():
        try:
            lengths[key] = len(value)
        except TypeError:
            raise PescadorError(
                "batch_length: the value for key {!r} has no length "
                "(a {} with shape {})".format(
                    key, type(value).__name__,
                    getattr(value, "shape", "()"))) from None
    if len(set(lengths.values())) > 1:
        raise PescadorError(
            "batch_length: the values differ in length: {!r}".format(
                lengths))
    return next(iter(lengths.values()))


class Deprecated:
    """A placeholder default for a deprecated parameter.

    A function that renames a keyword keeps the old keyword with the default
    ``Deprecated()``, so it can tell whether the caller still passes it (see
    `rename_kw`).

    Examples
    --------
    >>> from pescador.util import Deprecated
    >>> Deprecated()
    <DEPRECATED parameter>
    """

    def __repr__(self) -> str:
        return "<DEPRECATED parameter>"


def rename_kw(old_name: str, old_value: Any, new_name: str, new_value: Any,
              version_deprecated: str, version_removed: str) -> Any:
    """Handle a renamed keyword argument.

    Parameters
    ----------
    old_name, new_name : str
        The old and new names of the parameter.
    old_value, new_value
        The values received for each name. ``old_value`` is a `Deprecated`
        instance when the caller did not use the old name.
    version_deprecated, version_removed : str
        When the old name was deprecated, and when it goes away.

    Returns
    -------
    value
        ``new_value`` if the old name was not used; otherwise ``old_value``,
        after a ``DeprecationWarning``.

    Examples
    --------
    >>> import warnings
    >>> from pescador.util import Deprecated, rename_kw
    >>> rename_kw('k', Deprecated(), 'n_active', 5, '2.0', '3.0')
    5
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     rename_kw('k', 3, 'n_active', 5, '2.0', '3.0')
    3
    >>> print(caught[0].message)
    Keyword argument 'k' has been renamed to 'n_active' in version 2.0. This alias will be removed in version 3.0.
    """
    if isinstance(old_value, Deprecated):
        return new_value
    # pescador 2.0's wording.
    warnings.warn(
        "Keyword argument '{}' has been renamed to '{}' in version {}. "
        "This alias will be removed in version {}.".format(
            old_name, new_name, version_deprecated, version_removed),
        category=DeprecationWarning, stacklevel=3)
    return old_value


def moved(moved_from: str, version: str,
          version_removed: str) -> Callable[[_F], _F]:
    """Decorator for a function that moved to a new place.

    Calling the decorated function warns that the old name ``moved_from``
    is deprecated, then calls it.

    Parameters
    ----------
    moved_from : str
        The old, deprecated dotted name.
    version, version_removed : str
        When it moved, and when the old name goes away.

    Examples
    --------
    >>> import warnings
    >>> from pescador.util import moved
    >>> @moved('pescador.old_double', '2.0', '3.0')
    ... def double(x):
    ...     return 2 * x
    >>> old_double = double
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     old_double(4)
    8
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    Function pescador.old_double moved to ...double in version 2.0; the old name will be removed in 3.0.
    """
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            warnings.warn(
                "Function {} moved to {}.{} in version {}; the old name "
                "will be removed in {}.".format(
                    moved_from, func.__module__, func.__qualname__, version,
                    version_removed),
                category=DeprecationWarning, stacklevel=2)
            return func(*args, **kwargs)
        return wrapper
    return decorator


def deprecated(version: str,
               version_removed: str) -> Callable[[_F], _F]:
    """Decorator for a deprecated function.

    Calling the decorated function warns that it is deprecated, then calls
    it.

    Parameters
    ----------
    version, version_removed : str
        When it was deprecated, and when it goes away.

    Examples
    --------
    >>> import warnings
    >>> from pescador.util import deprecated
    >>> @deprecated('2.0', '3.0')
    ... def old(x):
    ...     return x + 1
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     old(1)
    2
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    Function ...old is deprecated as of version 2.0 and will be removed in 3.0.
    """
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            warnings.warn(
                "Function {}.{} is deprecated as of version {} and will be "
                "removed in {}.".format(func.__module__, func.__qualname__,
                                        version, version_removed),
                category=DeprecationWarning, stacklevel=2)
            return func(*args, **kwargs)
        return wrapper
    return decorator
