# %% [markdown]
# # Lab 07 — Kernels and timing: when do fewer bytes become fewer milliseconds?
#
# **You will leave able to** store a pruned matrix in CSR and multiply with it, count the bytes a
# dense, a sparse and an int8 mat-vec must move, time kernels honestly (warm-up, repeats, median
# and spread, peers in the same run), explain the times with the machine's bandwidth and a
# roofline, and say from which sparsity a sparse kernel beats a dense one on this machine.
#
# **Time:** about 45 minutes; the notebook runs in under two minutes, most of it in timing loops
# (measured on a 2-core virtual machine shared with other jobs: 17 s of wall time with nothing else
# running, 90 s at a load average near 18).
#
# **About the times you will see.** Every absolute time (ms, GB/s, GFLOP/s) in this notebook sits in a
# cell whose output nbval does not compare, and the stored ones were measured on a **2-core virtual
# machine** shared with other jobs: on your machine they will differ, often by a lot. What
# carries over is a *ratio* of two kernels measured in the same run, interleaved so that the same load
# falls on both. Each timing verdict states such a ratio with a margin, and it too sits in a cell whose
# output is not compared: it speaks for the machine that ran it. The compared lines hold only what is
# exact on every machine (bytes, integer results). No accuracy is measured here (no model is trained
# or evaluated), so no data split is involved.
#
# **Reading:** Williams, Waterman and Patterson 2009, *Roofline: an insightful visual performance
# model for multicore architectures* (CACM); Han et al. 2016, *EIE: efficient inference engine on
# compressed deep neural network* (§2, why CSR-like formats and bandwidth); Jacob et al. 2018 (§2.3,
# int8 GEMM with int32 accumulators).

# %% [markdown]
# ## 1. Time is bytes divided by bandwidth (for a mat-vec)
#
# A Dense layer at batch 1 computes $y = Wx$ with $W \in \mathbb{R}^{m \times n}$: $2mn$ floating
# point operations on $4mn$ bytes of float32 weights. Each weight is used **once**: a modern core
# does tens of operations in the time one byte arrives from memory, so the GEMV waits on memory.
# Its time is, to a good approximation,
#
# $$ t \approx \frac{\text{bytes moved}}{\text{memory bandwidth}} . $$
#
# That is the whole story of compression kernels at batch 1: **int8** weights move 4× fewer bytes;
# a **sparse** matrix moves only the kept weights — but each carries its column index, and reading
# $x$ at scattered columns (a *gather*) is slower than streaming it.
#
# The **roofline** (Williams et al. 2009) makes this a picture. A kernel doing $F$ operations on $Q$
# bytes has *arithmetic intensity* $I = F/Q$ (op/byte). With peak compute $P$ and bandwidth $B$
# it can reach at most
#
# $$ \text{attainable}(I) = \min(P,\ B \cdot I). $$
#
# Left of the ridge point $I^* = P/B$ a kernel is memory-bound, right of it compute-bound.
#
# **CSR** (compressed sparse row) stores a matrix with $\mathrm{nnz}$ kept entries as three arrays:
# `data` (the values, row by row), `indices` (the column of each value) and `indptr` ($m+1$ entries:
# row $i$ is `data[indptr[i]:indptr[i+1]]`). For
#
# $$ A = \begin{pmatrix} 0 & 2 & 0 & 0 \\ 0 & 0 & 0 & 0 \\ 5 & 0 & 0 & 7 \\ 0 & 0 & 3 & 0 \end{pmatrix}:
# \quad \texttt{data} = [2, 5, 7, 3],\ \texttt{indices} = [1, 0, 3, 2],\ \texttt{indptr} = [0, 1, 1, 3, 4]. $$

# %%
from functools import partial

import matplotlib.pyplot as plt
import numpy as np

from labkit import bench, kernels, plot
from labkit.check import lab07

rng = np.random.default_rng(0)
THREADS = 1  # every pool pinned to one thread: timings compare kernels, not thread schedulers
print(f"timings below use bench.thread_limits({THREADS}) around every measurement")

# %% [markdown]
# ## 2. A worked demo: dense float32 vs int8 GEMV, timed honestly
#
# `bench.timeit` calls the function a few times untimed (numba compiles on first use; caches warm
# up), then `repeat` times timed, and reports the median, min, max and interquartile range.
# When two kernels are compared, `bench.timeit_interleaved` times them in alternating blocks, so that
# a burst of load from another program falls on both rather than on whichever ran at that moment:
# the *ratio* then survives a busy machine even when the absolute times do not. Timings go in cells
# whose output nbval ignores; the cell after states the claim as a verdict, with a margin.

# %% tags=["skip-grading"]
n = 2048
W = (rng.standard_normal((n, n)) * 0.05).astype(np.float32)
x = rng.standard_normal(n).astype(np.float32)
w_scale = (np.abs(W).max(axis=1) / 127).astype(np.float32)
Wq = kernels.quantize_per_channel(W, w_scale, np.zeros(n, np.int64), axis=0)
xq = kernels.quantize_per_tensor(x, np.float32(np.abs(x).max() / 127), 0)
print(f"W: {W.nbytes:,} bytes as float32, {Wq.nbytes:,} bytes as int8")

# %% tags=["nbval-ignore-output", "skip-grading"]
kernels.gemv_int8(Wq, xq)  # compile the numba kernel once, outside the timings
with bench.thread_limits(THREADS):
    gemv = bench.timeit_interleaved(
        {"f32": partial(np.dot, W, x), "i8": partial(kernels.gemv_int8, Wq, xq)},
        repeat=60,
        rounds=6,
        nbytes={"f32": W.nbytes + 8 * n, "i8": Wq.nbytes + n + 4 * n},
        flops={"f32": 2 * n * n, "i8": 2 * n * n},
    )
t_f32, t_i8 = gemv["f32"], gemv["i8"]
print("float32 GEMV (numpy BLAS):", t_f32)
print("int8 GEMV (labkit, int32 accumulators):", t_i8)
print(f"speed-up {t_f32.median / t_i8.median:.2f}x (medians), {t_f32.min / t_i8.min:.2f}x (best of 60) "
      f"for {W.nbytes / Wq.nbytes:.0f}x fewer weight bytes")

# %% tags=["skip-grading"]
print(f"int8 weights move 4x fewer bytes: {'yes' if W.nbytes == 4 * Wq.nbytes else 'no'}")

# %% tags=["nbval-ignore-output", "skip-grading"]
print(
    "int8 GEMV at least 1.2x faster than float32 GEMV (best of 60 interleaved runs each, this machine):",
    "yes" if t_f32.min >= 1.2 * t_i8.min else "no",
)

# %% [markdown]
# The timing verdict sits in a cell whose output is not compared, like every timing in this lab: it
# holds for the machine that ran it. On the stored run (a 2-core virtual machine shared with other jobs) it says "yes",
# as the bytes predict: the int8 kernel reads a quarter of the weight bytes, and a GEMV waits on memory.
# It compares the *best* of 60 runs of each: on a busy machine the medians swing with the other
# programs' load, while the best run still shows what each kernel can do. The speed-up stays below 4×:
# $x$, $y$ and the per-row work are the same size for both, and numpy's float32 GEMV is a tuned BLAS
# routine while the int8 one is labkit's numba loop.

# %% [markdown]
# The products are exact: int8 × int8 fits 16 bits and a sum of $n \le 131071$ of them fits
# int32 (`kernels.max_accumulation_length()`); the float32 result only differs by rounding.

# %% tags=["skip-grading"]
exact = Wq.astype(np.int64) @ xq.astype(np.int64)
print("int8 GEMV equals the exact integer product:", "yes" if np.array_equal(kernels.gemv_int8(Wq, xq), exact) else "no")


# %% [markdown]
# ## 3. Graded exercises
#
# ### Exercise 1 — CSR from a dense matrix (1 point)
#
# Return the triple `(data, indices, indptr)` for the nonzeros of `A` (m × n), and only those, row by
# row, columns in increasing order within a row: `data` float32 (A's values exactly), `indices` and
# `indptr` 1-D integer arrays, `indptr` with $m+1$ entries starting at 0 and ending at the number of
# nonzeros.

# %% nbgrader={"grade": false, "grade_id": "csr_from_dense", "locked": false, "schema_version": 3, "solution": true, "task": false}
def csr_from_dense(A):
    ### BEGIN SOLUTION
    m, n = A.shape
    data, indices, indptr = [], [], [0]
    for i in range(m):
        cols = np.flatnonzero(A[i])
        data.extend(A[i, cols])
        indices.extend(cols)
        indptr.append(len(data))
    return np.array(data, np.float32), np.array(indices, np.int64), np.array(indptr, np.int64)
    ### END SOLUTION


# %% labkit={"answer": "csr_from_dense"} nbgrader={"grade": true, "grade_id": "check_csr_from_dense", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab07.csr_from_dense(csr_from_dense)


# %% [markdown]
# ### Exercise 2 — CSR mat-vec (1 point)
#
# Compute $y = Ax$ from the CSR arrays: for each row $i$, sum `data[p] * x[indices[p]]` over
# `p` in `indptr[i]:indptr[i+1]`. Return a float32 array of shape $(m,)$, $m$ = `len(indptr) - 1`
# (the check allows float32 rounding: relative 1e-4).
# (numpy slices per row are fine; `labkit.kernels.spmv` is the compiled version.)

# %% nbgrader={"grade": false, "grade_id": "csr_matvec", "locked": false, "schema_version": 3, "solution": true, "task": false}
def csr_matvec(data, indices, indptr, x):
    ### BEGIN SOLUTION
    m = len(indptr) - 1
    y = np.zeros(m, np.float32)
    for i in range(m):
        lo, hi = indptr[i], indptr[i + 1]
        y[i] = np.dot(data[lo:hi], x[indices[lo:hi]])
    return y
    ### END SOLUTION


# %% labkit={"answer": "csr_matvec"} nbgrader={"grade": true, "grade_id": "check_csr_matvec", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab07.csr_matvec(csr_matvec)


# %% [markdown]
# ### Exercise 3 — bytes moved by one GEMV (1 point)
#
# For $y = Wx$ with $W$ of shape $m \times n$ at a given sparsity, count the bytes that must be
# read or written once. Return a dict with exactly the three keys below, each value an integer
# (an `int`, not a float such as `12.0`):
#
# - `"dense_fp32"`: float32 W, float32 x, float32 y;
# - `"csr_fp32"`: CSR with float32 values and int32 column indices for the
#   $\mathrm{nnz} = mn - \lfloor \text{sparsity} \cdot mn \rfloor$ kept weights, int32 `indptr`,
#   float32 x and y;
# - `"int8"`: dense int8 W, int8 x, int32 y (the accumulators).

# %% nbgrader={"grade": false, "grade_id": "gemv_bytes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gemv_bytes(m, n, sparsity):
    ### BEGIN SOLUTION
    nnz = m * n - int(np.floor(sparsity * m * n))
    return {
        "dense_fp32": 4 * m * n + 4 * n + 4 * m,
        "csr_fp32": 8 * nnz + 4 * (m + 1) + 4 * n + 4 * m,
        "int8": m * n + n + 4 * m,
    }
    ### END SOLUTION


# %% labkit={"answer": "gemv_bytes"} nbgrader={"grade": true, "grade_id": "check_gemv_bytes", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab07.gemv_bytes(gemv_bytes)

# %% [markdown]
# Counting alone already says where CSR *can* pay: float32 CSR moves 8 bytes per kept weight
# against 4 per weight for dense float32, so it reads fewer bytes only beyond 50 % sparsity. The
# compact variant in `labkit.kernels.compact_csr` (int8 values with a per-row scale, 16-bit columns)
# moves 3 bytes per kept weight. Against dense *float32* that is fewer bytes at every sparsity
# ($3(1-s) < 4$ for every $s$), but that is not a fair race: its values are 8-bit, and a dense
# matrix of 8-bit values moves 1 byte per weight. Against **dense int8** compact CSR moves fewer
# bytes only when $3(1-s) < 1$, i.e. beyond $s = 2/3$. The table counts every array (indices,
# scales, $x$ and $y$ included) for a 4096 × 4096 matrix, and the last line finds each break-even
# sparsity from those counts.

# %%
M = N = 4096


def compact_bytes(m, n, sparsity):
    """Compact CSR: int8 values, int16 columns, int32 indptr, one float32 scale per row; float32 x and y."""
    nnz = m * n - int(np.floor(sparsity * m * n))
    return 3 * nnz + 4 * (m + 1) + 4 * m + 4 * n + 4 * m


print(f"{'sparsity':>8} {'CSR f32 / dense f32':>20} {'compact / dense f32':>20} {'compact / dense int8':>21}")
for s in (0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
    b = gemv_bytes(M, N, s)
    c = compact_bytes(M, N, s)
    print(f"{s:8.0%} {b['csr_fp32'] / b['dense_fp32']:20.3f} {c / b['dense_fp32']:20.3f} {c / b['int8']:21.3f}")


def break_even(sparse_bytes, dense_bytes):
    """Lowest sparsity, in steps of 0.1 %, from which the sparse format moves fewer bytes."""
    return next(s / 1000 for s in range(1001) if sparse_bytes(s / 1000) < dense_bytes(s / 1000))


even_csr = break_even(lambda s: gemv_bytes(M, N, s)["csr_fp32"], lambda s: gemv_bytes(M, N, s)["dense_fp32"])
even_compact = break_even(lambda s: compact_bytes(M, N, s), lambda s: gemv_bytes(M, N, s)["int8"])
print(f"fewer bytes than its dense peer from about: float32 CSR vs dense float32 {even_csr:.0%}, "
      f"compact CSR vs dense int8 {even_compact:.0%}")

# %% [markdown]
# ## 4. Experiment: latency vs sparsity — where does CSR start to pay?
#
# One random 2048 × 2048 matrix, pruned at increasing sparsity (random positions: unstructured),
# timed as dense float32 GEMV (BLAS), dense int8 GEMV (`kernels.gemv_int8`), float32 CSR and compact
# int8 CSR (labkit, numba), and `scipy.sparse` for reference — all in the same run. Each sparse kernel
# races its dense peer: float32 CSR and scipy against dense float32, compact CSR (8-bit values) against
# dense int8. The stored milliseconds come from a 2-core virtual machine shared with other jobs; the crossover (where a
# sparse line dips under its dense peer) is a comparison within one run and is what to read.

# %%
import scipy.sparse as sp

sparsities = [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98]
mats = []
for s in sparsities:
    A = W * (rng.random(W.shape) >= s)
    c = kernels.csr_from_dense(A)
    mats.append((s, c, kernels.compact_csr(c), sp.csr_matrix((c.data, c.indices, c.indptr), shape=c.shape)))
print("nnz per sparsity:", [c.nnz for _, c, _, _ in mats])

# %% tags=["nbval-ignore-output"]
times = {"dense": [], "int8 dense": [], "csr": [], "compact": [], "scipy": []}
with bench.thread_limits(THREADS):
    for _s, c, cc, S in mats:  # at each sparsity the five kernels alternate: the same load falls on all
        t = bench.timeit_interleaved(
            {"dense": partial(np.dot, W, x), "int8 dense": partial(kernels.gemv_int8, Wq, xq),
             "csr": partial(kernels.spmv, c, x), "compact": partial(kernels.spmv, cc, x),
             "scipy": partial(S.dot, x)},
            repeat=20, rounds=2, settle=0.05,
        )
        for k in times:
            times[k].append(t[k].min)
print("sparsity  ", " ".join(f"{s:7.0%}" for s in sparsities))
for k, v in times.items():
    print(f"{k:10s}", " ".join(f"{t * 1e3:7.3f}" for t in v), "ms (best of 20)")


def crossover(t_sparse, t_dense):
    """Lowest sparsity from which the sparse kernel is faster at every higher measured sparsity."""
    lowest = None
    for s, ts, td in sorted(zip(sparsities, t_sparse, t_dense), reverse=True):
        if ts >= td:
            break
        lowest = s
    return lowest


PEER = {"csr": "dense", "compact": "int8 dense", "scipy": "dense"}  # each sparse kernel against its dense peer
cross = {k: crossover(times[k], times[peer]) for k, peer in PEER.items()}
fig, ax = plt.subplots(figsize=(7, 4))
pct = 100 * np.array(sparsities)
lines = {}
NAME = {"dense": "dense float32 (BLAS)", "int8 dense": "dense int8", "csr": "float32 CSR", "compact": "compact int8 CSR",
        "scipy": "scipy.sparse CSR"}
for k, style in (("dense", "k--"), ("int8 dense", "k:"), ("csr", "o-"), ("compact", "s-."), ("scipy", "^:")):
    (lines[k],) = ax.plot(pct, 1e3 * np.array(times[k]), style, label=NAME[k])
for j, (k, c) in enumerate(cross.items()):
    if c is not None:  # a thin vertical line in the kernel's colour, named in the legend
        ax.axvline(
            100 * c + 0.4 * (j - 1),
            color=lines[k].get_color(),
            lw=1,
            ls=(0, (1, 2)),
            label=f"{NAME[k]} beats {NAME[PEER[k]]} from {100 * c:.0f}%",
        )
ax.set(xlabel="sparsity (%)", ylabel="time per y = Wx (ms, best of 20, log scale)", yscale="log",
       title="2048x2048 mat-vec: dense vs sparse (1 thread)")
ax.set_xticks(pct, [f"{p:.0f}" for p in pct])
plot.legend(ax)
plot.show(
    fig,
    alt="Time of one 2048 x 2048 mat-vec against sparsity (30 to 98 %, log time axis) for dense float32 "
    "(flat black dashed line), dense int8 (flat black dotted line), labkit's float32 CSR (circles), compact "
    "int8 CSR (squares) and scipy.sparse (triangles). The sparse times fall as sparsity rises and cross below "
    "the dense lines; thin dotted vertical lines in each sparse kernel's colour mark, on this machine, the "
    "sparsity from which it beats its dense peer (printed below).",
)
print("crossover (sparse kernel vs its dense peer):",
      {f"{k} vs {PEER[k]}": None if v is None else f"{100 * v:.0f}%" for k, v in cross.items()})

# %%
i95 = sparsities.index(0.95)
print("compact CSR moves fewer bytes than float32 CSR (3 vs 8 per weight):",
      "yes" if all(cc.nbytes < c.nbytes for _, c, cc, _ in mats) else "no")
print("at 95% sparsity compact CSR moves fewer bytes than dense int8:", "yes" if mats[i95][2].nbytes < Wq.nbytes else "no")

# %% tags=["nbval-ignore-output"]
# timing verdicts: they hold for the machine that ran this cell (the stored run: a shared 2-core VM)
faster95 = times["dense"][i95] >= 2 * times["csr"][i95]  # bytes say 10x; a 2x margin survives a busy machine
slower30 = times["csr"][0] >= 1.2 * times["dense"][0]  # bytes say 1.5x more
print(f"float32 CSR at least 2x faster than dense at 95% sparsity (10x fewer bytes): {'yes' if faster95 else 'no'}")
print(f"float32 CSR at least 1.2x slower than dense at 30% sparsity (1.4x the bytes): {'yes' if slower30 else 'no'}")
for k, predicted in (("csr", even_csr), ("compact", even_compact)):
    later = cross[k] is None or cross[k] > predicted
    print(f"{k} beats {PEER[k]} only beyond the {predicted:.0%} its bytes predict: {'yes' if later else 'no'}")

# %% [markdown]
# The byte count predicts break-even at about 50 % sparsity for float32 CSR against dense float32, and
# at about 67 % for compact CSR against dense int8 (section 3). The measured crossovers usually come
# later (the plot marks where they are on your machine; the cell above says whether they did): the
# gather `x[indices[p]]` and the short per-row loops cost time that no byte count sees. scipy's
# CSR, plain C without vectorized gathers, typically needs an even higher sparsity.
# `python -m labkit bench` repeats this at 4096 × 4096 against scipy and PyTorch; the results on
# the course's reference machine are in `docs/benchmarks.md`.

# %% [markdown]
# ## 5. Experiment: int8 vs float32 as the batch grows
#
# At batch $b$ a Dense layer computes $Y = XW^\top$: $2bmn$ operations on $\approx mn$ weight bytes
# (int8) or $4mn$ (float32). Batch multiplies the work done per weight byte: the intensity
# grows with $b$, and the kernel slides right on the roofline, from memory-bound to compute-bound.
# Once compute-bound, what matters is multiply-adds per instruction. One AVX-512 FMA does 16 in
# float32; `vpdpbusd` (AVX-512 VNNI, "dot product of unsigned and signed bytes") does 64 in int8:
# 16 lanes, each adding 4 byte products to an int32. labkit's int8 GEMM uses it from 4 rows on
# CPUs that have it (a register-blocked micro-kernel: 4 rows × 4 output channels in 16 registers);
# elsewhere it runs 16-bit multiply-adds (32 per instruction, after widening every weight). The cell
# below prints which path this machine takes.

# %%
batches = [1, 4, 16, 64]
Xs = {b: rng.standard_normal((b, n)).astype(np.float32) for b in batches}
Xqs = {b: kernels.quantize_per_tensor(X, np.float32(np.abs(X).max() / 127), 0) for b, X in Xs.items()}
for b in batches:
    i_f32 = 2 * b * n * n / (4 * n * n + 4 * b * n * 2)
    i_i8 = 2 * b * n * n / (n * n + b * n + 4 * b * n)
    print(f"batch {b:3d}: intensity float32 {i_f32:6.2f} flop/B, int8 {i_i8:6.2f} op/B")

# %% tags=["nbval-ignore-output"]
int8_path = kernels.simd_paths()["gemm_int8 and its fused forms, 4 rows or more"]
print(f"labkit's int8 GEMM on this machine, from 4 rows: {int8_path}")

# %% tags=["nbval-ignore-output"]
t_batch = {"float32 BLAS": [], "int8 labkit": []}
with bench.thread_limits(THREADS):
    for b in batches:  # the two kernels alternate at each batch size
        t = bench.timeit_interleaved(
            {"float32 BLAS": partial(np.matmul, Xs[b], W.T), "int8 labkit": partial(kernels.gemm_int8, Xqs[b], Wq)},
            repeat=60 if b < 64 else 20, rounds=6 if b < 64 else 4, settle=0.05,
        )
        for k in t_batch:
            t_batch[k].append(t[k].min)
fig, ax = plt.subplots(figsize=(6, 3.5))
for (k, v), style in zip(t_batch.items(), ("o-", "s--")):
    ax.plot(batches, [1e3 * t / b for t, b in zip(v, batches)], style, label=f"{k} (best run)")
ax.set(xscale="log", yscale="log", xlabel="batch (log scale)", ylabel="ms per sample (log scale)",
       title="int8 vs float32 per sample")
ax.set_xticks(batches, [str(b) for b in batches])
ax.minorticks_off()
ax.legend()
plot.show(
    fig,
    alt="Time per sample against batch size 1, 4, 16, 64 (both axes log scale) for float32 BLAS (circles, "
    "solid) and labkit's int8 kernel (squares, dashed). Read which line is lower at batch 1 and whether the "
    "lines cross as the batch grows; the verdicts below state both.",
)
for k, v in t_batch.items():
    print(k, [f"{t * 1e3:.2f} ms" for t in v])

# %% tags=["nbval-ignore-output"]
# timing verdicts: they hold for the machine that ran this cell (the stored run: a shared 2-core VM)
speedup = [f / i for f, i in zip(t_batch["float32 BLAS"], t_batch["int8 labkit"])]
print("int8 speed-up over float32 by batch:", {b: f"{r:.2f}x" for b, r in zip(batches, speedup)})
print(f"int8 at least 1.2x faster than float32 at batch 1: {'yes' if speedup[0] >= 1.2 else 'no'}")
print(f"int8 faster than float32 at batch 64 ({int8_path}): {'yes' if speedup[-1] > 1 else 'no'}")

# %% [markdown]
# At batch 1 both kernels are memory-bound and int8 reads 4× fewer weight bytes: the first verdict
# follows from the bytes on any machine. At batch 64 both are compute-bound, and the second verdict
# depends on the instruction the int8 kernel gets: with `vpdpbusd` it does 4× the multiply-adds of a
# float32 FMA per instruction and can stay ahead of BLAS; on the portable path (16-bit multiply-adds
# after widening each weight) BLAS's hand-tuned float32 kernel does more per cycle, and int8 can end
# *slower* than float32 — not a flaw of int8, but of an int8 kernel without dot-product instructions
# (fbgemm and oneDNN use them too, and oneDNN uses AMX tile instructions where the CPU has them).
# Other programs evict the cache blocks BLAS relies on, so the batch-64 ratio moves a lot under
# load; the verdict claims only the direction, for the machine that ran it.

# %% [markdown]
# ## 6. A roofline of this machine, with each kernel on it
#
# Three measurements: the streaming read bandwidth (`bench.bandwidth`) of a 128 MiB array (main
# memory) and of a 16 MiB one (the size of our float32 W: it may stay in a large last-level cache,
# which is then the roof that matters), and, as a practical compute roof, float32 GEMM through BLAS
# (`bench.compute_peak`). Each kernel is placed at its intensity (operations / bytes, from counts)
# and its achieved rate (operations / measured time). The stored bandwidths and rates are from a shared
# 2-core virtual machine and moved several-fold between our runs there; the verdict after the figure
# uses only the *position* of the ridge point relative to the GEMV's intensity.

# %% tags=["nbval-ignore-output"]
with bench.thread_limits(THREADS):
    bw = bench.bandwidth(128 * 2**20, repeat=5)
    bw_ws = bench.bandwidth(W.nbytes, repeat=10)
    peak = bench.compute_peak(1024, repeat=3)
    c90 = mats[sparsities.index(0.9)][1]
    xq1 = Xqs[1][0].copy()
    big = rng.standard_normal(4 * 2**20).astype(np.float32)
    points = {  # name: (operations, bytes, Timing)
        "GEMV f32": (2 * n * n, 4 * n * n, bench.timeit(np.dot, W, x, repeat=10)),
        "GEMV int8": (2 * n * n, n * n, bench.timeit(kernels.gemv_int8, Wq, xq1, repeat=10)),
        "SpMV CSR 90%": (2 * c90.nnz, c90.nbytes, bench.timeit(kernels.spmv, c90, x, repeat=10)),
        "GEMM f32 b=64": (2 * 64 * n * n, 4 * n * n, bench.timeit(np.matmul, Xs[64], W.T, repeat=5)),
        "GEMM int8 b=64": (2 * 64 * n * n, n * n, bench.timeit(kernels.gemm_int8, Xqs[64], Wq, repeat=5)),
        "quantize": (2 * big.size, 5 * big.size, bench.timeit(kernels.quantize_per_tensor, big, 0.01, 0, repeat=10)),
    }
print("main memory:", bw, "\n16 MiB working set:", bw_ws)
print(f"float32 GEMM {peak:.1f} GFLOP/s | ridge point {bench.ridge_point(peak, bw.read):.1f} flop/B (main memory)")
I = np.logspace(-2, 3, 200)
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.loglog(I, bench.roofline(I, peak, bw.read), "k-", lw=2, label="roofline, main memory")
ax.loglog(I, bench.roofline(I, peak, bw_ws.read), "k:", lw=1.5, label="roofline, 16 MiB working set")
for (name, (ops, nbytes, t)), marker in zip(points.items(), "os^DvP"):
    ax.loglog(ops / nbytes, ops / t.median / 1e9, marker, ls="none", markersize=8, label=name)
ax.set(xlabel="arithmetic intensity (op / byte, log scale)", ylabel="GOP/s (log scale)",
       title=f"roofline, {THREADS} thread")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
plot.show(
    fig,
    alt="Roofline of this machine on log-log axes: attainable operations per second against arithmetic "
    "intensity, a sloped memory roof (main memory, solid; 16 MiB working set, dotted) meeting a flat float32 "
    "GEMM roof. Six kernels are placed by their measured rate, each with its own marker named in the legend: the "
    "GEMVs, the CSR SpMV and the quantize kernel sit at low intensity under the sloped roof (memory-bound), "
    "the batch-64 GEMMs further right. The bandwidths, the peak and the ridge point are printed above.",
)

# %%
print(f"float32 GEMV intensity = {2 * n * n / (4 * n * n)} flop/byte; SpMV at any sparsity has intensity <= 0.25 "
      f"op/byte (2 ops per 8 bytes): {'yes' if 2 * c90.nnz / (8 * c90.nnz) <= 0.25 else 'no'}")

# %% tags=["nbval-ignore-output"]
# from measured bandwidth and peak: holds for the machine that ran this cell (the stored run: a shared 2-core VM)
ridge = bench.ridge_point(peak, bw.read)
print(f"float32 GEMV (0.5 flop/byte) below this machine's ridge point, {ridge:.1f} flop/byte (memory-bound): "
      f"{'yes' if 0.5 < ridge else 'no'}")

# %% [markdown]
# ## 7. Why unstructured sparsity seldom speeds up dense hardware — and what does
#
# - A CSR weight costs **8 bytes** and a gather; a dense weight 4 bytes streamed. Unstructured
#   sparsity must remove more than half the weights just to break even on bytes (two thirds for
#   compact CSR against dense int8), and the
#   irregular access defeats SIMD lanes and prefetchers. At batch > 1, dense GEMM becomes
#   compute-bound and runs at tens of GFLOP/s where SpMM, still gathering, does not.
# - **Structured pruning** (removing whole neurons or channels, lab 02) leaves a *smaller dense*
#   matrix: no indices, no gathers, all of BLAS's speed. 90 % of the rows removed is simply a
#   10 × smaller GEMV (the two timed in the same run; the stored milliseconds are from a shared 2-core
#   VM):

# %% tags=["nbval-ignore-output"]
W_struct = np.ascontiguousarray(W[: n // 10])  # keep 10% of the output neurons
with bench.thread_limits(THREADS):
    t = bench.timeit_interleaved({"struct": partial(np.dot, W_struct, x), "csr": partial(kernels.spmv, c90, x)},
                                 repeat=20)
t_struct, t_unstruct = t["struct"], t["csr"]
print(
    f"structured 90% (dense {W_struct.shape}): {t_struct.min * 1e3:.3f} ms; "
    f"unstructured 90% (CSR): {t_unstruct.min * 1e3:.3f} ms"
)

# %%
print(f"structured 90% pruning moves fewer bytes than CSR at 90%: {'yes' if W_struct.nbytes < c90.nbytes else 'no'}")

# %% tags=["nbval-ignore-output"]
# a timing verdict: it holds for the machine that ran this cell (the stored run: a shared 2-core VM)
print(
    "structured 90% pruning at least 2x faster than CSR at 90%:",
    "yes" if t_unstruct.min >= 2 * t_struct.min else "no",
)

# %% [markdown]
# - **int8** keeps the dense, regular layout and cuts bytes by 4: it pays at batch 1 on every
#   machine, and at large batch wherever the hardware has int8 dot-product instructions
#   (VNNI on x86, `sdot` on Arm, tensor cores on GPUs) and a library that uses them (fbgemm,
#   oneDNN, cuBLASLt).
#
# ## 8. What changes on a GPU (on paper)
#
# | quantity | this laptop-class CPU (measured above) | NVIDIA A100 40 GB (vendor datasheet) |
# |---|---|---|
# | memory bandwidth | see `bw` above (GB/s) | 1555 GB/s (HBM2) |
# | float32 | see `peak` above (GFLOP/s) | 19.5 TFLOP/s, 156 with TF32 tensor cores (A100 datasheet, 2020) |
# | int8 | section 5's batch-64 time, where labkit's kernel uses `vpdpbusd` if the CPU has it | 624 TOP/s (tensor cores) |
# | ridge point, int8 | not measured here | ≈ 400 op/byte |
#
# The ridge point is far to the right: a GPU is even more memory-bound at batch 1, so int8 and
# fewer bytes help there too. But its thousands of lanes execute in lock-step, so irregular
# gathers hurt more, and unstructured sparsity pays only at very high sparsity (cuSPARSE). What GPUs
# accelerate instead is *structured* sparsity: Ampere's tensor cores run the **2:4** pattern (2 of
# every 4 weights zero, 50 % sparsity) at up to 2× the dense rate, with 2-bit indices per kept value
# (Mishra et al. 2021, *Accelerating sparse deep neural networks*).
#
# ## 9. Questions to reflect on
#
# 1. Your byte count predicts the float32 CSR crossover at 50 % sparsity. Where did you measure it,
#    and what does the gap say about the cost of the gather?
# 2. Why does int8 help a batch-1 GEMV on every machine, but a batch-64 GEMM only where the
#    library uses int8 dot-product instructions?
# 3. The compact CSR stores a 16-bit column index per weight. How many bytes per weight would a
#    relative index of 4 bits cost (Han et al. 2016, deep compression), and what would it break?
# 4. A 2:4 pattern is 50 % sparse. On the roofline, why can it double GEMM speed on a GPU when 50 %
#    unstructured sparsity on a CPU is not faster at all?
#
# ## 10. Summary

# %%
b90 = gemv_bytes(4096, 4096, 0.9)
rows = [
    ("dense float32 GEMV 4096x4096, bytes", b90["dense_fp32"]),
    ("CSR float32 at 90 %, bytes", b90["csr_fp32"]),
    ("int8 dense, bytes", b90["int8"]),
    ("CSR f32 vs dense f32: bytes break even at", f"{even_csr:.0%}"),
    ("compact CSR vs dense int8: break even at", f"{even_compact:.0%}"),
]
print(f"{'quantity':42s} {'value':>12}")
for name, v in rows:
    print(f"{name:42s} {v:>12,}" if isinstance(v, int) else f"{name:42s} {v:>12}")

# %% [markdown]
# The measurements of this run, in one place. Absolute numbers: the stored ones come from a shared
# 2-core VM; re-run the notebook to see your machine's.

# %% tags=["nbval-ignore-output"]
print("measured on this machine (1 thread):")
print(f"  float32 GEMV {t_f32.median * 1e3:.3f} ms, int8 GEMV {t_i8.median * 1e3:.3f} ms (2048x2048)")
print("  crossover vs the dense peer:",
      {f"{k} vs {PEER[k]}": None if v is None else f"{100 * v:.0f}%" for k, v in cross.items()})
print(f"  bandwidth {bw}; 16 MiB: {bw_ws}")
