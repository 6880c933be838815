"""labkit: a course kit on neural-network compression — pruning, quantization, distillation.

Submodules (import what you need): ``data``, ``nn``, ``models``, ``train``, ``metrics``, ``bench``.
"""

__version__ = "0.1.0"

# Importing the codec registers its byte formats ("kmeans", "deep_compression", "zip_fp32") with
# labkit.metrics.size_bytes; metrics itself never imports the layers above it.
from . import codec  # noqa: E402,F401
