"""pytest configuration for the whole checkout.

The adapters' modules import their framework at the top, so collecting
their doctests without the framework would be an error rather than a skip.
"""

import importlib.util
import os

# Keras reads its backend once, when first imported.
os.environ.setdefault("KERAS_BACKEND", "torch")

collect_ignore = [
    os.path.join("pescador", "adapters", module)
    for module, framework in [("_torch.py", "torch"),
                              ("_keras.py", "keras"),
                              ("_tf.py", "tensorflow"),
                              ("_ray.py", "ray")]
    if importlib.util.find_spec(framework) is None
]
