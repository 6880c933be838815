"""The peers: what a user would otherwise pick for each of labkit's kernels, built the same way they would.

numpy (float32 BLAS) and scipy.sparse are always there; PyTorch is optional (extra ``peers``), so
every PyTorch peer is built from a ``torch`` module that may be ``None`` (:func:`torch_or_none`), and
the cases report a missing peer as skipped instead of failing.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["torch_or_none", "torch_dynamic_linear", "torch_csr", "torch_int4"]


def torch_or_none():
    """The ``torch`` module, or ``None`` when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_dynamic_linear(torch, W, bias, engine: str = "fbgemm"):
    """PyTorch's dynamic-quantized Linear (int8 weights per channel) holding ``W`` (out, in) and ``bias``.

    ``engine`` is PyTorch's quantized engine that packs the weights and runs the product: "fbgemm"
    (JIT-generated AVX2 / AVX-512 / AVX-512 VNNI kernels; FBGEMM has no AMX code path) or "onednn"
    (oneDNN's matmul, which uses AMX tiles where the CPU has them). The engine is set back to
    "fbgemm" afterwards.
    """
    lin = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W))
        lin.bias.copy_(torch.from_numpy(bias))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = engine
        try:
            q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)
        finally:
            torch.backends.quantized.engine = "fbgemm"
    return q


def torch_csr(torch, c):
    """A ``torch.sparse_csr_tensor`` with the same rows, columns and values as labkit's CSR matrix ``c``."""
    with warnings.catch_warnings():  # "beta" and "invariant checks disabled" notices
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(
            torch.from_numpy(c.indptr.astype(np.int64)),
            torch.from_numpy(c.indices.astype(np.int64)),
            torch.from_numpy(c.data.copy()),
            size=c.shape,
        )


def torch_int4(torch, q, scale, zp, group_size):
    """PyTorch's CPU int4 weight-only GEMM (tinygemm layout, private aten ops used by torchao), or a reason.

    It computes ``(q - 8) · scale + zero`` per group, so labkit's ``scale · (q - z)`` is passed as
    ``zero = scale · (8 - z)``.
    """
    try:
        packed = torch._convert_weight_to_int4pack_for_cpu(torch.from_numpy(q.astype(np.int32)), 1)
        zero = scale * (8.0 - zp.astype(np.float32))
        sz = torch.stack([torch.from_numpy(scale.T.copy()), torch.from_numpy(zero.T.copy())], dim=2).contiguous()
        fn = torch._weight_int4pack_mm_for_cpu
        fn(torch.zeros((1, q.shape[1]), dtype=torch.float32), packed, group_size, sz)  # raises if unsupported
        return (lambda x: fn(x, packed, group_size, sz)), None
    except (AttributeError, RuntimeError, TypeError) as e:  # op missing, or a size it does not support
        return None, f"torch int4 op unavailable here: {str(e).splitlines()[0][:80]}"
