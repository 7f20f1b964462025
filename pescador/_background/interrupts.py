"""Keep Ctrl-C out of the consumer's start and cleanup steps."""

import contextlib
import os
import signal
import threading
import time

_REDELIVERY_DELAY = 0.01  # seconds
_redelivery = None  # the thread delivering a deferred SIGINT


@contextlib.contextmanager
def deferred_sigint():
    """Run the block without SIGINT, then deliver one that came meanwhile.

    Starting a worker and cleaning up after it must run to their end: a
    KeyboardInterrupt after the fork but before the process is recorded,
    or in the middle of a cleanup (a second Ctrl-C), would leak a worker,
    descriptors or the ipc folder. Only the main thread runs Python's
    signal handlers; elsewhere the block runs as is.

    A SIGINT that came during the block is sent again a moment after it
    (`_REDELIVERY_DELAY`), from a thread, rather than raised at its end:
    the block often runs inside a finalizer (a loop left with ``break``
    drops its generator), where an exception is printed as "Exception
    ignored" and lost. A moment later, the KeyboardInterrupt lands in the
    user's code, as if Ctrl-C had been pressed then.

    SIGINT is also blocked in the calling thread, so that a child forked
    in the block starts with it blocked until the worker ignores it (see
    `pescador._background.worker`).
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
            _redeliver()


@contextlib.contextmanager
def ignored_sigint():
    """Run the block (a process start) with SIGINT ignored.

    A child keeps an ignored SIGINT through fork and exec, and Python
    then installs no KeyboardInterrupt handler at its start: a spawned
    worker, or the fork server that multiprocessing starts once (whose
    children restore its handlers), is not interrupted by a Ctrl-C sent
    to the process group before the worker ignores SIGINT itself. Used
    inside `deferred_sigint`, whose blocked SIGINT stays pending (Linux
    never discards a blocked signal) and is recorded afterwards; but a
    SIGINT that the kernel hands to another thread meanwhile is ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT,
                      signal.SIG_DFL if previous is None else previous)


def _redeliver():
    global _redelivery
    _redelivery = threading.Thread(target=_send_sigint, daemon=True,
                                   name="pescador-sigint")
    _redelivery.start()


def _send_sigint():
    time.sleep(_REDELIVERY_DELAY)
    os.kill(os.getpid(), signal.SIGINT)


def await_redelivery():
    """Wait for a deferred SIGINT to be sent (call before forking: Python
    3.12+ warns about forking while threads run)."""
    if _redelivery is not None:
        _redelivery.join()
