"""pescador: stream data into machine-learning models.

Wrap generator functions in `Streamer`s, mix many of them with a mux
(`StochasticMux`, `ShuffledMux`, `RoundRobinMux`, `ChainMux`), reshape the
stream with maps (`buffer_stream`, `tuples`, `keras_tuples`, `cache`), and run
the whole pipeline in a background process with `ZMQStreamer`. `shard`
splits a stream into disjoint shares for parallel workers.

The package logs to the ``"pescador"`` logger (children ``pescador.mux``,
``pescador.zmq_stream``...), silent unless the application configures
logging: see the Troubleshooting page.
"""

import logging as _logging

from . import core, exceptions, maps, mux, split, state, util, zmq_stream
from .core import *  # noqa: F401,F403
from .exceptions import *  # noqa: F401,F403
from .maps import *  # noqa: F401,F403
from .mux import *  # noqa: F401,F403
from .split import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .util import *  # noqa: F401,F403
from .zmq_stream import *  # noqa: F401,F403
from .version import version as __version__

# Silent by default, as a library should be: records reach the
# application's handlers only if it configures logging.
_logging.getLogger("pescador").addHandler(_logging.NullHandler())
