"""Exception classes raised on purpose by pescador."""

__all__ = ["PescadorError", "DataError"]


class PescadorError(Exception):
    """The root of every error that pescador raises on purpose.

    Catch this to handle any misuse of the library (a bad parameter, a
    stream that cannot be built) in one place.

    Examples
    --------
    >>> import pescador
    >>> try:
    ...     pescador.Streamer(42)
    ... except pescador.PescadorError as exc:
    ...     print(type(exc).__name__)
    PescadorError
    """


class DataError(PescadorError):
    """An item is not data-like where data is required.

    Raised, for instance, when `buffer_stream` or `ZMQStreamer` receives an
    item that is not a dict of numpy arrays.

    Examples
    --------
    >>> import pescador
    >>> try:
    ...     next(pescador.buffer_stream([1, 2, 3], 2))
    ... except pescador.DataError as exc:
    ...     print(type(exc).__name__)
    DataError
    >>> issubclass(pescador.DataError, pescador.PescadorError)
    True
    """
