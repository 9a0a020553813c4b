"""TensorFlow set-up for reproducible CPU runs (see ../shared/NOTES-notebooks.md).

Call :func:`setup` before any TensorFlow op: it fixes the thread counts, seeds Python,
NumPy and TensorFlow through ``keras.utils.set_random_seed`` and turns on op determinism,
so the same seed on the same machine gives identical numbers.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Threads for TensorFlow and LiteRT: the 2-core target machine.
THREADS = int(os.environ.get("LUNGCT_THREADS", "2"))


def setup(seed: int, threads: int = THREADS) -> None:
    """Seed everything and make TensorFlow deterministic.

    Args:
        seed: the one seed.
        threads: intra- and inter-op threads (fixed: a different count changes numbers).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"setup: seed must be a non-negative int, got {seed!r}")
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already initialized: the counts set first stay in force
    tf.get_logger().setLevel("ERROR")  # retracing notices are noise in notebooks
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
