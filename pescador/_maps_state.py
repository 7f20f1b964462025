"""Checkpoint and resume for the maps (`pescador.maps`): what a map's
input is, how its position is read and restored, and how ``Streamer(map,
...)`` reaches the map's resumable generator.

A map's generator is registered with `pescador.state.register`, so that
`pescador.get_state` reads the map's state, and each map function has a
``_pescador_resume(state, *args, **kwargs)`` that returns a generator
continuing from such a state: `Streamer._state` / `Streamer._resume` then
checkpoint ``Streamer(map, ...)`` like any stream.
"""

import functools
from itertools import compress, repeat
from typing import (Any, Callable, Dict, Iterator, Optional,
                    Sequence, TypeVar)


from .core import Streamer
from .exceptions import PescadorError
from .state import (BIG, check_fits, counted, get_state, mismatch,
                    register, skip)

_F = TypeVar("_F", bound=Callable[..., Any])


class _MapCall(functools.partial):
    """What ``Streamer(map, *args)`` calls: the map itself, whose returned
    generator is registered for `get_state`.

    `Streamer` accepts generator functions; a map is a plain function (it
    checks its arguments at call time). `inspect.isgeneratorfunction` looks
    through `functools.partial`, and this partial wraps a generator function
    of the map's signature, so `Streamer` takes it; but calling it calls the
    map, so that ``active.stream_`` is the registered generator (a wrapping
    generator would hide it from `get_state`).
    """

    _map: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._map(*args, **kwargs)

    def __copy__(self) -> "_MapCall":
        return self

    def __deepcopy__(self, memo: Any) -> "_MapCall":
        return self     # a function: an activation shares it

    def __reduce__(self) -> Any:
        return getattr, (self._map, "_pescador_streamable")


def wrappable(resume: Callable[..., Iterator[Any]]) -> Callable[[_F], _F]:
    """Decorator: let ``Streamer(func, *args)`` work for a map ``func``,
    and resume from ``resume(state, *args, **kwargs)``."""
    def decorate(func: _F) -> _F:
        def as_generator(*args, **kwargs):
            yield from func(*args, **kwargs)

        call = _MapCall(as_generator)
        call._map = func
        for name in ("__name__", "__qualname__", "__module__", "__doc__"):
            setattr(call, name, getattr(func, name))
        # The marks `streamable` sets, read back by Streamer (and pickling).
        call._pescador_wrapper = func  # type: ignore[attr-defined]
        call._pescador_resume = resume  # type: ignore[attr-defined]
        func._pescador_streamable = call  # type: ignore[attr-defined]
        func._pescador_resume = resume  # type: ignore[attr-defined]
        return func
    return decorate


class MapInput:
    """The items a map takes, and their position for a checkpoint.

    - a `Streamer` (or a mux): iterated with ``iterate()``, so that its own
      state is the position (``{"iterate": state}``);
    - a re-iterable (a list, a tuple, a range...): ``iter()`` of it, counted
      (``{"skip": items taken}``) at the cost of one C-level layer;
    - a one-shot iterator (a generator object...): taken as it is; it cannot
      be produced again, so `state` raises `PescadorError`.
    """

    __slots__ = ("items", "_iteration", "_counter", "_base", "_one_shot")

    def __init__(self, stream: Any, name: str,
                 state: Optional[Dict[str, Any]] = None) -> None:
        self._iteration: Optional[Iterator[Any]] = None
        self._counter: Any = None
        self._base = 0
        self._one_shot: Optional[str] = None
        if isinstance(stream, Streamer):
            inner = None if state is None else _input(state, "iterate", name)
            self._iteration = stream.iterate(state=inner)
            self.items: Iterator[Any] = self._iteration
            return
        items = iterate(stream, name)
        if items is stream:
            if state is not None:
                raise PescadorError(_one_shot(name, stream))
            self._one_shot = _one_shot(name, stream)
            self.items = items
            return
        if state is not None:
            self._base = _input(state, "skip", name)
            skip(items, self._base, "the input of " + name)
        self._counter = repeat(True, BIG)
        self.items = compress(items, self._counter)

    def state(self) -> Dict[str, Any]:
        """The input's position, in JSON types."""
        if self._iteration is not None:
            return {"iterate": get_state(self._iteration)}
        if self._one_shot is not None:
            raise PescadorError(self._one_shot)
        return {"skip": self._base + counted(self._counter)}


class _Progress:
    """What `get_state` reads from a running map: its input and whether it
    has ended (the generator itself cannot be looked into)."""

    __slots__ = ("input", "done")

    def __init__(self, input: MapInput, done: bool) -> None:
        self.input, self.done = input, done


def start_map(name, stream, params, state, run):
    """Register and return the generator ``run(items, progress)`` of the map
    ``name`` over ``stream``, continuing from ``state`` (already checked)
    if given; its state is its input's position."""
    progress = _Progress(MapInput(
        stream, name, None if state is None else state["input"]),
        state is not None and state["done"])
    generator = (no_items() if progress.done
                 else run(progress.input.items, progress))

    def read_state():
        return map_state(name, params, progress.done,
                         input=progress.input.state())
    return register(generator, read_state)


def no_items() -> Iterator[Any]:
    """The generator of a map resumed after its end."""
    yield from ()


def iterate(stream: Any, name: str) -> Iterator[Any]:
    """``iter(stream)``, or `PescadorError` if ``stream`` is not iterable."""
    try:
        return iter(stream)
    except TypeError:
        raise PescadorError(
            "{} expects an iterable of items (a Streamer, a mux, a list, a "
            "generator...); got {!r} ({})".format(
                name, stream, type(stream).__name__)) from None


def _one_shot(name: str, stream: Any) -> str:
    return (
        "Cannot checkpoint {0} over a one-shot iterator ({1}): its items "
        "cannot be produced again on resume. Give {0} a Streamer instead "
        "(e.g. Streamer(gen_func, *args) rather than the generator "
        "gen_func(*args)), a mux, or a list".format(
            name, type(stream).__name__))


def _input(state: Any, kind: str, name: str) -> Any:
    """The ``kind`` ("iterate" or "skip") part of an input ``state``."""
    if not isinstance(state, dict) or len(state) != 1 or not (
            set(state) <= {"iterate", "skip"}):
        raise PescadorError(
            "Invalid state for the input of {}: expected {{'iterate': ...}}"
            " or {{'skip': n}}; got {!r}".format(name, state))
    if kind not in state:
        raise mismatch("the input of " + name + " as",
                       _KINDS[kind], _KINDS[next(iter(state))])
    value = state[kind]
    if kind == "skip" and not (type(value) is int and value >= 0):
        raise PescadorError(
            "Invalid state for the input of {}: skip={!r}, expected a "
            "non-negative int".format(name, value))
    return value


_KINDS = {"iterate": "a Streamer (or mux)",
          "skip": "a re-iterable (a list, a tuple...)"}


def map_state(name: str, params: Dict[str, Any], done: bool,
              **parts: Any) -> Dict[str, Any]:
    """The state of a map: its name, its parameters, ``done`` and its own
    ``parts``."""
    state: Dict[str, Any] = {"map": name}
    state.update(params)
    state["done"] = done
    state.update(parts)
    return state


def check_map_state(state: Any, name: str, params: Dict[str, Any],
                    parts: Sequence[str]) -> Dict[str, Any]:
    """``state`` if it is a state of the map ``name`` with these
    ``params``; else `PescadorError` saying what differs."""
    if not isinstance(state, dict) or "map" not in state:
        raise PescadorError(
            "Invalid state for {}: expected what pescador.get_state returned"
            " for it (a dict with a 'map' key); got {:.200}".format(
                name, repr(state)))
    if state["map"] != name:
        raise mismatch("the map", name, state["map"])
    keys = (*params, "done", *parts)
    missing = [key for key in keys if key not in state]
    if missing:
        raise PescadorError(
            "Invalid state for {}: it lacks {}; pass what "
            "pescador.get_state returned".format(name, ", ".join(missing)))
    check_fits(*(("{} with {}=".format(name, key), value, state[key])
                 for key, value in params.items()))
    return state


def describe_keys(keys: Any) -> Any:
    """``keys`` (None, a key, or a list of keys) in JSON types: each key as
    it is if a JSON scalar, else its repr."""
    if isinstance(keys, (list, tuple)):
        return [describe_keys(key) for key in keys]
    if keys is None or isinstance(keys, (str, int, float, bool)):
        return keys
    return repr(keys)
