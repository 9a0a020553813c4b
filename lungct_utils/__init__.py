"""lungct_utils: the package behind the notebooks (see the README's module table).

Importing it caps the instruction set that oneDNN and XLA may use at AVX2, unless the
environment already sets ``ONEDNN_MAX_CPU_ISA`` or ``XLA_FLAGS``. Both pick their kernels
by the CPU, so an AVX-512 machine rounds the paper head's training differently from an
AVX2 one and the early-stopping epoch can move; with the caps an AVX-512 machine gives the
AVX2 machine's figures for most runs (the README states the drift that remains). Both are
read when TensorFlow first runs an op, so this works after ``import tensorflow`` too.
"""

import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_max_isa=AVX2")
