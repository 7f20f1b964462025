"""Logging: silent by default, debug records per activation (never per item),
pruning logged."""

import logging

import pescador

MUX_LOGGER = "pescador.mux"


def counted(calls, value, n):
    """``n`` copies of ``value``, counting the activations in ``calls``."""
    calls.append(value)
    yield from [value] * n


def test_the_package_logger_has_a_null_handler():
    handlers = logging.getLogger("pescador").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_normal_run_emits_nothing_at_warning(caplog):
    caplog.set_level(logging.WARNING)
    streams = [pescador.Streamer(counted, [], i, 5) for i in range(4)]
    mux = pescador.StochasticMux(streams + [pescador.Streamer([])],
                                 n_active=2, rate=3, random_state=0)
    items = list(mux(max_iter=1000))
    assert len(items) == 1000
    assert list(pescador.RoundRobinMux(['ab', 'c'])) == ['a', 'c', 'b']
    assert caplog.records == []


def test_pruning_an_empty_streamer_is_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="pescador")
    mux = pescador.StochasticMux(['ab', '', 'cd'], n_active=2, rate=1,
                                 random_state=0)
    assert len(list(mux(max_iter=20))) == 20
    pruned = [r for r in caplog.records if "pruned" in r.getMessage()]
    assert len(pruned) == 1
    assert pruned[0].name == MUX_LOGGER
    assert pruned[0].levelno == logging.DEBUG
    assert "streamers[1]" in pruned[0].getMessage()


def test_shuffled_mux_logs_dropping_an_empty_streamer(caplog):
    caplog.set_level(logging.DEBUG, logger="pescador")
    mux = pescador.ShuffledMux(['ab', '', 'cd'], random_state=0)
    items = list(mux(max_iter=40))
    assert len(items) == 40 and set(items) == set('abcd')
    pruned = [r.getMessage() for r in caplog.records
              if "pruned" in r.getMessage()]
    assert len(pruned) == 1 and "streamers[1]" in pruned[0]


def test_records_follow_activations_not_items(caplog):
    caplog.set_level(logging.DEBUG, logger="pescador")
    calls = []
    # Budgets of about 64 items: about 160 activations in 10,000 items.
    streams = [pescador.Streamer(counted, calls, i, 10**6) for i in range(8)]
    mux = pescador.StochasticMux(streams, n_active=3, rate=63,
                                 random_state=0)
    n_items = 10_000
    assert len(list(mux(max_iter=n_items))) == n_items
    activations = len(calls)
    assert 50 < activations < 500
    records = [r for r in caplog.records if r.name == MUX_LOGGER]
    opened = [r for r in records if "activated" in r.getMessage()]
    # One record per slot activation, plus the mux's start and close.
    assert len(opened) == activations
    assert len(records) == activations + 2
    assert all(r.levelno == logging.DEBUG for r in records)


def test_disabled_debug_emits_no_record(caplog):
    caplog.set_level(logging.INFO, logger="pescador")
    mux = pescador.StochasticMux(['ab', '', 'cd'], n_active=2, rate=1,
                                 random_state=0)
    assert len(list(mux(max_iter=100))) == 100
    assert caplog.records == []


ZMQ_LOGGER = "pescador.zmq_stream"


def test_workers_log_their_start_stop_and_exit_code(caplog):
    import numpy as np
    caplog.set_level(logging.DEBUG, logger="pescador")
    items = [{"x": np.arange(3) + i} for i in range(6)]
    mux = pescador.ChainMux([pescador.Streamer(items[:3]),
                             pescador.Streamer(items[3:])])
    stream = pescador.ZMQStreamer(mux, n_workers=2)
    assert len(list(stream)) == 6
    messages = [r.getMessage() for r in caplog.records
                if r.name == ZMQ_LOGGER]
    started = [m for m in messages if " started: pid " in m]
    exited = [m for m in messages if m.endswith("exited with 0")]
    assert len(started) == 2 and len(exited) == 2, messages
    assert all(r.levelno == logging.DEBUG for r in caplog.records
               if r.name == ZMQ_LOGGER)


def test_the_shared_memory_fallback_is_logged_as_a_warning(caplog,
                                                           monkeypatch):
    import warnings

    import numpy as np
    monkeypatch.setenv("PESCADOR_SHM_BYTES", "1000")
    caplog.set_level(logging.WARNING, logger="pescador")
    stream = pescador.ZMQStreamer(
        pescador.Streamer([{"x": np.ones(1 << 16)}] * 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(list(stream)) == 2
    fallbacks = [r for r in caplog.records if r.name == ZMQ_LOGGER
                 and "over the socket" in r.getMessage()]
    assert len(fallbacks) == 1 and fallbacks[0].levelno == logging.WARNING
