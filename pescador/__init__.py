"""pescador: stream data into machine-learning models.

Wrap generator functions in `Streamer`s, mix many of them with a mux
(`StochasticMux`, `ShuffledMux`, `RoundRobinMux`, `ChainMux`), reshape the
stream with maps (`buffer_stream`, `tuples`, `keras_tuples`, `cache`), and run
the whole pipeline in a background process with `ZMQStreamer`.
"""

from . import core, exceptions, util
from .core import *  # noqa: F401,F403
from .exceptions import *  # noqa: F401,F403
from .util import *  # noqa: F401,F403
from .version import version as __version__

# The later layers are optional while they are being built: import what
# exists so that `import pescador` always works.
import importlib.util as _importlib_util

for _name in ("maps", "mux", "zmq_stream"):
    if _importlib_util.find_spec(__name__ + "." + _name) is not None:
        _module = __import__(__name__ + "." + _name, fromlist=["*"])
        globals()[_name] = _module
        globals().update({k: getattr(_module, k) for k in _module.__all__})
