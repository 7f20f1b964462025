"""The consumer's side of one worker process: start, stop, reap, close.

A `WorkerProcess` is created (and recorded by its `Session`) before it
starts, so that whatever interrupts the start, cleanup finds it. The
process is forked (or spawned) before the consumer creates the ZeroMQ
context of the iteration: forking while ZeroMQ's threads run is what
Python 3.12+ warns about ("use of fork() may lead to deadlocks"). Since
the socket does not exist yet at the fork, the consumer sends its address
through a pipe once bound (`send_address`).
"""

import contextlib
import logging
import signal
import time

from ..exceptions import PescadorError
from . import worker
from .interrupts import ignored_sigint

_KILL_WAIT = 5.0  # seconds to reap a worker after SIGKILL
_logger = logging.getLogger("pescador.zmq_stream")


def exit_description(code):
    """``-9 (SIGKILL)`` for a signal, else the code."""
    if code < 0:
        try:
            return "{} ({})".format(code, signal.Signals(-code).name)
        except ValueError:
            pass
    return str(code)


class WorkerProcess:
    """One worker process and the pipe that hands it the address.

    Parameters
    ----------
    mp_context : multiprocessing context
    job : pescador._background.worker.Job
        Its ``address_reader`` is set here.
    """

    def __init__(self, mp_context, job):
        reader, self.address_writer = mp_context.Pipe(duplex=False)
        job.address_reader = reader
        self.process = mp_context.Process(
            target=worker.run, args=(job,), daemon=True,
            name="pescador-zmq-worker-{}".format(job.index))
        self.job = job
        self.start_method = mp_context.get_start_method()
        self.stopped = False

    @property
    def pid(self):
        return self.process.pid

    @property
    def started(self):
        return self.process.pid is not None

    def start(self):
        """Start the process (call with SIGINT deferred)."""
        # A forked child inherits the blocked SIGINT (see deferred_sigint);
        # a spawned one, or the fork server, does not, but keeps SIG_IGN.
        ignore = ignored_sigint() if self.start_method != "fork" \
            else contextlib.nullcontext()
        try:
            with ignore:
                self.process.start()
        except Exception as exc:
            raise PescadorError("ZMQStreamer could not start its worker "
                                "process: {}".format(exc)) from exc
        finally:
            # The worker holds its own copy of the reading end now.
            self.job.address_reader.close()
        _logger.debug("worker %d started: pid %s (%s)", self.job.index,
                      self.process.pid, self.start_method)

    def send_address(self, address):
        self.address_writer.send_bytes(address.encode())

    def check_alive(self):
        """Raise `PescadorError` if the worker has exited."""
        code = self.process.exitcode
        if code is not None:
            raise PescadorError(
                "The ZMQStreamer worker process (pid {}) exited with code "
                "{} before ending its stream".format(
                    self.process.pid, exit_description(code)))

    def request_stop(self):
        """Ask the worker to stop (SIGTERM: its ``finally`` blocks run)."""
        if self.started and self.process.exitcode is None:
            _logger.debug("worker pid %s: asked to stop (SIGTERM)",
                          self.process.pid)
            try:
                self.process.terminate()
            except OSError:  # already gone
                pass

    def reap(self, deadline):
        """Wait for the worker until ``deadline`` (a ``time.monotonic()``,
        or None to wait), then kill it, and reap it."""
        if self.started:
            if deadline is None:
                self.process.join()
            else:
                self.process.join(max(0.0, deadline - time.monotonic()))
            if self.process.exitcode is None:
                _logger.debug("worker pid %s: still running at the deadline,"
                              " killed (SIGKILL)", self.process.pid)
                self.process.kill()
                self.process.join(_KILL_WAIT)
            _logger.debug("worker pid %s exited with %s", self.process.pid,
                          exit_description(self.process.exitcode))

    def close(self):
        """Release the pipe and the process's sentinel (once reaped)."""
        if self.stopped:
            return
        self.stopped = True
        self.address_writer.close()
        if not self.job.address_reader.closed:
            self.job.address_reader.close()
        if not self.started or self.process.exitcode is not None:
            self.process.close()
