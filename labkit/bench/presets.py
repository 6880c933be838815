"""The sizes of a run: ``FULL`` (the default, minutes) and ``QUICK`` (``--quick``, about a minute).

Keys: ``n`` (square matrix side), ``batches`` (int8 GEMV/GEMM batch sizes), ``sparsities`` (CSR SpMV),
``spmm_batch``, ``quant_n`` (floats quantized), ``topk_n`` and ``topk_arrays`` (weights in the top-k
case), ``mlp`` (layer sizes of the pruned MLP), ``repeat`` (timed calls per contender), ``rounds``
(alternating blocks), ``settle`` (seconds of pause before each block), ``bw_bytes`` (size of the
bandwidth probe), ``lowbit_n`` (matrix sides of the int4 and 2:4 GEMVs), ``int4_groups`` (group sizes of
the int4 GEMV), ``int4_batches`` (small batches of the int4 GEMM), ``small_layers`` ((out, in) shapes
timed one call at a time) and, optionally, ``gemm_n`` (side of the GEMM that measures the compute
roof; default 2048 full, 1024 quick).
"""

from __future__ import annotations

__all__ = ["FULL", "QUICK"]

FULL = {
    "n": 4096,
    "batches": (1, 2, 4, 8, 16, 64),
    "sparsities": (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95),
    "spmm_batch": 64,
    "quant_n": 16 * 2**20,
    "topk_n": 10_000_000,
    "topk_arrays": 5,
    "mlp": (784, 4096, 4096, 10),
    "repeat": 30,
    "rounds": 3,
    "settle": 0.15,
    "bw_bytes": 512 * 2**20,
    "lowbit_n": (4096, 8192),
    "int4_groups": (32, 64, 128),
    "int4_batches": (2, 4, 8, 16),
    "small_layers": ((256, 256), (1024, 256), (256, 1024)),
}
QUICK = {
    "n": 2048,
    "batches": (1, 4, 64),
    "sparsities": (0.5, 0.8, 0.9, 0.95),
    "spmm_batch": 16,
    "quant_n": 4 * 2**20,
    "topk_n": 2_000_000,
    "topk_arrays": 5,
    "mlp": (784, 1024, 1024, 10),
    "repeat": 7,
    "rounds": 2,
    "settle": 0.1,
    "bw_bytes": 128 * 2**20,
    "lowbit_n": (2048,),
    "int4_groups": (128,),
    "int4_batches": (4,),
    "small_layers": ((256, 1024),),
}
