"""The Streamer: a lazy, restartable wrapper around a source of items."""

import copy
import functools
import inspect
from collections.abc import Iterable, Iterator
from typing import (Any, Callable, Dict, Literal, Optional,
                    TypeVar)

from .exceptions import PescadorError
from ._position import _check_state, _Iteration, _Limited, _Position
from .state import (check_keys, get_state, is_registered, mismatch,
                    register, skip)
from .util import _is_int

__all__ = ["Streamer", "streamable"]


def check_max_iter(max_iter: Optional[int],
                   name: str = "max_iter") -> Optional[int]:
    """Return ``max_iter`` as an int (or None), or raise `PescadorError`."""
    if max_iter is None:
        return None
    if _is_int(max_iter) and max_iter >= 0:
        return int(max_iter)
    raise PescadorError(
        "Invalid {}={!r} ({}): expected None or a non-negative int".format(
            name, max_iter, type(max_iter).__name__))


def _describe(obj):
    name = getattr(obj, "__qualname__", None)
    if name is None:
        return "{!r} ({})".format(obj, type(obj).__name__)
    return "{} {}".format(type(obj).__name__, name)


_S = TypeVar("_S", bound="Streamer")


class Streamer:
    """A lazy, restartable wrapper around a source of items.

    A Streamer holds a *recipe* for a stream, not the stream itself: each
    iteration builds a fresh generator from the recipe, so a single Streamer
    can be iterated many times, even concurrently, and can be pickled and
    shipped to another process. A generator only takes memory while it is
    being iterated (while the Streamer is *active*).

    Parameters
    ----------
    streamer : generator function, iterable, or iterator
        The source of items:

        - a generator function, called as ``streamer(*args, **kwargs)`` at
          each activation;
        - any iterable (a list, a tuple, a string, another `Streamer`, a
          mux), iterated afresh at each activation;
        - an iterator object, such as a generator object. An iterator can be
          consumed only once: a second iteration of the Streamer yields what
          the first left over (usually nothing).
    *args, **kwargs
        Passed to ``streamer`` when it is a generator function.

    Attributes
    ----------
    streamer, args, kwargs
        As given.
    active : int
        The number of open activations of this Streamer: truthy while any
        iteration of it is running.
    active_count_ : int
        The same number (pescador 2.0's name for it).
    stream_ : iterator or None
        On the copy that an activation returns (``with streamer as
        active:``), the live iterator of that activation; else ``None``
        (pescador 2.0).

    Raises
    ------
    PescadorError
        If ``streamer`` is neither a generator function nor an iterable
        (for instance a plain function without ``yield``, or a number).

    See Also
    --------
    streamable : a decorator that makes a generator function return
        Streamers.

    Notes
    -----
    ``with streamer as active:`` returns an independent deep copy of the
    Streamer (``active.is_activated_copy`` is True) and counts one open
    activation on the original until the block ends. Two activations never
    share state. Iteration methods do this for you.

    ``copy.copy`` is shallow. ``copy.deepcopy`` deep-copies ``streamer`` and
    ``kwargs`` and shares ``args`` (a tuple), except that an iterator source
    is shared, since an iterator cannot be copied.

    Examples
    --------
    >>> import pescador
    >>> def count(n):
    ...     for i in range(n):
    ...         yield {'x': i}
    >>> stream = pescador.Streamer(count, 3)
    >>> list(stream)
    [{'x': 0}, {'x': 1}, {'x': 2}]
    >>> [item['x'] for item in stream.iterate(max_iter=2)]
    [0, 1]
    >>> [item['x'] for item in stream.cycle(max_iter=7)]
    [0, 1, 2, 0, 1, 2, 0]
    >>> list(pescador.Streamer('abc'))
    ['a', 'b', 'c']
    """

    #: The live iterator, on an activated copy only (None elsewhere).
    stream_: Any = None

    def __init__(self, streamer: Any, *args: Any, **kwargs: Any) -> None:
        streamer = getattr(streamer, "_pescador_streamable", streamer)
        if not (inspect.isgeneratorfunction(streamer)
                or isinstance(streamer, Iterable)):
            if callable(streamer):
                raise PescadorError(
                    "Streamer expects a generator function (one that uses "
                    "`yield`), an iterable or an iterator; got {}, which is "
                    "callable but not a generator function".format(
                        _describe(streamer)))
            raise PescadorError(
                "Streamer expects a generator function, an iterable or an "
                "iterator; got {!r} ({})".format(
                    streamer, type(streamer).__name__))
        self.streamer = streamer
        self.args = args
        self.kwargs = kwargs
        self.active = 0
        self._activated_copy = False

    @property
    def active_count_(self) -> int:
        """The number of open activations: pescador 2.0's name of
        ``active``."""
        return self.active

    @active_count_.setter
    def active_count_(self, value: int) -> None:
        self.active = value

    @property
    def is_activated_copy(self) -> bool:
        """True only on the copy returned by activation (``with s as c``)."""
        return self._activated_copy

    def __repr__(self) -> str:
        parts = [getattr(self.streamer, "__qualname__", None)
                 or repr(self.streamer)]
        parts += [repr(arg) for arg in self.args]
        parts += ["{}={!r}".format(k, v) for k, v in self.kwargs.items()]
        return "{}({})".format(type(self).__name__, ", ".join(parts))

    # -- activation -------------------------------------------------------

    def __enter__(self: _S) -> _S:
        return self._enter()

    def _enter(self: _S, state: Optional[Dict[str, Any]] = None,
               max_iter: Optional[int] = None) -> _S:
        """Activate: a fresh activation, or one continuing from the
        activation ``state`` (see `_state`). ``max_iter`` is a hint for
        subclasses that can stop at the source (ZMQStreamer's workers); the
        iteration applies the limit itself."""
        active = self._activate()
        active.stream_ = (active._source() if state is None
                          else active._resume(state))
        self.active += 1
        return active

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        self.active -= 1
        return False

    def _activate(self):
        """Return the independent copy that an activation iterates.

        Subclasses (the muxes) extend this to give each activation its own
        random state.
        """
        active = copy.deepcopy(self)
        active._activated_copy = True
        return active

    def _source(self):
        """The raw iterator of items; called on an activated copy."""
        if isinstance(self.streamer, Iterable):
            return iter(self.streamer)
        return self.streamer(*self.args, **self.kwargs)

    def _state(self, pulled: int) -> Dict[str, Any]:
        """The state of this activation (an activated copy) once ``pulled``
        items have been taken from its ``stream_``: the state of the
        iteration it wraps, if that is one of ours (a Streamer or a map over
        one), else the number of items to skip."""
        if is_registered(self.stream_):
            return {"inner": get_state(self.stream_)}
        return {"skip": pulled}

    def _resume(self, state: Dict[str, Any]) -> Any:
        """The raw iterator of an activation continuing from ``state`` (what
        `_state` returned); called on an activated copy."""
        if "skip" in state:
            return skip(self._source(), state["skip"], repr(self))
        inner = check_keys(state, ("inner",), repr(self))["inner"]
        if isinstance(self.streamer, Streamer):
            return self.streamer.iterate(state=inner)
        resume = getattr(self.streamer, "_pescador_resume", None)
        if resume is None:
            raise mismatch("a stream that can resume", repr(self),
                           "another one")
        return resume(inner, *self.args, **self.kwargs)

    def _final_state(self) -> Optional[Dict[str, Any]]:
        """What the iterations after this ended activation need of it: the
        final state of the iteration it wraps, if that is one of ours (a mux
        or a map over one), else None."""
        if is_registered(self.stream_):
            return {"inner": get_state(self.stream_)}
        return None

    def _next_state(self) -> Optional[Dict[str, Any]]:
        """On the original: what its next activation draws from, in the form
        of `_final_state` (a mux's own generators), or None. A map passes
        its input's on: the input is shared by every activation."""
        source = self._map_input()
        after = None if source is None else source._next_state()
        return None if after is None else {"map_input": after}

    def _restore_epochs(self, state: Optional[Dict[str, Any]]) -> None:
        """Set up the iterations after the one whose activation state (or
        `_final_state`, or `_next_state`) is ``state``, without running it.
        A Streamer over another Streamer or a mux has nothing to do: each
        activation works on a deep copy of it. A map passes the state of
        its input on to the input, which its activations share; see
        `BaseMux` for a mux's own generators."""
        source = self._map_input()
        if source is None or not isinstance(state, dict):
            return
        if "map_input" in state:
            source._restore_epochs(state["map_input"])
            return
        inner = state.get("inner")
        given = inner.get("input") if isinstance(inner, dict) else None
        iteration = given.get("iterate") if isinstance(given, dict) else None
        stream = (iteration.get("stream") if isinstance(iteration, dict)
                  else None)
        if isinstance(stream, dict) and "next" in stream:
            stream = stream["next"]
        source._restore_epochs(stream)

    def _map_input(self) -> Optional["Streamer"]:
        """The input stream of a map (a function with
        ``_pescador_resume``) given a Streamer as its first argument."""
        if not hasattr(self.streamer, "_pescador_resume"):
            return None
        stream = self.args[0] if self.args else self.kwargs.get("stream")
        return stream if isinstance(stream, Streamer) else None

    def __deepcopy__(self, memo):
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            if key == "stream_":
                continue    # a live iterator belongs to its activation
            if key == "args" or (key == "streamer"
                                 and isinstance(value, Iterator)):
                clone.__dict__[key] = value
            else:
                clone.__dict__[key] = copy.deepcopy(value, memo)
        clone.active = 0
        clone._activated_copy = False
        return clone

    def __getstate__(self):
        state = self.__dict__.copy()
        state["active"] = 0
        state.pop("stream_", None)
        # A @streamable function is shadowed in its module by its wrapper,
        # so pickle must refer to it through the wrapper.
        wrapper = getattr(state["streamer"], "_pescador_wrapper", None)
        if wrapper is not None:
            state["streamer"] = wrapper
        return state

    def __setstate__(self, state):
        state["streamer"] = getattr(state["streamer"],
                                    "_pescador_streamable",
                                    state["streamer"])
        self.__dict__.update(state)

    # -- iteration --------------------------------------------------------

    def iterate(self, max_iter: Optional[int] = None,
                state: Optional[Dict[str, Any]] = None) -> Iterator[Any]:
        """Iterate over the items of the stream, once.

        Parameters
        ----------
        max_iter : None or int >= 0
            Stop after this many items; ``None`` runs to exhaustion.
        state : None or dict
            Continue from this position, which `get_state` returned for an
            ``iterate`` of an equal stream with the same ``max_iter``:
            ``max_iter`` then counts the items before the checkpoint too.

        Returns
        -------
        iterator
            An iterator that passes the source's items on in C (an
            `itertools.chain`; with ``max_iter``, an `itertools.islice` of
            one), with a generator's ``close()`` to stop early.

        Raises
        ------
        PescadorError
            If ``max_iter`` is negative or not an int, or ``state`` does not
            fit this stream.

        Examples
        --------
        >>> import pescador
        >>> stream = pescador.Streamer(range(10))
        >>> list(stream.iterate(max_iter=4))
        [0, 1, 2, 3]
        >>> list(stream.iterate())
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        >>> items = stream.iterate()
        >>> next(items), next(items)
        (0, 1)
        >>> list(stream.iterate(state=pescador.get_state(items)))
        [2, 3, 4, 5, 6, 7, 8, 9]
        """
        return self._start_iteration("iterate", self._iterate, max_iter,
                                     state)

    def _start_iteration(self, call, run, max_iter, state):
        max_iter = check_max_iter(max_iter)
        if state is not None:
            state = _check_state(self, state, call, max_iter)
        position = _Position(self, call, max_iter, state)
        if isinstance(position.resume, dict) and "next" in position.resume:
            # A state taken before the iteration started.
            self._restore_epochs(position.resume["next"])
            position.resume = None
        iteration = _Iteration.of(run(max_iter, position))
        if max_iter is None:
            return register(iteration, position)
        if state is not None and position.base >= max_iter:
            # Nothing is left to run: set up the epochs after it now.
            self._restore_epochs(position.resume)
        limited = _Limited(iteration, max(max_iter - position.base, 0))
        return register(limited, position)

    # `_iterate` and `_cycle` are generators of iterators, one per
    # activation, whose items `_Iteration` passes on: each resumes only
    # between activations, to open and close them.

    def _iterate(self, max_iter, position):
        if position.done:
            self._restore_epochs(position.resume)
            return
        active = self._enter(position.resume, max_iter)
        try:
            yield position.start(active)
            position.end(done=True)
        finally:
            self._exit(active, position)

    def cycle(self, max_iter: Optional[int] = None,
              state: Optional[Dict[str, Any]] = None) -> Iterator[Any]:
        """Iterate over the stream forever, restarting it when it ends.

        Parameters
        ----------
        max_iter : None or int >= 0
            Stop after exactly this many items; ``None`` runs forever.
        state : None or dict
            Continue from this position (see `iterate`).

        Returns
        -------
        iterator
            As for `iterate`. Ends only if ``max_iter`` is reached, or if a
            restart of the stream yields nothing at all (like `itertools.cycle` of an empty
            iterable), so that an empty stream never hangs the caller.

        Examples
        --------
        >>> import pescador
        >>> list(pescador.Streamer('ab').cycle(max_iter=5))
        ['a', 'b', 'a', 'b', 'a']
        >>> list(pescador.Streamer([]).cycle())
        []
        """
        return self._start_iteration("cycle", self._cycle, max_iter, state)

    def _cycle(self, max_iter, position):
        if position.done:
            self._restore_epochs(position.resume)
        while not position.done:
            resumed = position.resume is not None
            active = self._enter(position.resume)
            try:
                items = position.start(active)
                for first in items:
                    break
                else:
                    # A fresh pass that yields nothing ends the cycle.
                    position.end(done=not resumed)
                    continue
                yield (first,)
                yield items
                position.end()
            finally:
                self._exit(active, position)

    def _exit(self, active, position=None):
        """End the activation ``active`` of an iteration: close its source
        (the counting iterator over it would not) and count it off."""
        if position is not None and position.counter is not None:
            position.closed = True      # closed before its end
        close = getattr(active.stream_, "close", None)
        if close is not None:
            close()
        self.active -= 1

    def __call__(self, max_iter: Optional[int] = None, cycle: bool = False,
                 state: Optional[Dict[str, Any]] = None) -> Iterator[Any]:
        """Iterate: ``cycle(max_iter)`` if ``cycle`` else ``iterate(max_iter)``
        (each continuing from ``state``, if given).

        Examples
        --------
        >>> import pescador
        >>> stream = pescador.Streamer('xyz')
        >>> ''.join(stream(max_iter=2))
        'xy'
        >>> ''.join(stream(max_iter=5, cycle=True))
        'xyzxy'
        """
        if cycle:
            return self.cycle(max_iter=max_iter, state=state)
        return self.iterate(max_iter=max_iter, state=state)

    def __iter__(self) -> Iterator[Any]:
        return self.iterate()


def streamable(gen_func: Callable[..., Any]) -> Callable[..., Streamer]:
    """Decorator: calling the generator function returns a `Streamer`.

    ``@streamable def gen(n): ...`` makes ``gen(5)`` return
    ``Streamer(gen, 5)``. The function keeps its name and docstring, and the
    Streamers it makes still pickle.

    Parameters
    ----------
    gen_func : generator function

    Returns
    -------
    function
        Takes the arguments of ``gen_func`` and returns a `Streamer`.

    Raises
    ------
    PescadorError
        If ``gen_func`` is not a generator function.

    Examples
    --------
    >>> import pescador
    >>> @pescador.streamable
    ... def letters(word):
    ...     '''Yield the letters of a word.'''
    ...     yield from word
    >>> stream = letters('hey')
    >>> stream
    Streamer(letters, 'hey')
    >>> list(stream.cycle(max_iter=5))
    ['h', 'e', 'y', 'h', 'e']
    >>> letters.__name__, letters.__doc__
    ('letters', 'Yield the letters of a word.')
    """
    if not inspect.isgeneratorfunction(gen_func):
        raise PescadorError(
            "streamable decorates generator functions; got {}".format(
                _describe(gen_func)))

    @functools.wraps(gen_func)
    def make_streamer(*args: Any, **kwargs: Any) -> Streamer:
        return Streamer(gen_func, *args, **kwargs)

    # Marks read back by Streamer (and pickling): plain function attributes,
    # which mypy does not model.
    make_streamer._pescador_streamable = gen_func  # type: ignore[attr-defined]
    gen_func._pescador_wrapper = make_streamer  # type: ignore[attr-defined]
    return make_streamer
