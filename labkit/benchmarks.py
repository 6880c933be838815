"""``python -m labkit bench``: labkit's kernels against what a user would otherwise pick, in one run.

For each kernel and size this prints labkit's median time, each peer's median measured in the same
process right after, the ratios (peer time / labkit time: > 1 means labkit is faster), the achieved
bandwidth and its fraction of the measured read bandwidth. Peers: numpy float32 BLAS, scipy.sparse
and, when PyTorch is importable (extra ``peers``), ``torch.ao`` dynamic-quantized Linear (fbgemm),
``torch.sparse_csr_tensor``, ``torch.quantize_per_tensor``, ``torch.kthvalue`` and
``torch.nn.utils.prune.global_unstructured``. Rows whose peer is missing say so.

Threads: every pool (OpenBLAS/OpenMP via threadpoolctl, numba, PyTorch) is limited to the same
count (``--threads``, default: the CPUs this process may use) for the whole run, and each timing runs
alone, so the pools never compete; the header says exactly what was set.

Bytes per call (the basis of GB/s) are what the kernel must move at least once: the matrix in its
storage format plus the input and output vectors.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from functools import partial

import numpy as np

from . import bench, kernels

TARGETS = {  # ratio = peer time / labkit time (the targets)
    ("int8 GEMV b=1", "torch fbgemm dynamic Linear"): 1.0,
    ("int8 GEMV b=1", "numpy f32 GEMV"): 5.0,
    ("int8 GEMM b=64", "numpy f32 GEMM"): 1.0,
    ("int8 GEMM b=64", "torch fbgemm dynamic Linear"): 0.5,
    ("CSR SpMV 90%", "scipy.sparse CSR"): 1.5,
    ("CSR SpMV 90%", "torch sparse CSR"): 1.0,
    ("quantize int8", "torch.quantize_per_tensor"): 1.0,
    ("global top-k threshold", "np.partition"): 3.0,
    ("global top-k threshold", "torch.kthvalue"): 10.0,
    ("global 90% pruning MLP", "torch prune.global_unstructured"): 50.0,
}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def machine_description() -> dict:
    """CPU model, cores, memory and library versions (for the results file)."""
    import numba
    import scipy

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["cpus_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    torch = _torch()
    info["torch"] = torch.__version__ if torch is not None else "not installed"
    if torch is not None:
        info["torch_quantized_engine"] = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "?"
    from threadpoolctl import threadpool_info

    info["blas"] = [
        f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture', '')})"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return info


class Runner:
    """Collects rows: one labkit timing and its peers' timings per (kernel, size)."""

    def __init__(self, repeat: int, read_gbps: float, verbose: bool = True, rounds: int = 3, settle: float = 0.15):
        self.repeat = repeat
        self.rounds = rounds
        self.settle = settle
        self.read_gbps = read_gbps
        self.rows = []
        self.verbose = verbose
        self._bw_at = {}

    def bw_at(self, nbytes: int) -> float:
        """Read bandwidth (GB/s) of an array of the kernel's size: caches can hold a 16-64 MiB operand."""
        key = max(4096, int(nbytes))
        if key not in self._bw_at:
            self._bw_at[key] = bench.bandwidth(key, repeat=7).read
        return self._bw_at[key]

    def time(self, fn, *args, nbytes=None, flops=None, repeat=None):
        return bench.timeit(fn, *args, repeat=repeat or self.repeat, warmup=2, nbytes=nbytes, flops=flops)

    def time_together(self, fns, nbytes=None, flops=None, repeat=None):
        """Interleaved timings of zero-argument calls (``bench.timeit_interleaved``): one per name."""
        repeat = repeat or self.repeat
        return bench.timeit_interleaved(fns, repeat=repeat, warmup=2, rounds=min(self.rounds, repeat),
                                        settle=self.settle, nbytes=nbytes, flops=flops)  # fmt: skip

    def add(self, kernel, size, labkit, peers, note=""):
        """labkit: (name, Timing); peers: list of (name, Timing or None (missing) with reason)."""
        name, t = labkit
        bw_same = self.bw_at(t.nbytes) if t.nbytes else None
        row = {
            "kernel": kernel,
            "size": size,
            "labkit": name,
            "labkit_ms": t.median * 1e3,
            "labkit_iqr_ms": t.iqr * 1e3,
            "gbps": t.gbps,
            "gops": t.gflops,
            "bw_fraction": (t.gbps / self.read_gbps) if t.gbps else None,
            "read_gbps_same_size": bw_same,
            "bw_fraction_same_size": (t.gbps / bw_same) if t.gbps else None,
            "peers": [],
            "note": note,
        }
        for peer in peers:
            pname, pt = peer[0], peer[1]
            if pt is None:
                row["peers"].append({"peer": pname, "ms": None, "ratio": None, "missing": peer[2]})
                continue
            ratio = pt.median / t.median
            target = TARGETS.get((kernel, pname))
            row["peers"].append(
                {
                    "peer": pname,
                    "ms": pt.median * 1e3,
                    "iqr_ms": pt.iqr * 1e3,
                    "ratio": ratio,
                    "target": target,
                    "met": None if target is None else bool(ratio >= target),
                }
            )
        self.rows.append(row)
        if self.verbose:
            print(format_row(row), flush=True)
        return row


def format_row(row) -> str:
    bw = (
        f"{row['gbps']:.1f} GB/s = {100 * row['bw_fraction']:.0f}% of main-memory read BW, "
        f"{100 * row['bw_fraction_same_size']:.0f}% of read BW at this size"
        if row["gbps"]
        else ""
    )
    ops = f", {row['gops']:.1f} GOP/s" if row.get("gops") else ""
    lines = [
        f"{row['kernel']} [{row['size']}] labkit {row['labkit']}: {row['labkit_ms']:.3f} ms "
        f"(IQR {row['labkit_iqr_ms']:.3f}) {bw}{ops}"
    ]
    for p in row["peers"]:
        if p["ms"] is None:
            lines.append(f"    vs {p['peer']}: skipped ({p['missing']})")
            continue
        tgt = "" if p.get("target") is None else f"  target >= {p['target']:g}: {'met' if p['met'] else 'MISSED'}"
        lines.append(f"    vs {p['peer']}: {p['ms']:.3f} ms -> ratio {p['ratio']:.2f}{tgt}")
    if row["note"]:
        lines.append(f"    note: {row['note']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# the cases
# ----------------------------------------------------------------------------------------------


def _torch_dynamic_linear(torch, W, bias):
    lin = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W))
        lin.bias.copy_(torch.from_numpy(bias))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = "fbgemm"
        q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)
    return q


def dynamic_linear_int8(X, Wq, w_scale, bias):
    """labkit's dynamic-quantized Linear: symmetric int8 per-tensor X (scale max|X|/127), int8 GEMM, float32 out.

    X float32 (batch, in); Wq int8 (out, in) with per-channel scales ``w_scale`` (out,); bias (out,).
    """
    amax = float(np.max(np.abs(X))) if X.size else 0.0
    s = np.float32(amax / 127 if amax > 0 else 1.0)
    Xq = kernels.quantize_per_tensor(X, s, 0)
    return kernels.gemm_int8_dequant(Xq, Wq, s * w_scale, bias)


def case_int8(r: Runner, n: int, batches, torch, rng):
    W = (rng.standard_normal((n, n), dtype=np.float32) * 0.05).astype(np.float32)
    bias = (rng.standard_normal(n, dtype=np.float32) * 0.1).astype(np.float32)
    w_scale = (np.abs(W).max(axis=1) / 127).astype(np.float32)
    Wq = kernels.quantize_per_channel(W, w_scale, np.zeros(n, np.int64), axis=0)
    tq = _torch_dynamic_linear(torch, W, bias) if torch is not None else None
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
        if tq is not None:
            tx = torch.from_numpy(X)

            def run_torch(m=tq, x=tx):
                with torch.inference_mode():
                    return m(x)

            fns["torch"] = run_torch
        t = r.time_together(fns, nbytes=nbytes_of, flops={name: 2 * mac for name in fns})
        peers = [(numpy_name, t[numpy_name])]
        if tq is not None:
            peers.append(("torch fbgemm dynamic Linear", t["torch"]))
        else:
            peers.append(("torch fbgemm dynamic Linear", None, "torch not installed"))
        lab, core = t["labkit"], t["core"]
        r.add(
            label,
            f"{n}x{n}",
            ("quantize x + int8 GEMM + dequant (float in/out)", lab),
            peers,
            note="same work as torch's dynamic Linear: quantize the input, int8 product, float32 output",
        )
        r.add(label + " core", f"{n}x{n}", ("gemm_int8 (int8 in, int32 out)", core), [p for p in peers if p[1]])


def _torch_csr(torch, c):
    with warnings.catch_warnings():  # "beta" and "invariant checks disabled" notices
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(
            torch.from_numpy(c.indptr.astype(np.int64)),
            torch.from_numpy(c.indices.astype(np.int64)),
            torch.from_numpy(c.data.copy()),
            size=c.shape,
        )


def case_sparse(r: Runner, n: int, sparsities, batch: int, torch, rng):
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
            T, tx = _torch_csr(torch, c), torch.from_numpy(x)
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
        T, tB = _torch_csr(torch, c), torch.from_numpy(B)
        fns["torch"] = partial(torch.mm, T, tB)
    t = r.time_together(fns, flops={"labkit": 2 * c.nnz * batch})
    peers = [("scipy.sparse CSR", t["scipy"])]
    if "torch" in t:
        peers.append(("torch sparse CSR", t["torch"]))
    peers.append(("numpy dense f32 GEMM", t["dense"]))
    r.add(f"CSR SpMM 90% b={batch}", f"{n}x{n}", ("spmm float32 CSR", t["labkit"]), peers)
    return result


def case_quantize(r: Runner, n: int, torch, rng):
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
    lab = bench.timing_from_samples(samples[1:])
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
        peers.append(("torch prune.global_unstructured", bench.timing_from_samples(tsamples)))
    else:
        peers.append(("torch prune.global_unstructured", None, "torch not installed"))
    r.add(
        "global 90% pruning MLP",
        "-".join(map(str, sizes)),
        ("global_magnitude_masks + w *= mask", lab),
        peers,
        note="fresh copies of the weights each repeat (untimed)",
    )


def _torch_int4(torch, q, scale, zp, group_size):
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


def _pack_nibbles(q):
    """(n, k) uint8 values 0..15 → (n, ceil(k/2)) bytes, column 2j in the low nibble (labkit.quant.pack_int4)."""
    if q.shape[1] % 2:
        q = np.concatenate([q, np.zeros((q.shape[0], 1), np.uint8)], axis=1)
    return np.ascontiguousarray(q[:, 0::2] | (q[:, 1::2] << 4))


def case_lowbit(r: Runner, n: int, groups, torch, rng):
    """Lab 09's kernels at batch 1: group-wise int4 GEMV and 2:4 sparse GEMV vs dense float32, int8, peers."""
    import scipy.sparse as sp

    W = (rng.standard_normal((n, n), dtype=np.float32) * 0.05).astype(np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    w_scale = (np.abs(W).max(axis=1) / 127).astype(np.float32)
    Wq8 = kernels.quantize_per_channel(W, w_scale, np.zeros(n, np.int64), axis=0)
    dense_name, int8_name = "numpy f32 GEMV", "labkit int8 GEMV"
    common = {
        dense_name: partial(np.dot, W, x),
        int8_name: partial(dynamic_linear_int8, x.reshape(1, -1), Wq8, w_scale, np.zeros(n, np.float32)),
    }
    common_bytes = {dense_name: W.nbytes + 8 * n, int8_name: Wq8.nbytes + 4 * n + 9 * n}
    for g in groups:
        G = -(-n // min(g, n))
        q = rng.integers(0, 16, (n, n), dtype=np.uint8)
        packed = _pack_nibbles(q)
        scale = rng.uniform(0.001, 0.01, (n, G)).astype(np.float32)
        zp = rng.integers(0, 16, (n, G), dtype=np.uint8)
        nbytes = packed.nbytes + scale.nbytes + zp.nbytes + 8 * n
        fns = {"labkit": partial(kernels.gemv_int4, packed, scale, zp, x, g), **common}
        note = f"int4 operands {nbytes / common_bytes[dense_name]:.3f}x the bytes of float32"
        peer = "torch _weight_int4pack_mm_for_cpu"
        missing = "torch not installed"
        if torch is not None:
            tfn, missing = _torch_int4(torch, q, scale, zp, g)
            if tfn is not None:
                tx = torch.from_numpy(x.reshape(1, -1))

                def run_torch(f=tfn, t=tx):
                    with torch.inference_mode():
                        return f(t)

                ours = kernels.gemv_int4(packed, scale, zp, x, g)
                same = np.allclose(run_torch().numpy()[0], ours, rtol=1e-3, atol=1e-3 * float(np.abs(ours).max()))
                note += f"; same answers as torch: {'yes' if same else 'no'}"
                fns["torch"] = run_torch
        t = r.time_together(fns, nbytes={"labkit": nbytes, **common_bytes}, flops={k: 2 * n * n for k in fns})
        peers = [(dense_name, t[dense_name]), (int8_name, t[int8_name])]
        peers.append((peer, t["torch"]) if "torch" in t else (peer, None, missing))
        r.add(f"int4 GEMV g={g}", f"{n}x{n}", ("gemv_int4 (float32 x, int4 W unpacked in-kernel)", t["labkit"]),
              peers, note=note)  # fmt: skip
    # 2:4: the same matrix pruned to the 2 largest |w| of every 4, against dense, CSR at 50 %, int8
    g4 = np.abs(W).reshape(n, -1, 4)
    keep = np.zeros(g4.shape, bool)
    np.put_along_axis(keep, np.argsort(-g4, axis=2, kind="stable")[:, :, :2], True, axis=2)
    keep = keep.reshape(n, n)
    A = np.where(keep, W, 0).astype(np.float32)
    m = kernels.nm24_compress(A, keep)
    c = kernels.csr_from_dense(A)
    S = sp.csr_matrix((c.data, c.indices, c.indptr), shape=c.shape)
    fns = {"labkit": partial(kernels.gemv_nm24, m, x), "csr": partial(kernels.spmv, c, x), "scipy": partial(S.dot, x)}
    fns.update(common)
    t = r.time_together(
        fns,
        nbytes={"labkit": m.nbytes + 8 * n, "csr": c.nbytes + 8 * n, **common_bytes},
        flops={"labkit": n * n, "csr": 2 * c.nnz, dense_name: 2 * n * n},
    )
    peers = [
        (dense_name, t[dense_name]),
        ("labkit CSR SpMV (same 50 %)", t["csr"]),
        ("scipy.sparse CSR", t["scipy"]),
        (int8_name, t[int8_name]),
        ("torch semi-structured 2:4", None, "torch not installed" if torch is None else "CUDA-only in PyTorch"),
    ]
    note = f"matrix {m.nbytes / W.nbytes:.3f}x the bytes of dense float32 (CSR: {c.nbytes / W.nbytes:.3f}x)"
    r.add(
        "2:4 sparse GEMV", f"{n}x{n}", ("gemv_nm24 (float32 values + 2-bit positions)", t["labkit"]), peers, note=note
    )


# ----------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------

FULL = {
    "n": 4096,
    "batches": (1, 64),
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
    "int4_groups": (32, 128),
}
QUICK = {
    "n": 2048,
    "batches": (1, 64),
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
    "int4_groups": (128,),
}


def run(
    quick: bool = False,
    threads: int | None = None,
    json_path=None,
    verbose: bool = True,
    config=None,
    markdown_path=None,
) -> dict:
    """Run every case; return (and optionally write as JSON) the machine, thread setup, bandwidth and rows.

    ``config`` overrides the sizes (keys as in ``FULL``; the tests use tiny ones).
    """
    cfg = dict(QUICK if quick else FULL, **(config or {}))
    # OpenMP's default is to spin while waiting for work; on a small, shared machine the spinning
    # threads steal the cores the working ones need (measured on the 2-core reference VM: ~30 ms per
    # parallel region). Passive waiting is set before PyTorch loads libgomp, unless the user chose.
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    omp_policy = os.environ.get("OMP_WAIT_POLICY", "default (torch was already imported)")
    torch = _torch()
    rng = np.random.default_rng(0)
    t_start = time.perf_counter()
    out = {"machine": machine_description(), "mode": "quick" if quick else "full", "config": dict(cfg)}
    with bench.thread_limits(threads) as how:
        out["threads"] = f"{how}; OMP_WAIT_POLICY={omp_policy}"
        how = out["threads"]
        if torch is None:
            out["torch_note"] = "PyTorch is not installed: its peer rows are skipped (pip install 'labkit[peers]')"
        if verbose:
            print(f"labkit bench ({out['mode']}): {out['machine']['cpu']}, {out['machine']['cpus_usable']} CPUs")
            print(f"thread pools: {how}")
            if torch is None:
                print(out["torch_note"])
            print("compiling / loading the numba kernels ...", flush=True)
        _warm_up()
        import numba

        out["numba_threading_layer"] = numba.threading_layer()
        if verbose:
            print(f"numba threading layer: {out['numba_threading_layer']}")
        bw = bench.bandwidth(cfg["bw_bytes"], repeat=max(5, cfg["repeat"] // 3))
        peak = bench.compute_peak(cfg.get("gemm_n", 1024 if quick else 2048), repeat=3)
        out["bandwidth"] = {"read_gbps": bw.read, "copy_gbps": bw.copy, "nbytes": bw.nbytes}
        out["blas_f32_gemm_gflops"] = peak
        if verbose:
            print(f"memory bandwidth: {bw}; float32 BLAS GEMM: {peak:.1f} GFLOP/s")
            print("ratio = peer median / labkit median (> 1: labkit faster)\n", flush=True)
        r = Runner(cfg["repeat"], bw.read, verbose, rounds=cfg["rounds"], settle=cfg["settle"])
        out["timing"] = (
            f"labkit and its peers timed in alternating blocks: {cfg['repeat']} calls each in {cfg['rounds']} "
            f"blocks, {cfg['settle']} s pause and 2 untimed calls before each block (top-k and pruning rows: "
            "one block each)"
        )
        if verbose:
            print(f"timing: {out['timing']}")
        case_int8(r, cfg["n"], cfg["batches"], torch, rng)
        out["crossover"] = case_sparse(r, cfg["n"], cfg["sparsities"], cfg["spmm_batch"], torch, rng)
        case_quantize(r, cfg["quant_n"], torch, rng)
        case_topk(r, cfg["topk_n"], cfg["topk_arrays"], torch, rng)
        case_prune(r, cfg["mlp"], torch, rng, max(3, cfg["repeat"] // 3))
        case_lowbit(r, cfg["n"], cfg.get("int4_groups", (128,)), torch, rng)
    out["rows"] = r.rows
    out["seconds"] = time.perf_counter() - t_start
    if verbose:
        print(
            "\nsparse/dense crossover (lowest measured sparsity from which the kernel beats dense float32 GEMV"
            " at every higher one):"
        )
        for key, s in out["crossover"].items():
            print(f"    {key}: {'never in the measured range' if s is None else f'{round(100 * s)}%'}")
        print(f"total {out['seconds']:.0f} s")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=1, default=float)
        if verbose:
            print(f"wrote {json_path}")
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(render_markdown(out))
        if verbose:
            print(f"wrote {markdown_path}")
    return out


def render_markdown(out: dict) -> str:
    """The run as a Markdown report: machine, thread setup, bandwidth, one table per kernel, crossover, targets."""
    m = out["machine"]
    lines = [
        f"## Run: `python -m labkit bench{' --quick' if out['mode'] == 'quick' else ''}` ({out['mode']} sizes)",
        "",
        f"- CPU: {m.get('cpu')}, {m.get('cpus_usable')} usable CPUs, {m.get('memory_gib', '?')} GiB RAM",
        f"- load average at start (other processes on the machine): {m.get('loadavg_at_start')}",
        f"- {m.get('platform')}; Python {m.get('python')}; numpy {m.get('numpy')}, scipy {m.get('scipy')}, "
        f"numba {m.get('numba')}, torch {m.get('torch')}; BLAS: {', '.join(m.get('blas', []))}",
        f"- thread pools: {out['threads']}; numba threading layer: {out.get('numba_threading_layer')}",
        f"- timing: {out.get('timing', 'one block per kernel')}",
        f"- memory bandwidth (numba, all threads): read {out['bandwidth']['read_gbps']:.1f} GB/s, copy "
        f"{out['bandwidth']['copy_gbps']:.1f} GB/s over {out['bandwidth']['nbytes'] / 2**20:.0f} MiB; float32 BLAS "
        f"GEMM {out['blas_f32_gemm_gflops']:.1f} GFLOP/s",
        f"- total run time {out['seconds']:.0f} s",
    ]
    if out.get("torch_note"):
        lines.append(f"- {out['torch_note']}")
    lines += [
        "",
        "Ratio = peer median / labkit median (> 1: labkit is faster). Medians of repeated calls in one process;",
        "BW% = achieved bytes/s over the read bandwidth measured for main memory / for an array of the same size.",
        "",
        "| kernel | size | labkit | labkit ms | BW% (main / same size) | peer | peer ms | ratio | target |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in out["rows"]:
        bw = f"{100 * r['bw_fraction']:.0f}% / {100 * r['bw_fraction_same_size']:.0f}%" if r.get("gbps") else ""
        first = True
        for p in r["peers"]:
            head = (
                f"| {r['kernel']} | {r['size']} | {r['labkit']} | {r['labkit_ms']:.3f} | {bw} "
                if first
                else "| | | | | "
            )
            if p["ms"] is None:
                lines.append(head + f"| {p['peer']} | skipped: {p['missing']} | | |")
            else:
                tgt = "" if p.get("target") is None else f"≥ {p['target']:g}: {'met' if p['met'] else '**missed**'}"
                lines.append(head + f"| {p['peer']} | {p['ms']:.3f} | {p['ratio']:.2f} | {tgt} |")
            first = False
    lines += ["", "Sparse/dense crossover at batch 1 (lowest measured sparsity from which the kernel beats dense",
              "float32 GEMV at every higher measured sparsity):", ""]  # fmt: skip
    for key, v in out["crossover"].items():
        lines.append(f"- {key}: {'not in the measured range' if v is None else f'{round(100 * v)}%'}")
    return "\n".join(lines) + "\n"


def _warm_up():
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
    kernels.gemv_nm24(kernels.nm24_compress(np.zeros((8, 16), np.float32)), W[0].copy())


def add_parser(sub):
    """Register the ``bench`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("bench", help="time labkit's kernels against numpy, scipy and PyTorch (minutes)")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (about a minute)")
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    p.add_argument("--markdown", metavar="PATH", help="also write the results as a Markdown report")
    p.add_argument("--threads", type=int, default=None, help="threads for every pool (default: usable CPUs)")
    p.set_defaults(fn=lambda args: (run(args.quick, args.threads, args.json, markdown_path=args.markdown), 0)[1])
    return p
