"""The cases: one function per kernel family, each timing labkit's kernel and its peers on the same data.

``case_int8`` (int8 GEMV/GEMM, float in and out, against float32 BLAS and PyTorch's dynamic Linear),
``case_sparse`` (CSR SpMV over a range of sparsities, the sparse/dense crossover, SpMM),
``case_quantize`` (quantize and dequantize a large array), ``case_topk`` (global top-k threshold),
``case_prune`` (global magnitude pruning of an MLP); the low-bit kernels (int4, 2:4) are in
:mod:`.lowbit`. Each adds its rows to a :class:`.runner.Runner`; ``torch`` is the
module or ``None`` (its peers are then reported as skipped), ``rng`` a seeded numpy Generator.

Bytes per call (the basis of GB/s) are what the kernel must move at least once: the matrix in its
storage format plus the input and output vectors.
"""

from __future__ import annotations

import time
import warnings
from functools import partial

import numpy as np

from .. import kernels
from .peers import torch_csr, torch_dynamic_linear
from .runner import Runner
from .timing import timing_from_samples

__all__ = [
    "dynamic_linear_int8",
    "case_int8",
    "case_sparse",
    "case_quantize",
    "case_topk",
    "case_prune",
    "pack_nibbles",
    "warm_up",
]


def dynamic_linear_int8(X, Wq, w_scale, bias):
    """labkit's dynamic-quantized Linear: symmetric int8 per-tensor X (scale max|X|/127), int8 GEMM, float32 out.

    X float32 (batch, in); Wq int8 (out, in) with per-channel scales ``w_scale`` (out,); bias (out,).
    """
    amax = float(np.max(np.abs(X))) if X.size else 0.0
    s = np.float32(amax / 127 if amax > 0 else 1.0)
    Xq = kernels.quantize_per_tensor(X, s, 0)
    return kernels.gemm_int8_dequant(Xq, Wq, s * w_scale, bias)


def case_int8(r: Runner, n: int, batches, torch, rng):
    """Dynamic-quantized int8 Linear (n × n) at each batch size: labkit with float in/out, its int8 core, peers."""
    W = (rng.standard_normal((n, n), dtype=np.float32) * 0.05).astype(np.float32)
    bias = (rng.standard_normal(n, dtype=np.float32) * 0.1).astype(np.float32)
    w_scale = (np.abs(W).max(axis=1) / 127).astype(np.float32)
    Wq = kernels.quantize_per_channel(W, w_scale, np.zeros(n, np.int64), axis=0)
    tq = torch_dynamic_linear(torch, W, bias) if torch is not None else None
    has_onednn = torch is not None and "onednn" in torch.backends.quantized.supported_engines
    tq_onednn = torch_dynamic_linear(torch, W, bias, "onednn") if has_onednn else None
    for b in batches:
        X = rng.standard_normal((b, n), dtype=np.float32)
        Xq = kernels.quantize_per_tensor(X, np.float32(np.abs(X).max() / 127), 0)
        label = f"int8 GEMV b={b}" if b == 1 else f"int8 GEMM b={b}"
        mac = b * n * n
        nbytes = Wq.nbytes + Xq.nbytes + 4 * b * n
        fns = {"labkit": partial(dynamic_linear_int8, X, Wq, w_scale, bias), "core": partial(kernels.gemm_int8, Xq, Wq)}
        nbytes_of = {"labkit": nbytes, "core": nbytes}
        if b == 1:
            numpy_name = "numpy f32 GEMV"
            fns[numpy_name] = partial(np.dot, W, np.ascontiguousarray(X[0]))
            nbytes_of[numpy_name] = W.nbytes + 8 * n
        else:
            numpy_name = "numpy f32 GEMM"
            fns[numpy_name] = partial(np.matmul, X, W.T)
        for key, model in (("torch", tq), ("torch onednn", tq_onednn)):
            if model is not None:
                tx = torch.from_numpy(X)

                def run_torch(m=model, x=tx):
                    with torch.inference_mode():
                        return m(x)

                fns[key] = run_torch
        t = r.time_together(fns, nbytes=nbytes_of, flops={name: 2 * mac for name in fns})
        peers = [(numpy_name, t[numpy_name])]
        if tq is not None:
            peers.append(("torch fbgemm dynamic Linear", t["torch"]))
        else:
            peers.append(("torch fbgemm dynamic Linear", None, "torch not installed"))
        if tq_onednn is not None:
            peers.append(("torch onednn dynamic Linear (AMX where present)", t["torch onednn"]))
        lab, core = t["labkit"], t["core"]
        r.add(
            label,
            f"{n}x{n}",
            ("quantize x + int8 GEMM + dequant (float in/out)", lab),
            peers,
            note="same work as torch's dynamic Linear: quantize the input, int8 product, float32 output",
        )
        r.add(label + " core", f"{n}x{n}", ("gemm_int8 (int8 in, int32 out)", core), [p for p in peers if p[1]])


def case_sparse(r: Runner, n: int, sparsities, batch: int, torch, rng):
    """CSR SpMV (n × n) at each sparsity, compact CSR, SpMM at 90 %; returns the sparse/dense crossover per kernel.

    The crossover of a kernel is the lowest measured sparsity from which it beats dense float32 GEMV at
    every higher measured sparsity (``None``: not in the measured range).
    """
    import scipy.sparse as sp

    W = rng.standard_normal((n, n), dtype=np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    crossover = {"labkit CSR": [], "labkit compact CSR": [], "scipy.sparse CSR": [], "torch sparse CSR": []}
    for s in sparsities:
        A = W * (rng.random((n, n)) >= s)
        c = kernels.csr_from_dense(A)
        cc = kernels.compact_csr(c)
        S = sp.csr_matrix((c.data, c.indices, c.indptr), shape=c.shape)
        # dense GEMV joins every group: the crossover compares times taken in the same rounds
        fns = {
            "csr": partial(kernels.spmv, c, x),
            "compact": partial(kernels.spmv, cc, x),
            "scipy": partial(S.dot, x),
            "dense": partial(np.dot, W, x),
        }
        if torch is not None:
            T, tx = torch_csr(torch, c), torch.from_numpy(x)
            fns["torch"] = partial(torch.mv, T, tx)
        t = r.time_together(
            fns,
            nbytes={"csr": c.nbytes + 8 * n, "compact": cc.nbytes + 8 * n, "dense": W.nbytes + 8 * n},
            flops={"csr": 2 * c.nnz, "compact": 2 * c.nnz, "dense": 2 * n * n},
        )
        t_csr, t_cc, t_sp, dense = t["csr"], t["compact"], t["scipy"], t["dense"]
        t_t = t.get("torch")
        peers = [("scipy.sparse CSR", t_sp)]
        if t_t is not None:
            peers.append(("torch sparse CSR", t_t))
        else:
            peers.append(("torch sparse CSR", None, "torch not installed"))
        peers.append(("numpy dense f32 GEMV", dense))
        label = f"CSR SpMV {round(100 * s)}%"
        r.add(label, f"{n}x{n}, nnz {c.nnz}", ("spmv float32 CSR", t_csr), peers)
        r.add(
            label + " compact",
            f"{n}x{n}, {cc.nbytes / c.nbytes:.2f}x the bytes",
            ("spmv int8 values + uint16 columns", t_cc),
            [("labkit float32 CSR", t_csr), ("numpy dense f32 GEMV", dense)],
        )
        for key, t in (
            ("labkit CSR", t_csr),
            ("labkit compact CSR", t_cc),
            ("scipy.sparse CSR", t_sp),
            ("torch sparse CSR", t_t),
        ):
            if t is not None:
                crossover[key].append((s, t.median < dense.median))  # dense: this group's own timing
    # crossover: the lowest measured sparsity from which the sparse kernel beats dense at every higher one
    result = {}
    for key, pts in crossover.items():
        if not pts:
            continue
        lowest = None
        for s, faster in sorted(pts, reverse=True):
            if not faster:
                break
            lowest = s
        result[key] = lowest
    # SpMM at the last-but-one sparsity (90 % in the full run)
    s = 0.9
    A = W * (rng.random((n, n)) >= s)
    c = kernels.csr_from_dense(A)
    B = rng.standard_normal((n, batch), dtype=np.float32)
    S = sp.csr_matrix((c.data, c.indices, c.indptr), shape=c.shape)
    fns = {"labkit": partial(kernels.spmm, c, B), "scipy": partial(S.dot, B), "dense": partial(np.matmul, W, B)}
    if torch is not None:
        T, tB = torch_csr(torch, c), torch.from_numpy(B)
        fns["torch"] = partial(torch.mm, T, tB)
    t = r.time_together(fns, flops={"labkit": 2 * c.nnz * batch})
    peers = [("scipy.sparse CSR", t["scipy"])]
    if "torch" in t:
        peers.append(("torch sparse CSR", t["torch"]))
    peers.append(("numpy dense f32 GEMM", t["dense"]))
    r.add(f"CSR SpMM 90% b={batch}", f"{n}x{n}", ("spmm float32 CSR", t["labkit"]), peers)
    return result


def case_quantize(r: Runner, n: int, torch, rng):
    """Per-tensor int8 quantize and dequantize of ``n`` float32 values against numpy and PyTorch."""
    x = rng.standard_normal(n, dtype=np.float32)
    scale = np.float32(np.abs(x).max() / 127)
    fns = {
        "labkit": lambda: kernels.quantize_per_tensor(x, scale, 0),
        "numpy": lambda: np.clip(np.rint(x / scale), -128, 127).astype(np.int8),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notice for quantized tensors
        if torch is not None:
            tx = torch.from_numpy(x)
            fns["torch"] = lambda: torch.quantize_per_tensor(tx, float(scale), 0, torch.qint8)
            same = np.array_equal(fns["torch"]().int_repr().numpy(), kernels.quantize_per_tensor(x, scale, 0))
        else:
            same = None
        t = r.time_together(fns, nbytes={"labkit": 5 * n})
    lab = t["labkit"]
    peers = [("numpy clip(rint(x/s))", t["numpy"])]
    if torch is not None:
        peers.append(("torch.quantize_per_tensor", t["torch"]))
    else:
        peers.append(("torch.quantize_per_tensor", None, "torch not installed"))
    note = "bytes = 4 read + 1 written per element" + (
        "" if same is None else f"; identical codes to torch: {'yes' if same else 'no'}"
    )
    r.add("quantize int8", f"{n / 2**20:.0f}M floats", ("quantize_per_tensor", lab), peers, note=note)
    q = kernels.quantize_per_tensor(x, scale, 0)
    t = r.time_together(
        {
            "labkit": lambda: kernels.dequantize_per_tensor(q, scale, 0),
            "numpy": lambda: (q.astype(np.float32) - 0) * scale,
        },
        nbytes={"labkit": 5 * n},
    )
    r.add(
        "dequantize int8",
        f"{n / 2**20:.0f}M",
        ("dequantize_per_tensor", t["labkit"]),
        [("numpy (q - z) * s", t["numpy"])],
    )


def case_topk(r: Runner, n: int, n_arrays: int, torch, rng):
    """The global 90 % magnitude threshold over ``n`` weights in ``n_arrays`` arrays against np.partition, torch."""
    sizes = [n // n_arrays] * n_arrays
    arrays = [rng.standard_normal(m, dtype=np.float32) for m in sizes]
    k = int(0.9 * sum(sizes))
    lab = r.time(kernels.global_topk_threshold, arrays, k, nbytes=4 * sum(sizes))

    def np_partition():
        mags = np.abs(np.concatenate(arrays))
        return np.partition(mags, k - 1)[k - 1]

    assert np_partition() == kernels.global_topk_threshold(arrays, k)
    peers = [("np.partition", r.time(np_partition, repeat=max(3, r.repeat // 2)))]
    if torch is not None:
        tarr = [torch.from_numpy(a) for a in arrays]
        kth = lambda: torch.kthvalue(torch.cat(tarr).abs(), k).values  # noqa: E731
        peers.append(("torch.kthvalue", r.time(kth, repeat=max(3, r.repeat // 4))))
    else:
        peers.append(("torch.kthvalue", None, "torch not installed"))
    r.add(
        "global top-k threshold",
        f"{sum(sizes) / 1e6:.0f}M weights in {n_arrays} arrays, 90%",
        ("global_topk_threshold", lab),
        peers,
        note="peers include concatenating and |w| (what they need the data as)",
    )


def case_prune(r: Runner, sizes, torch, rng, repeat: int):
    """Global 90 % magnitude pruning of an MLP with layer ``sizes`` against torch's ``prune.global_unstructured``."""
    shapes = [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]
    base = [(rng.standard_normal(s, dtype=np.float32) / np.sqrt(s[1])).astype(np.float32) for s in shapes]
    k = int(0.9 * sum(w.size for w in base))
    samples = []
    for _ in range(repeat + 1):
        ws = [w.copy() for w in base]
        t0 = time.perf_counter()
        masks = kernels.global_magnitude_masks(ws, k)
        for w, m in zip(ws, masks):
            np.multiply(w, m, out=w)
        samples.append(time.perf_counter() - t0)
    lab = timing_from_samples(samples[1:])
    assert sum(int((~m).sum()) for m in masks) == k
    peers = []
    if torch is not None:
        from torch.nn.utils import prune

        tsamples = []
        for _ in range(max(2, repeat // 3)):
            layers = []
            for w in base:
                lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(w))
                layers.append(lin)
            t0 = time.perf_counter()
            prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=0.9)
            tsamples.append(time.perf_counter() - t0)
        peers.append(("torch prune.global_unstructured", timing_from_samples(tsamples)))
    else:
        peers.append(("torch prune.global_unstructured", None, "torch not installed"))
    r.add(
        "global 90% pruning MLP",
        "-".join(map(str, sizes)),
        ("global_magnitude_masks + w *= mask", lab),
        peers,
        note="fresh copies of the weights each repeat (untimed)",
    )


def pack_nibbles(q):
    """(n, k) uint8 values 0..15 → (n, ceil(k/2)) bytes, column 2j in the low nibble (labkit.quant.pack_int4)."""
    if q.shape[1] % 2:
        q = np.concatenate([q, np.zeros((q.shape[0], 1), np.uint8)], axis=1)
    return np.ascontiguousarray(q[:, 0::2] | (q[:, 1::2] << 4))


def warm_up():
    """Compile (or load from numba's cache) every kernel the run uses, outside any timing."""
    rng = np.random.default_rng(1)
    A = rng.integers(-128, 128, (8, 16), dtype=np.int8)
    kernels.gemm_int8(A, A)
    kernels.gemm_int8(A[:1].copy(), A)
    kernels.gemm_int8_dequant(A, A, np.float32(1), np.zeros(8, np.float32))
    kernels.gemm_int8_dequant(A[:1].copy(), A, np.float32(1), np.zeros(8, np.float32))
    W = rng.standard_normal((8, 16), dtype=np.float32)
    c = kernels.csr_from_dense(W)
    kernels.spmv(c, W[0].copy())
    kernels.spmv(kernels.compact_csr(c), W[0].copy())
    kernels.spmm(c, W.T.copy())
    kernels.quantize_per_channel(W, np.ones(8, np.float32), np.zeros(8, np.int64))
    q = kernels.quantize_per_tensor(W, 0.1, 0)
    kernels.dequantize_per_tensor(q, 0.1, 0)
    big = [rng.standard_normal(300_000, dtype=np.float32)]
    kernels.global_topk_threshold(big, 1000)
    kernels.global_magnitude_masks(big, 1000)
    q4 = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    kernels.gemv_int4(q4, np.ones((8, 1), np.float32), np.zeros((8, 1), np.uint8), W[0].copy(), 16)
    # both code paths of the new kernels: one thread (small) and the thread pool (above 2**18 operations)
    for n in (64, 1024):
        Wn = rng.standard_normal((n, n), dtype=np.float32)
        x = Wn[0].copy()
        A8 = rng.integers(-128, 128, (n, n), dtype=np.int8)
        kernels.gemm_int8(A8[:1].copy(), A8)
        kernels.gemm_int8(A8[:8].copy(), A8)
        panels = kernels.int4_panels(rng.integers(0, 16, (n, n), dtype=np.uint8), np.ones((n, n // 32), np.float32),
                                     np.zeros((n, n // 32), np.uint8), 32)  # fmt: skip
        kernels.gemv_w4a8(panels, x)
        kernels.gemm_w4a8(panels, Wn[:4].copy())
        kernels.gemv_nm24(kernels.nm24_compress(np.zeros((n, n), np.float32)), x)
