"""The position of one iteration of a Streamer: what `pescador.get_state`
reads, and the check of a state given back to ``iterate``/``cycle``."""

import weakref
from itertools import chain, compress, islice, repeat
from typing import Any, Generator, cast

from .exceptions import PescadorError
from .state import BIG, VERSION, check_fits, check_keys, counted, mismatch


class _Iteration(chain):
    """What ``iterate()`` and ``cycle()`` return: the items of the
    iterators that ``activations``, a generator, yields one after the other
    (one per activation), passed on in C, without a Python frame per item;
    and ``close()``, as a generator's, which closes ``activations`` and so
    ends the activation early."""

    _activations: Generator[Any, None, None]

    @classmethod
    def of(cls, activations: Generator[Any, None, None]) -> "_Iteration":
        # from_iterable, a classmethod, makes an instance of the subclass.
        iteration = cast("_Iteration", cls.from_iterable(activations))
        iteration._activations = activations
        return iteration

    def close(self) -> None:
        """Stop early, as ``generator.close()`` does."""
        self._activations.close()

    def throw(self, *exc_info: Any) -> Any:
        """Raise an exception where the iteration is, as
        ``generator.throw()`` does: the activation ends, and the exception
        propagates."""
        return self._activations.throw(*exc_info)


class _Limited(islice):
    """``islice(generator, n)`` that can also be closed like a generator.

    Returned by ``iterate(max_iter)`` and ``cycle(max_iter)``, over an
    `_Iteration`. It holds it only through the islice, so the iteration
    (and the Streamer's activation) ends as soon as the last item is
    taken.
    """

    _generator: "weakref.ReferenceType[Generator[Any, None, None]]"

    def __new__(cls, generator, max_iter):
        limited = super().__new__(cls, generator, max_iter)
        limited._generator = weakref.ref(generator)
        return limited

    def close(self):
        """Stop early, as ``generator.close()`` does."""
        generator = self._generator()
        if generator is not None:
            generator.close()


class _Position:
    """The position of one iteration of a Streamer: what `get_state` reads.

    The iteration keeps it up to date once per activation, never per item:
    the count of items is read off the ``repeat`` object that the
    iteration's loop consumes.
    """

    __slots__ = ("streamer", "name", "call", "max_iter", "resume", "active",
                 "counter", "base", "done", "closed")
    active: Any

    def __init__(self, streamer, call, max_iter, state):
        self.streamer = streamer
        self.name = type(streamer).__name__
        self.call, self.max_iter = call, max_iter
        self.resume = None if state is None else state["stream"]
        self.base = 0 if state is None else state["taken"]
        self.done = False if state is None else state["done"]
        self.active = self.counter = None
        self.closed = False

    def start(self, active):
        """Count the items of the activation ``active`` from now on; return
        the iterator of its items."""
        # compress takes one selector per item it yields, and none once
        # the source ends: the cheapest count in C that we know of.
        self.active, self.counter = active, repeat(True, BIG)
        self.resume = None
        return compress(active.stream_, self.counter)

    def end(self, done=False):
        """The activation has ended; ``done``: so has the iteration, whose
        state then keeps what the epochs after it need (a mux's generators,
        see `Streamer._final_state`)."""
        if self.counter is not None:
            self.base += counted(self.counter)
        if done:
            self.done = True
            if self.active is not None:
                try:
                    self.resume = self.active._final_state()
                except PescadorError:
                    # A stream that cannot checkpoint still runs to its
                    # end; its get_state says why it cannot.
                    self.resume = None
        self.active = self.counter = None

    def __call__(self):
        stream = self.resume
        taken = self.base
        if self.counter is not None:
            pulled = counted(self.counter)
            taken += pulled
            if self.closed and taken != self.max_iter:
                raise PescadorError(
                    "get_state: this iteration of a {} was closed before "
                    "its end, which closed its streams: take the state "
                    "before closing it".format(self.name))
            stream = self.active._state(pulled)
        elif stream is None and not self.done:
            # Not started: what the streamer's next activation will use.
            after = self.streamer._next_state()
            stream = None if after is None else {"next": after}
        return {"pescador_state": VERSION, "streamer": self.name,
                "call": self.call, "max_iter": self.max_iter,
                "taken": taken, "done": self.done, "stream": stream}


def _check_state(streamer, state, call, max_iter):
    """``state`` if it is the state of a ``call`` of a stream like
    ``streamer``'s with this ``max_iter``; else `PescadorError`."""
    check_keys(state, ("pescador_state", "streamer", "call", "max_iter",
                       "taken", "done", "stream"), type(streamer).__name__)
    if state["pescador_state"] != VERSION:
        raise mismatch("the state format version", VERSION,
                       state["pescador_state"])
    check_fits(
        ("a stream of type", type(streamer).__name__, state["streamer"]),
        ("a call of", call, state["call"]),
        ("an iteration with max_iter", max_iter, state["max_iter"]))
    return state
