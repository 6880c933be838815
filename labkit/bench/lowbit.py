"""The low-bit cases: int4 (W4A8) GEMV and small-batch GEMM, 2:4 sparse GEMV, and per-call overhead.

``case_int4`` times :func:`labkit.kernels.gemv_w4a8` for each group size against dense float32,
labkit's int8 GEMV (both with float32 in and out, like the int4 kernel), labkit's float-activation
:func:`labkit.kernels.gemv_int4` and PyTorch's CPU int4 kernel, then :func:`labkit.kernels.gemm_w4a8`
at small batches. ``case_nm24`` times :func:`labkit.kernels.gemv_nm24` against dense float32,
labkit's CSR at the same 50 % and scipy. ``case_small_layers`` times one call on the small matrices
of a tiny language model (lab 12), where the fixed cost of a call (validation, numba's dispatch, the
thread pool) is what matters.

Bytes per call are the weights in their storage format (codes, scales and zero points; values and
positions) plus the input and output vectors; operations are 2 per weight and row of the batch.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import kernels
from .cases import dynamic_linear_int8, pack_nibbles
from .peers import torch_int4
from .runner import Runner

__all__ = ["case_int4", "case_nm24", "case_small_layers", "random_int4"]

DENSE, INT8 = "numpy f32 GEMV", "labkit int8 GEMV (float in/out)"


def random_int4(rng, n_rows: int, n_cols: int, group_size: int):
    """Random codes (uint8 0..15), scales and zero points of an ``n_rows × n_cols`` group-wise int4 matrix."""
    G = -(-n_cols // min(group_size, n_cols))
    q = rng.integers(0, 16, (n_rows, n_cols), dtype=np.uint8)
    scale = rng.uniform(0.001, 0.01, (n_rows, G)).astype(np.float32)
    zp = rng.integers(0, 16, (n_rows, G), dtype=np.uint8)
    return q, scale, zp


def _dense_and_int8(rng, n_rows, n_cols):
    W = (rng.standard_normal((n_rows, n_cols), dtype=np.float32) * 0.05).astype(np.float32)
    w_scale = (np.abs(W).max(axis=1) / 127).astype(np.float32)
    Wq8 = kernels.quantize_per_channel(W, w_scale, np.zeros(n_rows, np.int64), axis=0)
    return W, Wq8, w_scale


def _torch_call(torch, fn, X):
    tx = torch.from_numpy(X)

    def run():
        with torch.inference_mode():
            return fn(tx)

    return run


def case_int4(r: Runner, n: int, groups, batches, torch, rng):
    """W4A8 GEMV (n × n) for each group size, then W4A8 GEMM at each small batch (largest group)."""
    W, Wq8, w_scale = _dense_and_int8(rng, n, n)
    zeros = np.zeros(n, np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    vec_bytes = 8 * n  # x read, y written (float32)
    for g in groups:
        q, scale, zp = random_int4(rng, n, n, g)
        panels = kernels.int4_panels(q, scale, zp, g)
        packed = pack_nibbles(q)
        fns = {
            "labkit": partial(kernels.gemv_w4a8, panels, x),
            DENSE: partial(np.dot, W, x),
            INT8: partial(dynamic_linear_int8, x.reshape(1, -1), Wq8, w_scale, zeros),
            "float x": partial(kernels.gemv_int4, packed, scale, zp, x, g),
        }
        nbytes = {
            "labkit": panels.nbytes + vec_bytes,
            DENSE: W.nbytes + vec_bytes,
            INT8: Wq8.nbytes + vec_bytes,
            "float x": packed.nbytes + scale.nbytes + zp.nbytes + vec_bytes,
        }
        tpeer, missing = "torch _weight_int4pack_mm_for_cpu", "torch not installed"
        note = f"int4 weights {panels.nbytes / W.nbytes:.3f}x the bytes of float32; x quantized to int8 per group"
        if torch is not None:
            tfn, missing = torch_int4(torch, q, scale, zp, g)
            if tfn is not None:
                fns["torch"] = _torch_call(torch, tfn, x.reshape(1, -1))
                y_t = fns["torch"]().numpy()[0].astype(np.float64)
                y = kernels.gemv_w4a8(panels, x).astype(np.float64)
                note += f"; max |labkit - torch| / max |torch| = {np.abs(y - y_t).max() / np.abs(y_t).max():.1e}"
        t = r.time_together(fns, nbytes=nbytes, flops={k: 2 * n * n for k in fns})
        peers = [(DENSE, t[DENSE]), (INT8, t[INT8]), ("labkit gemv_int4 (float32 x)", t["float x"])]
        peers.append((tpeer, t["torch"]) if "torch" in t else (tpeer, None, missing))
        r.add(f"int4 GEMV g={g}", f"{n}x{n}", ("gemv_w4a8 (int4 W, int8 x per group)", t["labkit"]), peers, note=note)
    g = max(groups)
    q, scale, zp = random_int4(rng, n, n, g)
    panels = kernels.int4_panels(q, scale, zp, g)
    tfn = torch_int4(torch, q, scale, zp, g)[0] if torch is not None else None
    for b in batches:
        X = rng.standard_normal((b, n), dtype=np.float32)
        fns = {
            "labkit": partial(kernels.gemm_w4a8, panels, X),
            "numpy": partial(np.matmul, X, W.T),
            INT8: partial(dynamic_linear_int8, X, Wq8, w_scale, zeros),
        }
        if tfn is not None:
            fns["torch"] = _torch_call(torch, tfn, X)
        vec = 8 * b * n
        t = r.time_together(
            fns,
            nbytes={"labkit": panels.nbytes + vec, "numpy": W.nbytes + vec, INT8: Wq8.nbytes + vec},
            flops={k: 2 * b * n * n for k in fns},
        )
        peers = [("numpy f32 GEMM", t["numpy"]), ("labkit int8 GEMM (float in/out)", t[INT8])]
        tp = "torch _weight_int4pack_mm_for_cpu"
        peers.append((tp, t["torch"]) if "torch" in t else (tp, None, "torch not installed or op unavailable"))
        r.add(f"int4 GEMM b={b} g={g}", f"{n}x{n}", ("gemm_w4a8 (codes unpacked once per batch)", t["labkit"]), peers)


def case_nm24(r: Runner, n: int, torch, rng):
    """2:4 sparse GEMV (n × n, the 2 largest |w| of every 4 kept) against dense, CSR at the same 50 %, int8."""
    import scipy.sparse as sp

    W, Wq8, w_scale = _dense_and_int8(rng, n, n)
    x = rng.standard_normal(n, dtype=np.float32)
    g4 = np.abs(W).reshape(n, -1, 4)
    keep = np.zeros(g4.shape, bool)
    np.put_along_axis(keep, np.argsort(-g4, axis=2, kind="stable")[:, :, :2], True, axis=2)
    keep = keep.reshape(n, n)
    A = np.where(keep, W, 0).astype(np.float32)
    m = kernels.nm24_compress(A, keep)
    c = kernels.csr_from_dense(A)
    S = sp.csr_matrix((c.data, c.indices, c.indptr), shape=c.shape)
    fns = {
        "labkit": partial(kernels.gemv_nm24, m, x),
        DENSE: partial(np.dot, W, x),
        "csr": partial(kernels.spmv, c, x),
        "scipy": partial(S.dot, x),
        INT8: partial(dynamic_linear_int8, x.reshape(1, -1), Wq8, w_scale, np.zeros(n, np.float32)),
    }
    vec = 8 * n
    t = r.time_together(
        fns,
        nbytes={"labkit": m.nbytes + vec, "csr": c.nbytes + vec, DENSE: W.nbytes + vec, INT8: Wq8.nbytes + vec},
        flops={"labkit": n * n, "csr": 2 * c.nnz, DENSE: 2 * n * n},
    )
    peers = [
        (DENSE, t[DENSE]),
        ("labkit CSR SpMV (same 50 %)", t["csr"]),
        ("scipy.sparse CSR", t["scipy"]),
        (INT8, t[INT8]),
        ("torch semi-structured 2:4", None, "torch not installed" if torch is None else "CUDA-only in PyTorch"),
    ]
    note = (f"matrix {m.nbytes / W.nbytes:.3f}x the bytes of dense float32 (CSR: {c.nbytes / W.nbytes:.3f}x): "
            f"byte bound {W.nbytes / m.nbytes:.2f}x dense")  # fmt: skip
    r.add("2:4 sparse GEMV", f"{n}x{n}", ("gemv_nm24 (float32 values + 2-bit positions)", t["labkit"]), peers,
          note=note)  # fmt: skip


def case_small_layers(r: Runner, shapes, rng):
    """One GEMV on each small (out, in) matrix: the per-call cost that decides a tiny model's tokens/s."""
    for n_out, n_in in shapes:
        W, Wq8, w_scale = _dense_and_int8(rng, n_out, n_in)
        x = rng.standard_normal(n_in, dtype=np.float32)
        xq = kernels.quantize_per_tensor(x, np.float32(np.abs(x).max() / 127), 0)
        q, scale, zp = random_int4(rng, n_out, n_in, 32)
        panels = kernels.int4_panels(q, scale, zp, 32)
        fns = {
            "labkit": partial(kernels.gemv_w4a8, panels, x),
            DENSE: partial(np.dot, W, x),
            INT8: partial(dynamic_linear_int8, x.reshape(1, -1), Wq8, w_scale, np.zeros(n_out, np.float32)),
            "int8 core": partial(kernels.gemv_int8, Wq8, xq),
        }
        vec = 4 * (n_in + n_out)
        t = r.time_together(
            fns,
            nbytes={"labkit": panels.nbytes + vec, DENSE: W.nbytes + vec, INT8: Wq8.nbytes + vec},
            repeat=max(r.repeat, 200),
        )
        peers = [(DENSE, t[DENSE]), (INT8, t[INT8]), ("labkit gemv_int8 (int8 in, int32 out)", t["int8 core"])]
        r.add("small-layer int4 GEMV g=32", f"{n_out}x{n_in}", ("gemv_w4a8, one call", t["labkit"]), peers,
              note="time per call, including input checks, quantizing x and numba's dispatch")  # fmt: skip
