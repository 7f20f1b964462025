"""Keep Ctrl-C out of the consumer's start and cleanup steps."""

import contextlib
import signal
import threading


@contextlib.contextmanager
def deferred_sigint():
    """Run the block without SIGINT, then deliver one that came meanwhile.

    Starting a worker and cleaning up after it must run to their end: a
    KeyboardInterrupt after the fork but before the process is recorded,
    or in the middle of a cleanup (a second Ctrl-C), would leak a worker,
    descriptors or the ipc folder. Only the main thread runs Python's
    signal handlers; elsewhere the block runs as is.

    SIGINT is also blocked in the calling thread, so that a child forked
    in the block starts with it blocked until the worker ignores it (see
    `pescador._background.worker`). A KeyboardInterrupt raised at the end
    of the block is the user's, and propagates.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    try:
        previous = signal.signal(signal.SIGINT,
                                 lambda signum, frame: received.append(1))
    except (ValueError, OSError):  # e.g. the interpreter is finalizing
        yield
        return
    if previous is None:  # a handler set outside Python
        previous = signal.SIG_DFL
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)
