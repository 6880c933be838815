"""Timed compression kernels: each a readable numpy reference plus a fast numba version.

=========================  =====================================================================
module                     kernels
=========================  =====================================================================
``kernels.sparse``         :class:`CSR`, :func:`csr_from_dense`, :func:`csr_from_mask`,
                           :func:`compact_csr` (int8 values + scale, uint16 columns),
                           :func:`spmv`, :func:`spmm`
``kernels.int8``           :func:`gemv_int8`, :func:`gemm_int8` (int32 accumulation),
                           :func:`gemm_int8_requant` (fused fixed-point requantization),
                           :func:`gemm_int8_dequant` (fused dequantization to float32)
``kernels.quantize``       :func:`quantize_per_tensor`, :func:`quantize_per_channel`,
                           :func:`dequantize_per_tensor`, :func:`dequantize_per_channel`
``kernels.select``         :func:`global_topk_threshold`, :func:`global_magnitude_masks`
``kernels.int4``           :func:`gemv_int4` (group-wise int4 weights, two per byte, float32 x)
``kernels.w4a8``           :class:`Int4Panels`, :func:`int4_panels`, :func:`gemv_w4a8`,
                           :func:`gemm_w4a8` (int4 weights, x quantized to int8 per group: exact
                           integer group sums, bit-exact), :func:`quantize_activations`
``kernels.nm_sparse``      :class:`NM24`, :func:`nm24_compress`, :func:`gemv_nm24` (2:4 sparsity)
=========================  =====================================================================

Every fast kernel validates its inputs in Python (dtype, shape, contiguity, index ranges) and
raises ``TypeError``/``ValueError`` before the jitted core runs, so no core reads out of bounds.
Each has a ``*_reference`` twin in plain numpy: integer results agree bit for bit, float32 results
to float32 rounding (the W4A8 kernels bit for bit: their float32 operations have a fixed order).
The cores are compiled by numba on first use (a few seconds each) and cached on disk
(``cache=True``), so later processes start fast. They run on numba's thread pool: set its size with
``numba.set_num_threads`` (``labkit.bench`` does, and says so); calls too small to pay for waking
the pool run on the calling thread.

Code generation: importing ``labkit.kernels`` first sets two LLVM options that let the integer dot
products use full-width vector instructions (``vpdpwssd`` on 512-bit registers here); they change
no result. ``labkit.kernels._tuning`` explains them, when they are skipped, and how to turn them off
(``LABKIT_LLVM_TUNING=0``). Three inner loops are written directly in LLVM IR for CPUs with AVX-512
(``labkit.kernels._simd``: ``vpdpbusd`` for int4 × int8 and the int8 GEMM micro-kernel, ``vpermi2ps``
for 2:4); elsewhere the same kernels run portable loops. :func:`simd_paths` says which ran.

Threading layer: unless ``NUMBA_THREADING_LAYER`` is set, labkit asks numba for its OpenMP layer
with sleeping (not spinning) idle threads, and for ``workqueue`` where no OpenMP runtime is found.
It sets ``OMP_WAIT_POLICY=passive`` for the process unless the user chose a policy (OpenMP's
default spins waiting threads for a while, which starves the working ones when several processes
share a small machine: about 30 ms per parallel call was measured on the course's 2-core machine
under load). With OpenMP the calling thread takes a share of the work, so a parallel call wakes one
thread fewer than with ``workqueue``: on that machine a 4096 × 4096 int4 GEMV took 0.27 ms against
0.38 ms alone, and 0.54–0.69 ms against 0.69–0.82 ms with four such processes on the two cores.
Set ``NUMBA_THREADING_LAYER=workqueue`` to choose the other; ``workqueue`` does not support calling
parallel kernels from several Python threads at once (use processes, as pytest-xdist and the
grader do).
"""

import os as _os

import numba as _numba

if "NUMBA_THREADING_LAYER" not in _os.environ:
    # read by the OpenMP runtime when numba first loads it (at the first parallel call)
    _os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    _numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]  # tbb is not a labkit dependency
    _numba.config.THREADING_LAYER = "default"  # the first of the priority list that loads

# first: LLVM settings for full-width integer vectors, applied before any kernel below is defined
from . import _simd, _tuning
from .int4 import gemv_int4, gemv_int4_reference, unpack_int4_reference
from .int8 import (
    gemm_int8,
    gemm_int8_dequant,
    gemm_int8_dequant_reference,
    gemm_int8_reference,
    gemm_int8_requant,
    gemv_int8,
    max_accumulation_length,
    requantize_reference,
)
from .nm_sparse import NM24, gemv_nm24, gemv_nm24_reference, nm24_compress, nm24_decompress
from .quantize import (
    dequantize_per_channel,
    dequantize_per_tensor,
    dequantize_reference,
    quantize_per_channel,
    quantize_per_tensor,
    quantize_reference,
)
from .select import (
    global_magnitude_masks,
    global_magnitude_masks_reference,
    global_topk_threshold,
    global_topk_threshold_reference,
)
from .sparse import (
    CSR,
    compact_csr,
    csr_from_dense,
    csr_from_dense_reference,
    csr_from_mask,
    spmm,
    spmm_reference,
    spmv,
    spmv_reference,
)
from .w4a8 import (
    Int4Panels,
    gemm_w4a8,
    gemv_w4a8,
    gemv_w4a8_reference,
    int4_panels,
    quantize_activations,
    quantize_activations_reference,
)


def llvm_tuning() -> str:
    """What ``labkit.kernels._tuning`` did in this process: "on: ..." or "off (reason)"."""
    return _tuning.STATE


def simd_paths() -> dict[str, str]:
    """Which inner loop each kernel with a hand-written AVX-512 path runs in this process.

    Keys are kernels, values either the instruction path or "portable loop" (another CPU, or numba
    not compiling for this one: see :func:`llvm_tuning`). Both paths give the same integers (the
    2:4 GEMV: the same sums up to float32 rounding); ``labkit.kernels._simd`` explains them.
    """
    vnni, avx512 = _simd.AVX512_VNNI, _simd.AVX512
    portable = "portable loop"
    return {
        "gemv_w4a8 / gemm_w4a8": "AVX-512 VNNI (vpdpbusd)" if vnni else portable,
        "gemm_int8 and its fused forms, 4 rows or more": "AVX-512 VNNI micro-kernel (vpdpbusd)" if vnni else portable,
        "gemv_nm24": "AVX-512 (vpermi2ps)" if avx512 else portable,
    }


__all__ = [
    "llvm_tuning",
    "simd_paths",
    "CSR",
    "compact_csr",
    "csr_from_dense",
    "csr_from_dense_reference",
    "csr_from_mask",
    "dequantize_per_channel",
    "dequantize_per_tensor",
    "dequantize_reference",
    "gemm_int8",
    "gemm_int8_dequant",
    "gemm_int8_dequant_reference",
    "gemm_int8_reference",
    "gemm_int8_requant",
    "gemv_int8",
    "global_magnitude_masks",
    "global_magnitude_masks_reference",
    "global_topk_threshold",
    "global_topk_threshold_reference",
    "max_accumulation_length",
    "quantize_per_channel",
    "quantize_per_tensor",
    "quantize_reference",
    "requantize_reference",
    "spmm",
    "spmm_reference",
    "spmv",
    "spmv_reference",
    # lab 09: int4 groups and 2:4 sparsity
    "gemv_int4",
    "gemv_int4_reference",
    "unpack_int4_reference",
    "NM24",
    "nm24_compress",
    "nm24_decompress",
    "gemv_nm24",
    "gemv_nm24_reference",
    # int4 weights x int8 activations, for decoding (lab 12)
    "Int4Panels",
    "int4_panels",
    "gemv_w4a8",
    "gemm_w4a8",
    "gemv_w4a8_reference",
    "quantize_activations",
    "quantize_activations_reference",
]
