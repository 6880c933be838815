"""labkit: a course kit on neural-network compression — pruning, quantization, distillation.

Submodules (import what you need): ``data``, ``nn``, ``models``, ``train``, ``metrics``, ``bench``.
"""

__version__ = "0.1.0"
