# %% [markdown]
# # Lab 09 — Compression without retraining: OBS, GPTQ, SparseGPT, Wanda, AWQ, 2:4 and int4
#
# **You will leave able to** derive the Optimal Brain Surgeon update for one weight and explain why
# GPTQ's fixed column order and shared inverse Hessian make it fast; quantize a trained network to
# 4, 3 and 2 bits with round-to-nearest (RTN), GPTQ and AWQ, and prune it to 50–90 % or to the 2:4
# pattern with magnitude, Wanda and SparseGPT — all **one-shot, on a few hundred calibration images,
# with no retraining**; measure how much each method leaves for a short fine-tune; test AWQ's
# "protect the channels with large activations" finding; and time the int4 and 2:4 kernels against
# dense float32 and int8.
#
# These are the methods behind today's compression of large language models, where retraining is
# out of reach. Here they run on the course's own models: LeNet-300-100, LeNet-5 and the 784-1200-1200-10
# teacher of lab 05 (its 1200 × 1200 layer is the closest thing we have to an LLM's wide layers).
#
# **Time:** about 75 minutes. The notebook computes for about 1.3 minutes of CPU time with one BLAS
# thread (the last cell prints your run's); its wall time is close to that on an idle 2-core machine
# and grows with the load when other programs share the cores.
#
# **Reading:** Hassibi & Stork 1993 (*Optimal Brain Surgeon*); Frantar, Ashkboos, Hoefler & Alistarh
# 2023 (*GPTQ*, ICLR), §3–4 and Algorithm 1; Frantar & Alistarh 2023 (*SparseGPT*, ICML); Sun, Liu,
# Bair & Kolter 2024 (*Wanda*, ICLR); Lin et al. 2024 (*AWQ*, MLSys), §3; Mishra et al. 2021
# (*Accelerating Sparse Deep Neural Networks*, the 2:4 pattern).
#
# **Method.** Calibration images come from the **training** split (`data.X_train`). Every choice
# (calibration size, damping, AWQ's α grid) is made on the data set's own **validation** split
# (`data.X_val`, `data.y_val`: 2,000 images, 200 per class, held out of the 20,000 training images).
# The shipped models were trained on the 18,000 training images only: they have never seen a
# validation image, so validation accuracies estimate test accuracies without bias (only with more
# noise: one validation image is 0.05 pp). The 10,000 test images are used **once**, in section 9,
# after every choice is fixed, and every claim there is stated with a 95 % paired-bootstrap interval and
# one of the words "yes", "no" or "not resolved at this sample size" (`labkit.stats`), the eighteen
# claims read as one family under Holm's control.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from labkit import bench, kernels, models, plot, stats, train
from labkit import prune as P
from labkit import quant as Q
from labkit.data import load_fashion_mnist

threadpool_limits(1)  # one BLAS thread: the same summation order, so the same rounding, on every machine
cpu_start = time.process_time()

data = load_fashion_mnist()
X_val, y_val = data.X_val, data.y_val  # every choice below is made on these
calib_pool = data.X_train[np.random.default_rng(0).permutation(len(data.X_train))[:1024]]  # training split only
nets = {name: models.pretrained(name) for name in ("lenet_300_100", "lenet5", "teacher")}
print(f"train {len(data.X_train):,} · validation {len(X_val):,} · calibration pool {len(calib_pool):,}")
for name, net in nets.items():
    print(f"{name:14s}", [(n, layer.W.shape) for n, layer in net.weight_layers()])

# %% [markdown]
# ## 1. Optimal Brain Surgeon: the best way to remove one weight
#
# Take one output row $w \in \mathbb{R}^{d}$ of a layer and its calibration inputs $X \in
# \mathbb{R}^{n \times d}$ (one input per row, as `Dense.forward` sees them). Changing the row by
# $\delta w$ changes the outputs by $X\,\delta w^\top$, an error
#
# $$ E(\delta w) = \lVert X\,\delta w^\top \rVert^2 = \tfrac12\, \delta w\, H\, \delta w^\top, \qquad H = 2 X^\top X . $$
#
# The error is exactly quadratic (a linear layer), and $H$ does not depend on $w$ — it is the same for
# every row of the layer. (`labkit.quant.hessian` divides by $n$, a mean instead of a sum; nothing
# below changes.)
#
# **Remove weight $q$** means: find $\delta w$ with $w_q + \delta w_q = 0$, i.e. $e_q^\top \delta w + w_q = 0$,
# that makes $E$ smallest. With a Lagrange multiplier $\lambda$:
#
# $$ \mathcal L = \tfrac12\,\delta w\,H\,\delta w^\top + \lambda\,(e_q^\top \delta w + w_q), \qquad
# \nabla_{\delta w}\mathcal L = H\,\delta w + \lambda e_q = 0 \;\Rightarrow\; \delta w = -\lambda\, H^{-1} e_q . $$
#
# The constraint gives $-\lambda [H^{-1}]_{qq} + w_q = 0$, so $\lambda = w_q / [H^{-1}]_{qq}$ and
#
# $$ \boxed{\;\delta w = -\frac{w_q}{[H^{-1}]_{qq}}\; H^{-1}_{:,q}, \qquad
# \Delta E = \frac{w_q^2}{2\,[H^{-1}]_{qq}}\;} $$
#
# (Hassibi & Stork 1993). $\Delta E$ is the weight's **saliency**: prune the weight with the smallest
# one, update the others, repeat. Magnitude pruning is the special case $H \propto I$ (no correlations,
# all inputs equally large): then $\delta w$ touches only $w_q$ and the saliency is $\propto w_q^2$.
# To **quantize** weight $q$ instead of pruning it, replace $w_q$ by $w_q - \operatorname{quant}(w_q)$:
# the same formula moves the other weights to absorb the rounding error (Optimal Brain Quantization,
# Frantar & Alistarh 2022).
#
# After weight $q$ is fixed, the remaining weights need the inverse Hessian *without* row and column $q$;
# it is one Gaussian elimination step on $H^{-1}$: $H^{-1} \leftarrow H^{-1} - H^{-1}_{:,q} H^{-1}_{q,:} / [H^{-1}]_{qq}$
# (`labkit.quant.obs_eliminate`).
#
# ### A worked demo: half of one row of LeNet-300-100's last layer
#
# We prune 50 of the 100 weights of the first output row of `fc3`, once by magnitude (set the 50
# smallest $|w|$ to 0) and once by OBS (50 greedy steps), and measure the output error on the
# calibration inputs.

# %%
lenet = nets["lenet_300_100"]
cal = calib_pool[:512]
X3 = lenet["relu2"].forward(lenet["fc2"].forward(lenet["relu1"].forward(lenet["fc1"].forward(cal))))
H3 = Q.hessian(X3) + 1e-4 * np.eye(X3.shape[1])  # a little damping: some inputs are dead (ReLU)
w = lenet["fc3"].W[0].astype(np.float64)

w_mag = w.copy()
w_mag[np.argsort(np.abs(w))[:50]] = 0.0

w_obs, H_inv, free = w.copy(), np.linalg.inv(H3), np.ones(len(w), bool)
for _ in range(50):
    saliency = np.where(free, w_obs**2 / (2 * np.where(free, np.diag(H_inv), 1.0)), np.inf)
    q = int(np.argmin(saliency))
    w_obs, _ = Q.obs_update(w_obs, H_inv, q)
    H_inv, free[q] = Q.obs_eliminate(H_inv, q), False

err = lambda v: Q.layer_output_error(w[None, :], v[None, :], X3)

# %% tags=["nbval-ignore-output"]
print(f"output error, magnitude: {err(w_mag):.4g}   OBS: {err(w_obs):.4g}   ratio {err(w_mag) / err(w_obs):.1f}x")

# %%
print("both prune exactly 50 of 100 weights:",
      "yes" if np.count_nonzero(w_mag == 0) == np.count_nonzero(w_obs == 0) == 50 else "no")
print(
    "OBS leaves less than half the output error of magnitude pruning:", "yes" if err(w_obs) < err(w_mag) / 2 else "no"
)

# %% [markdown]
# ## 2. From OBS to GPTQ: why a fixed order and one $H^{-1}$ make it fast
#
# Greedy OBQ quantizes one row at a time, each time searching the cheapest weight and updating an
# $d \times d$ inverse: $O(d^3)$ per row, $O(d_\text{out}\, d^3)$ per layer — hours for an LLM layer.
# GPTQ (Frantar et al. 2023) makes three changes:
#
# 1. **The same order for every row.** Quantize the columns left to right instead of greedily. The
#    greedy order buys little on large layers (the paper's observation), and now every row needs the
#    *same* sequence of inverse Hessians, because $H$ depends only on $X$: one sequence for all rows,
#    all rows updated at once (a rank-1 update of the whole remaining block).
# 2. **The sequence is a Cholesky factor.** Eliminating columns $1, 2, \dots$ in order from $H^{-1}$
#    leaves, in row $q$, exactly row $q$ of the upper Cholesky factor $U$ of $H^{-1}$ (times $U_{qq}$).
#    So one $O(d^3)$ factorisation replaces $d$ eliminations, and it is numerically stable (with damping
#    $H + \lambda\,\overline{\operatorname{diag}(H)}\, I$, the `damp` option).
# 3. **Lazy batches.** Errors are applied to the columns inside a block of 128 at once, and to the
#    rest of the matrix once per block: the same arithmetic, fewer memory passes.
#
# Total: $O(d^3 + d_\text{out}\, d^2)$ instead of $O(d_\text{out}\, d^3)$. Below, greedy OBQ
# (`labkit.quant.obq_quantize_row`) and GPTQ on LeNet-300-100's `fc2` (100 × 300) at 3 bits, one
# scale per row; OBQ on 10 rows only, because it is slow.

# %% tags=["skip-grading"]
X2 = lenet["relu1"].forward(lenet["fc1"].forward(cal))
W2 = lenet["fc2"].W
H2 = Q.hessian(X2)
scale2, zero2 = Q.groupwise_params(W2, 3)
rows = np.arange(10)
t0 = time.perf_counter()
obq_rows = np.stack([Q.obq_quantize_row(W2[r], H2, 3, scale2[r, 0], zero2[r, 0])[0] for r in rows])
t_obq = (time.perf_counter() - t0) / len(rows)
t0 = time.perf_counter()
gptq2 = Q.gptq_quantize(W2, X2, 3).W_hat
t_gptq = (time.perf_counter() - t0) / len(W2)
rtn2 = Q.dequantize_groupwise(*Q.quantize_groupwise(W2, 3))
e_rows = {name: Q.layer_output_error(W2[rows], M[rows] if len(M) > 10 else M, X2)
          for name, M in [("RTN", rtn2), ("OBQ (greedy)", obq_rows), ("GPTQ (fixed order)", gptq2)]}

# %% tags=["nbval-ignore-output", "skip-grading"]
for name, e in e_rows.items():
    print(f"{name:19s} output error on rows 0-9: {e:.4g}")
print(f"time per row, measured in this run: GPTQ {t_obq / t_gptq:.0f}x faster than greedy OBQ")

# %% tags=["skip-grading"]
print("GPTQ's output error below RTN's on rows 0-9:", "yes" if e_rows["GPTQ (fixed order)"] < e_rows["RTN"] else "no")
print("greedy OBQ's output error below RTN's on rows 0-9:", "yes" if e_rows["OBQ (greedy)"] < e_rows["RTN"] else "no")
# with uncorrelated inputs of equal size (H ∝ I) there is nothing to compensate: GPTQ is RTN, bit for bit
eye_X = np.eye(W2.shape[1], dtype=np.float32)
print("with H ∝ I, GPTQ equals round-to-nearest exactly:",
      "yes" if np.array_equal(Q.gptq_quantize(W2, eye_X, 3).q, Q.quantize_groupwise(W2, 3)[0]) else "no")


# %% [markdown]
# The same sweep with "set to 0" instead of "round" is **SparseGPT**: for each block of columns it
# picks the weights to prune by the OBS saliency $w^2/[U_{jj}]^2$ (given the columns already fixed) and
# spreads each pruned weight's error over the columns to its right.
#
# **Wanda** asks what is left of OBS if $H$ is replaced by its diagonal and nothing is updated: the
# saliency becomes $\tfrac12 w_{ij}^2 H_{jj} = w_{ij}^2\, \lVert X_{:,j} \rVert_2^2$, i.e. the score
# $S_{ij} = |W_{ij}| \cdot \lVert X_{:,j}\rVert_2$, compared **within each output row** (each row loses
# the same number of weights). No inverse, no update — one pass.
#
# **AWQ** keeps RTN but rescales first: multiply input channel $j$ of $W$ by $s_j > 1$ and divide the
# input by $s_j$ (folded into the previous layer, so the float function is unchanged). Channels with
# large activations then lose relatively less to rounding. The scales are $s = s_X^{\alpha}$ with
# $s_X = \operatorname{mean}|X_{:,j}|$, and $\alpha \in [0, 1]$ is searched on the calibration data to
# minimise the layer's output error ($\alpha = 0$ is RTN).
#
# **2:4 sparsity** keeps exactly 2 of every 4 consecutive weights along the input axis: 50 % sparse,
# but regular enough for hardware (NVIDIA's sparse tensor cores) — values plus a 2-bit position each.
# **Group-wise int4** stores 4-bit integers with one scale and zero point per group of $g$ consecutive
# inputs (32–128): a finer grid than one scale per row, for $\approx (32 + 8)/g$ extra bits per weight.

# %% [markdown]
# ## 3. Graded exercises
#
# Conventions: `W` is (out, in), `X` is (n, in), masks are boolean with `True` = kept, rounding is
# `np.rint` (half to even) then clamp. Each check runs your function on fixed and random cases.
#
# ### Exercise 1 — the OBS update for one weight (2 points)
#
# Write `obs_prune_one(w, H, q)` for a row `w` (d,), a symmetric positive definite `H` (d, d) and an
# index `q`. Return the pair `(w_new, delta_loss)`: `w_new` a numpy array of shape (d,), the row after
# removing weight `q` and compensating with the others, $w + \delta w$ (with `w_new[q]` set to exactly
# 0), and `delta_loss` the number $\Delta E = w_q^2 / (2[H^{-1}]_{qq})$ (both checked to relative 1e-5).
# When your answer is right, the check prints
# `obs_prune_one: δw and ΔL = w_q²/(2[H⁻¹]_qq) correct on 5 rows (w_q ends at exactly 0)`.

# %% nbgrader={"grade": false, "grade_id": "obs_prune_one", "locked": false, "schema_version": 3, "solution": true, "task": false}
def obs_prune_one(w, H, q):
    ### BEGIN SOLUTION
    H_inv = np.linalg.inv(H)
    d = H_inv[q, q]
    w_new = w - (w[q] / d) * H_inv[:, q]
    w_new[q] = 0.0
    return w_new, w[q] ** 2 / (2 * d)
    ### END SOLUTION


# %% labkit={"answer": "obs_prune_one"} nbgrader={"grade": true, "grade_id": "check_obs_prune_one", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
from labkit.check import lab09

lab09.obs_prune_one(obs_prune_one)


# %% [markdown]
# ### Exercise 2 — the Wanda score and mask (2 points)
#
# Write `wanda_mask(W, X, sparsity)`: score $S_{ij} = |W_{ij}| \cdot \lVert X_{:,j}\rVert_2$ (the L2
# norm of input feature $j$ over the $n$ calibration inputs, not squared, not a mean), then in **each
# output row** remove the `floor(sparsity · in)` weights of lowest score; among equal scores the
# earlier column goes first. Return a numpy array of dtype bool and shape (out, in), `True` = kept.
# When your answer is right, the check prints `wanda_mask: |W|·‖X_j‖₂ ranked per output row, correct on 5 layers`.

# %% nbgrader={"grade": false, "grade_id": "wanda_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def wanda_mask(W, X, sparsity):
    ### BEGIN SOLUTION
    score = np.abs(W) * np.linalg.norm(X, axis=0)
    k = int(np.floor(sparsity * W.shape[1]))
    mask = np.ones(W.shape, dtype=bool)
    lowest = np.argsort(score, axis=1, kind="stable")[:, :k]
    np.put_along_axis(mask, lowest, False, axis=1)
    return mask
    ### END SOLUTION


# %% labkit={"answer": "wanda_mask"} nbgrader={"grade": true, "grade_id": "check_wanda_mask", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab09.wanda_mask(wanda_mask)


# %% [markdown]
# ### Exercise 3 — the N:M mask (1 point)
#
# Write `nm_mask(W, n, m)`: in every run of `m` consecutive weights of a row (inputs `0..m-1`,
# `m..2m-1`, …; `in` is a multiple of `m`) keep the `n` of largest $|w|$; among equal $|w|$ the
# earlier weight is kept. Return a numpy array of dtype bool and W's shape, `True` = kept.
# When your answer is right, the check prints
# `nm_mask: exactly n of every m consecutive weights kept (largest |w|), correct on 6 matrices`.

# %% nbgrader={"grade": false, "grade_id": "nm_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def nm_mask(W, n, m):
    ### BEGIN SOLUTION
    out, d = W.shape
    groups = np.abs(W).reshape(out, d // m, m)
    largest = np.argsort(-groups, axis=2, kind="stable")[:, :, :n]
    mask = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(mask, largest, True, axis=2)
    return mask.reshape(out, d)
    ### END SOLUTION


# %% labkit={"answer": "nm_mask"} nbgrader={"grade": true, "grade_id": "check_nm_mask", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab09.nm_mask(nm_mask)


# %% [markdown]
# ### Exercise 4 — group-wise quantization (2 points)
#
# Write `quantize_groupwise(W, bits, group_size)` (`in` is a multiple of `group_size`): for each row and
# each group of `group_size` consecutive inputs, widen the group's range to contain 0
# ($\ell = \min(w, 0)$, $h = \max(w, 0)$), take `scale = (h − ℓ) / (2^bits − 1)` (1 if $h = \ell$),
# `zero = clamp(rint(−ℓ / scale), 0, 2^bits − 1)` and `q = clamp(rint(w / scale) + zero, 0, 2^bits − 1)`
# (`rint` rounds half to even). Return the triple `(q, scale, zero)`: `q` of shape (out, in), `scale`
# and `zero` of shape (out, in // group_size); **`q` and `zero` must be integer arrays** (e.g. uint8:
# a float zero point fails even when its values are whole numbers), `scale` a float array (float32,
# as stored; a float64 scale is accepted too, checked to relative 1e-6; `q` and `zero` must match
# exactly). When your answer is right, the check prints
# `quantize_groupwise: q, scale and zero correct for 7 layers (groups along the input axis)`.

# %% nbgrader={"grade": false, "grade_id": "quantize_groupwise", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize_groupwise(W, bits, group_size):
    ### BEGIN SOLUTION
    out, d = W.shape
    qmax = 2**bits - 1
    g = W.reshape(out, d // group_size, group_size).astype(np.float64)
    lo, hi = np.minimum(g.min(axis=2), 0.0), np.maximum(g.max(axis=2), 0.0)
    scale = np.where(hi > lo, (hi - lo) / qmax, 1.0).astype(np.float32)
    zero = np.clip(np.rint(-lo / scale), 0, qmax)
    q = np.clip(np.rint(g / scale[..., None]) + zero[..., None], 0, qmax)
    return q.reshape(out, d).astype(np.uint8), scale, zero.astype(np.uint8)
    ### END SOLUTION


# %% labkit={"answer": "quantize_groupwise"} nbgrader={"grade": true, "grade_id": "check_quantize_groupwise", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab09.quantize_groupwise(quantize_groupwise)


# %% [markdown]
# ### Exercise 5 — group-wise dequantization (1 point)
#
# Write `dequantize_groupwise(q, scale, zero, group_size)` returning `scale · (q − zero)` as float32
# (out, in), each scale and zero point covering its `group_size` consecutive columns (repeat each,
# don't tile). `q` and `zero` are `uint8`: widen them to a signed integer type before subtracting
# (uint8 arithmetic wraps around). The result must be a numpy array of dtype float32 and q's shape
# (float64 with the right values fails); values are checked to relative 1e-6. When your answer is
# right, the check prints
# `dequantize_groupwise: scale · (q − zero) per group, float32, correct on 4 layers`.

# %% nbgrader={"grade": false, "grade_id": "dequantize_groupwise", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dequantize_groupwise(q, scale, zero, group_size):
    ### BEGIN SOLUTION
    s = np.repeat(scale, group_size, axis=1)
    z = np.repeat(zero.astype(np.int32), group_size, axis=1)
    return (s * (q.astype(np.int32) - z)).astype(np.float32)
    ### END SOLUTION


# %% labkit={"answer": "dequantize_groupwise"} nbgrader={"grade": true, "grade_id": "check_dequantize_groupwise", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab09.dequantize_groupwise(dequantize_groupwise)


# %% [markdown]
# Your functions are what `labkit` uses at scale: `labkit.prune.wanda_mask(W, X, sparsity)`,
# `labkit.prune.nm_mask(W, n, m)`, `labkit.quant.quantize_groupwise(W, bits, group_size)` and
# `labkit.quant.obs_update(w, H_inv, q)` compute the same results (the tests check it). From here
# on the lab uses the library, with the model-level driver
# `labkit.prune.compress_layerwise(model, calib, method, **options)`: it compresses the layers in
# order, each on the calibration outputs of the layers before it **after** their compression, as the
# GPTQ and SparseGPT papers do.

# %% [markdown]
# ## 4. Choices on validation: calibration size, damping, AWQ's grid
#
# GPTQ at 3 bits, groups of 64, on LeNet-300-100, for 128, 512 and 1,024 calibration images and
# damping 0.001, 0.01 and 0.1; AWQ's α grid of 5, 10 or 20 steps. The choice is the highest
# validation accuracy (ties: the cheaper setting). These choices are then used for every model.

# %%
def val_acc(net):
    return train.evaluate(net, X_val, y_val)


choice_grid = {}
for n_cal in (128, 512, 1024):
    for damp in (0.001, 0.01, 0.1):
        net, _ = P.compress_layerwise(lenet, calib_pool[:n_cal], "gptq", bits=3, group_size=64, damp=damp)
        choice_grid[n_cal, damp] = val_acc(net)
N_CAL, DAMP = max(choice_grid, key=lambda k: (choice_grid[k], -k[0], -k[1]))
grid_acc = {g: val_acc(P.compress_layerwise(lenet, calib_pool[:N_CAL], "awq", bits=3, group_size=64, grid=g)[0])
            for g in (5, 10, 20)}
GRID = max(grid_acc, key=lambda g: (grid_acc[g], -g))
CAL = calib_pool[:N_CAL]

# %% tags=["nbval-ignore-output"]
print("GPTQ 3-bit g64, validation accuracy (%):")
print("calibration \\ damp " + "".join(f"{d:>8}" for d in (0.001, 0.01, 0.1)))
for n_cal in (128, 512, 1024):
    print(f"{n_cal:>19,}" + "".join(f"{100 * choice_grid[n_cal, d]:8.2f}" for d in (0.001, 0.01, 0.1)))
print("AWQ 3-bit g64 by grid:", {g: round(100 * a, 2) for g, a in grid_acc.items()})
print(f"chosen: {N_CAL} calibration images, damp {DAMP}, AWQ grid {GRID}")
spread = 100 * (max(choice_grid.values()) - min(choice_grid.values()))
print(f"spread over the 9 GPTQ settings: {spread:.2f} pp (one validation image is 0.05 pp)")

# %% [markdown]
# In our run the nine GPTQ settings span about 0.7 pp (about 14 validation images) and AWQ's three grids
# about 0.35 pp — within the noise of 2,000 images (the standard error of one accuracy near 88 % is about
# 0.7 pp). The choice matters little here, and that is itself the finding: GPTQ is not fragile in its
# damping or calibration size on these models, and no setting is consistently better. The winner's
# validation score is the largest of nine noisy numbers, so it flatters the winner; that is one reason
# the claims are judged on the untouched test set (section 9). The chosen values are printed above; the
# rest of the lab uses them.

# %% [markdown]
# ## 5. Experiment — accuracy vs bits: RTN, GPTQ, AWQ
#
# LeNet-300-100 at 8, 6, 4, 3 and 2 bits with groups of 64, and at 3 and 4 bits with one scale per row
# ("row") and groups of 128 and 32. The teacher and LeNet-5 at 3 and 4 bits (teacher) and 3 bits
# (LeNet-5, whose convolutions are slow in numpy), groups of 64. All on validation, no retraining.

# %%
OPTS = {"rtn": {}, "gptq": {"damp": DAMP}, "awq": {"grid": GRID}}
METHODS_Q = ("rtn", "gptq", "awq")
quantized, q_info = {}, {}  # (model, bits, group, method) -> compressed network (reused once on test), its info


def quantize_net(name, bits, group, method):
    key = (name, bits, group, method)
    if key not in quantized:
        opts = OPTS[method]
        quantized[key], q_info[key] = P.compress_layerwise(nets[name], CAL, method, bits=bits, group_size=group, **opts)
    return quantized[key]


configs = [(b, 64) for b in (8, 6, 4, 3, 2)] + [(b, g) for b in (4, 3) for g in (None, 128, 32)]
acc_bits = {(b, g, m): val_acc(quantize_net("lenet_300_100", b, g, m)) for b, g in configs for m in METHODS_Q}
acc_other = {}
for name, bit_list in (("teacher", (4, 3)), ("lenet5", (3,))):
    for b in bit_list:
        for m in METHODS_Q:
            acc_other[name, b, m] = val_acc(quantize_net(name, b, 64, m))
base_val = {name: val_acc(net) for name, net in nets.items()}

# %% tags=["nbval-ignore-output"]
gname = lambda g: "row" if g is None else f"g{g}"
print("LeNet-300-100, validation accuracy (%), float:", round(100 * base_val["lenet_300_100"], 2))
print(f"{'bits':>4} {'group':>5}" + "".join(f"{m:>8}" for m in METHODS_Q))
for b, g in configs:
    print(f"{b:>4} {gname(g):>5}" + "".join(f"{100 * acc_bits[b, g, m]:8.2f}" for m in METHODS_Q))
for (name, b, m), a in acc_other.items():
    print(f"{name:8s} {b} bits g64 {m:5s}: {100 * a:.2f}   (float {100 * base_val[name]:.2f})")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
bits_axis = [8, 6, 4, 3, 2]
for m, mk in zip(METHODS_Q, "osd"):
    axes[0].plot(bits_axis, [100 * acc_bits[b, 64, m] for b in bits_axis], marker=mk, label=m.upper())
axes[0].axhline(100 * base_val["lenet_300_100"], color="grey", ls=":", label="float")
axes[0].set(xticks=bits_axis, xlabel="bits (groups of 64)", ylabel="validation accuracy (%)",
            title="LeNet-300-100: accuracy vs bits")
axes[0].invert_xaxis()
axes[0].legend(loc="lower left")
group_axis = [None, 128, 64, 32]
for m, mk in zip(METHODS_Q, "osd"):
    axes[1].plot(range(4), [100 * acc_bits[3, g, m] for g in group_axis], marker=mk, label=m.upper())
axes[1].set(xticks=range(4), xticklabels=[gname(g) for g in group_axis], xlabel="group size at 3 bits",
            ylabel="validation accuracy (%)", title="LeNet-300-100: 3 bits by group size")
axes[1].legend(loc="lower right")
plot.show(fig, alt=(
    "Left: validation accuracy of LeNet-300-100 against bits (8, 6, 4, 3, 2; groups of 64) for RTN, GPTQ and "
    "AWQ; all three stay at the float line down to 4 bits and separate at 3 and 2 bits, where GPTQ is highest. "
    "Right: at 3 bits, accuracy for one scale per row and groups of 128, 64 and 32; smaller groups help RTN most."
))

# %%
fl = base_val["lenet_300_100"]
print("LeNet-300-100: every method within 1 pp of float at 8 and 6 bits:",
      "yes" if all(acc_bits[b, 64, m] > fl - 0.01 for b in (8, 6) for m in METHODS_Q) else "no")
print("LeNet-300-100: at 2 bits (g64) GPTQ at least 5 pp above RTN:",
      "yes" if acc_bits[2, 64, "gptq"] > acc_bits[2, 64, "rtn"] + 0.05 else "no")
print("LeNet-300-100: at 3 bits RTN with groups of 32 at least 1 pp above one scale per row:",
      "yes" if acc_bits[3, 32, "rtn"] > acc_bits[3, None, "rtn"] + 0.01 else "no")
print("LeNet-5: 3-bit g64 GPTQ above RTN on validation:",
      "yes" if acc_other["lenet5", 3, "gptq"] > acc_other["lenet5", 3, "rtn"] else "no")
print("LeNet-5: 3-bit g64 GPTQ at least 3 pp above RTN on validation:",
      "yes" if acc_other["lenet5", 3, "gptq"] > acc_other["lenet5", 3, "rtn"] + 0.03 else "no")
print("LeNet-300-100: at 2 bits (g64) AWQ below RTN on validation, although α = 0 is RTN:",
      "yes" if acc_bits[2, 64, "awq"] < acc_bits[2, 64, "rtn"] else "no")


# %% [markdown]
# Reading the verdicts: down to 4 bits, groups of 64 leave little for any method to win. GPTQ pays
# where RTN hurts: 2 bits, and LeNet-5, whose small convolutions have only 25 and 150 weights per
# output channel. On LeNet-5 GPTQ is above RTN on validation, but by less than the 3 pp the second
# verdict asks for; whether the gain holds on unseen images is for the test set (section 9). The last
# verdict is a puzzle: AWQ searches α from 0 (plain RTN) upwards and keeps the α with the smallest
# output error, so how can it end *below* RTN?
#
# ### Why AWQ falls below RTN at 2 bits: the search minimises an error that is not the accuracy
#
# AWQ picks α per layer by the layer's output error on the calibration images. The control below
# measures, on the **validation** images, what that search optimises and what we score: the output
# error of each layer (mean of $\lVert (\hat W - W)x\rVert^2$, each layer fed by the compressed layers
# before it, as in the search), the error of the logits against the float model's, how often the
# prediction stays the float model's, and how many images are called "shirt" (class 6, the class the
# float model confuses most). Then the same quantities for the same α in every layer, from 0 (RTN) to
# 0.45, without any search.

# %%
def layer_errors(net_hat, net, X):
    """Per weight layer: mean over inputs of ‖(Ŵ − W) x‖², x the layer's input in ``net_hat``.

    Each layer is fed by the compressed layers before it, as `compress_layerwise` feeds it; on the
    calibration images this is the driver's own ``info[layer]["error"]``.
    """
    errors, x = {}, X
    for layer, orig in zip(net_hat.layers, net.layers):
        if hasattr(layer, "W"):
            dW = layer.W.astype(np.float64) - orig.W.astype(np.float64)
            D = P.layer_inputs(layer, x).astype(np.float64) @ dW.reshape(len(dW), -1).T
            errors[layer.name] = float(np.mean(np.sum(D**2, axis=1)))
        x = layer.forward(x)
    return errors


def awq_fixed_alpha(net, alpha, bits=2, group=64):
    """AWQ's scaling with the same α in every layer (no search), layer by layer on the calibration images."""
    net, x = net.copy(), CAL
    for layer in net.layers:
        if hasattr(layer, "W"):
            s = np.maximum(Q.activation_scale(P.layer_inputs(layer, x)) ** alpha, 1e-4)
            s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)
            q, scale, zero = Q.quantize_groupwise((layer.W.astype(np.float64) * s).astype(np.float32), bits, group)
            layer.W = (Q.dequantize_groupwise(q, scale, zero, group).astype(np.float64) / s).astype(np.float32)
        x = layer.forward(x)
    return net


SHIRT = data.class_names.index("Shirt")
logits_float = lenet.predict_logits(X_val)


def two_bit_row(net):
    logits = net.predict_logits(X_val)
    return {"accuracy": float(np.mean(logits.argmax(1) == y_val)),
            "logit error": float(np.mean(np.sum((logits - logits_float) ** 2, axis=1))),
            "same as float": float(np.mean(logits.argmax(1) == logits_float.argmax(1))),
            "called shirt": int(np.sum(logits.argmax(1) == SHIRT))}


rtn2, awq2 = quantize_net("lenet_300_100", 2, 64, "rtn"), quantize_net("lenet_300_100", 2, 64, "awq")
awq_control = {label: two_bit_row(net) for label, net in (("float", lenet), ("RTN", rtn2), ("AWQ (α searched)", awq2))}
awq_layer_error = {label: layer_errors(net, lenet, X_val) for label, net in (("RTN", rtn2), ("AWQ (α searched)", awq2))}
ALPHAS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
alpha_sweep = {a: two_bit_row(awq_fixed_alpha(lenet, a)) for a in ALPHAS}

# %% tags=["nbval-ignore-output"]
print("AWQ's α per layer (0 = no scaling, plain RTN for that layer):")
for name in ("lenet_300_100", "teacher", "lenet5"):
    alphas = {ln: round(v["alpha"], 2) for ln, v in q_info[name, 3, 64, "awq"].items()}
    print(f"   3 bits g64, {name:14s} {alphas}")
print("   2 bits g64, lenet_300_100 ", {ln: round(v["alpha"], 2) for ln, v in q_info["lenet_300_100", 2, 64, "awq"].items()})
print("\nlayer output error on validation, 2 bits g64 (fc1 / fc2 / fc3):")
for label, errs in awq_layer_error.items():
    print(f"   {label:17s}", " / ".join(f"{e:.2f}" for e in errs.values()))
print(f"\nLeNet-300-100 at 2 bits, g64, on the {len(y_val):,} validation images:")
print(f"{'model':22s} {'accuracy':>9} {'logit error':>12} {'same as float':>14} {'called shirt':>13}")
rows = [*awq_control.items(), *((f"same α = {a:.2f}, all layers", r) for a, r in alpha_sweep.items())]
for label, r in rows:
    print(f"{label:26s} {100 * r['accuracy']:6.2f}% {r['logit error']:11.2f} {100 * r['same as float']:13.1f}% "
          f"{r['called shirt']:13,}")

# %%
e_rtn, e_awq = awq_layer_error["RTN"], awq_layer_error["AWQ (α searched)"]
print("at 2 bits AWQ's output error is below RTN's in every layer, on validation images too:",
      "yes" if all(e_awq[k] < e_rtn[k] for k in e_rtn) else "no")
print("... and so is its logit error against the float model:",
      "yes" if awq_control["AWQ (α searched)"]["logit error"] < awq_control["RTN"]["logit error"] else "no")
acc_a = {a: r["accuracy"] for a, r in alpha_sweep.items()}
err_a = {a: r["logit error"] for a, r in alpha_sweep.items()}
print(f"same α in every layer: the highest accuracy is at α = {max(acc_a, key=acc_a.get):.2f}, "
      f"the lowest logit error at α = {min(err_a, key=err_a.get):.2f}")
print("over the α sweep the accuracy spans more than 3 pp:", "yes" if max(acc_a.values()) - min(acc_a.values()) > 0.03 else "no")

# %% [markdown]
# The search did its job: on images it never saw, AWQ's layers and its logits are *closer* to the float
# model's than RTN's. But the accuracy depends on which logit is largest, not on the squared distance of
# all ten logits, and at 2 bits, where every choice leaves large errors, the two part ways. The sweep
# shows how rough the accuracy is there: nudging α by 0.05 in every layer swings it by points, up and
# down, while the logit error follows its own course; the α with the lowest logit error is not the α
# with the highest accuracy. What moves the accuracy most is where the damage pushes the decisions:
# the models that score lowest call many more images "shirt", the class that borders T-shirt, pullover
# and coat, where a small shift flips a decision. AWQ's per-layer choice, made on the error it can
# measure, landed in one of those dips. Nothing in the search is broken (α = 0 was on its grid and lost
# on the error it measures); the layer error is a proxy, and at 3 bits, where the errors are small,
# proxy and accuracy agree again (the table above).

# %% [markdown]
# ### Why GPTQ gains more on some layers than on others: the conditioning of $H$
#
# GPTQ can only move error into directions the inputs do not use. If $H$ is nearly a multiple of the
# identity (inputs uncorrelated and of similar size), there is nothing to exploit and GPTQ ≈ RTN; if $H$
# is badly conditioned (strongly correlated inputs, some nearly dead), the compensation is large.
# Below: per layer, its size, the spread of $H$'s eigenvalues, its **rank deficit** $d - \operatorname{rank}
# H$ (directions in which the calibration inputs have no component at all), the inputs that are 0 on
# every calibration image, and the output error of 3-bit g64 RTN divided by GPTQ's — on the 512
# calibration images GPTQ was fitted on, and on the 2,000 validation images it never saw (each layer
# fed by the compressed layers before it, as in the fit).

# %%
layer_rows = []
for name in ("lenet_300_100", "teacher"):
    err = {method: {split: layer_errors(quantize_net(name, 3, 64, method), nets[name], X)
                    for split, X in (("calibration", CAL), ("validation", X_val))} for method in ("rtn", "gptq")}
    x = CAL
    for layer in nets[name].layers:
        if hasattr(layer, "W"):
            X_l = P.layer_inputs(layer, x)
            ev = np.linalg.eigvalsh(Q.hessian(X_l))
            live = ev > 1e-8 * ev.max()
            ratio = {split: err["rtn"][split][layer.name] / err["gptq"][split][layer.name]
                     for split in ("calibration", "validation")}
            layer_rows.append((name, layer.name, layer.W.shape, ev.max() / ev[live].min(), int((~live).sum()),
                               int(np.all(X_l == 0, axis=0).sum()), ratio["calibration"], ratio["validation"]))
        x = layer.forward(x)

# %% tags=["nbval-ignore-output"]
print(f"{'':36s} {'cond(H),':>10s} {'rank':>7s} {'inputs':>7s}   {'RTN / GPTQ output error':>23s}")
print(f"{'model':14s} {'layer':6s} {'W shape':>12s}  {'live part':>10s} {'deficit':>7s} {'always 0':>8s} "
      f"{'calibration':>11s} {'validation':>11s}")
for name, lname, shape, cond, deficit, zero, r_cal, r_val in layer_rows:
    print(f"{name:14s} {lname:6s} {str(shape):>12s}  {cond:10.3g} {deficit:7d} {zero:8d} {r_cal:11.2f} {r_val:11.2f}")

# %%
print(f"calibration images: {len(CAL)}")
for name, lname, shape, _c, deficit, _z, _rc, _rv in layer_rows:
    d = int(np.prod(shape[1:]))
    if d > len(CAL):
        print(f"{name} {lname}: {d} inputs > {len(CAL)} images, rank deficit at least {d} − {len(CAL)} = {d - len(CAL)}:",
              "yes" if deficit >= d - len(CAL) else "no")
print("GPTQ lowers the output error of every layer on calibration images (RTN/GPTQ > 1):",
      "yes" if all(r[6] > 1 for r in layer_rows) else "no")
print("... and on validation images:", "yes" if all(r[7] > 1 for r in layer_rows) else "no")
print("on every layer the ratio is smaller on validation than on calibration:",
      "yes" if all(r[7] < r[6] for r in layer_rows) else "no")
wide = [r for r in layer_rows if int(np.prod(r[2][1:])) > len(CAL)]
narrow = [r for r in layer_rows if int(np.prod(r[2][1:])) <= len(CAL)]
print(f"on the {len(wide)} layers with more inputs than calibration images, the validation ratio is below half the "
      f"calibration one: {'yes' if all(r[7] < r[6] / 2 for r in wide) else 'no'}")
print(f"on the {len(narrow)} narrower layers it is above half: {'yes' if all(r[7] > r[6] / 2 for r in narrow) else 'no'}")

# %% [markdown]
# On the calibration images GPTQ divides the output error of every layer by 10.80 (the teacher's `fc2`)
# to 44.24 (its `fc1`); on the validation images, by 3.40 to 16.60. The gain shrinks on every layer,
# and most on the four layers with more inputs than calibration images. The reason is in the rank
# column. With $n$ = 512 calibration images, $H = X^\top X / n$
# has rank at most 512: `fc1` (784 inputs) has at least $784 - 512 = 272$ directions that no
# calibration image uses, and the teacher's 1200-wide layers at least 688. (Only a handful of inputs
# are truly dead: the "always 0" column.) GPTQ solves a least-squares problem on the calibration
# images, so it is free to push rounding error into those unseen directions at no cost *there* — but
# a new image does have components in them. Part of the calibration gain is **overfitting to the
# calibration set**, and it is largest where the layer is wide compared with the number of images.
# The accuracy barely moves on LeNet-300-100 and the teacher at 3–4 bits with groups of 64 anyway,
# because RTN with groups of 64 already loses little (compare the "row" and "g64" rows of the table).
#
# ### Calibration overfitting: calibration size against layer width
#
# The control: GPTQ (3 bits, g64) on LeNet-300-100's `fc1` ($d$ = 784 inputs) and `fc2` ($d$ = 300),
# each on its float inputs, with 128 to 4,096 calibration images (training split), and the RTN/GPTQ
# error ratio on those images and on the validation images.

# %%
big_pool = data.X_train[np.random.default_rng(0).permutation(len(data.X_train))[:4096]]  # starts with calib_pool
CAL_SIZES = (128, 256, 512, 1024, 2048, 4096)
overfit = {}
x_pool, x_val = big_pool, X_val
for layer in lenet.layers:
    if layer.name in ("fc1", "fc2"):
        W = layer.W
        W_rtn = Q.dequantize_groupwise(*Q.quantize_groupwise(W, 3, 64), 64)
        for n_cal in CAL_SIZES:
            W_gptq = Q.gptq_quantize(W, x_pool[:n_cal], 3, group_size=64, damp=DAMP).W_hat
            overfit[layer.name, n_cal] = tuple(Q.layer_output_error(W, W_rtn, X) / Q.layer_output_error(W, W_gptq, X)
                                               for X in (x_pool[:n_cal], x_val))
    x_pool, x_val = layer.forward(x_pool), layer.forward(x_val)

# %% tags=["nbval-ignore-output"]
print("RTN / GPTQ output error, 3 bits g64, calibration → validation images")
print(f"{'calibration images':>18s}" + "".join(f"{n:>16,}" for n in CAL_SIZES))
for lname, d in (("fc1", 784), ("fc2", 300)):
    print(f"{lname + f' (d = {d})':>18s}" + "".join(f"{overfit[lname, n][0]:7.1f} → {overfit[lname, n][1]:5.1f}"
                                                  for n in CAL_SIZES))

# %%
for lname in ("fc1", "fc2"):
    val = [overfit[lname, n][1] for n in CAL_SIZES]
    gap = [overfit[lname, n][0] / overfit[lname, n][1] for n in CAL_SIZES]
    print(f"{lname}: the held-out gain grows with every doubling of the calibration set:",
          "yes" if all(b > a for a, b in zip(val, val[1:])) else "no")
    print(f"{lname}: the calibration ratio overstates the held-out one at least 3x as much at 128 images as at 4,096:",
          "yes" if gap[0] > 3 * gap[-1] else "no")

# %% [markdown]
# With fewer images than inputs the calibration gain is mostly fitted noise (`fc1` at 128 images);
# as the calibration set grows past the layer width the two ratios meet, and the gain on new images
# *grows*: more calibration data makes GPTQ both more honest and better. The narrow `fc2` (300 inputs)
# gets there with fewer images than the wide `fc1` (784). The rule of thumb: calibrate with a few
# times as many samples (for an LLM: tokens) as the layer has inputs, and judge the result on data
# the method did not see — section 4 chose 512 images on validation accuracy, and the validation
# column above is the honest measure of what GPTQ buys per layer.

# %% [markdown]
# ## 6. Experiment — accuracy vs sparsity: magnitude, Wanda, SparseGPT
#
# LeNet-300-100 at 50–90 % and at 2:4; the teacher at 50 % and 2:4. Magnitude is layer-wise (lab 01's
# baseline); Wanda compares per output row; SparseGPT reconstructs. (LeNet-5's convolutions have 25 and
# 150 inputs per output: conv1 is not 2:4-able, and its slow numpy convolutions would blow the time budget,
# so it sits this one out.)

# %%
METHODS_P = ("magnitude", "wanda", "sparsegpt")
SPARSITIES = (0.5, 0.6, 0.7, 0.8, 0.9)
pruned = {}


def prune_net(name, pattern, method):
    key = (name, pattern, method)
    if key not in pruned:
        kw = {"n": 2, "m": 4} if pattern == "2:4" else {"sparsity": pattern}
        if method == "sparsegpt":
            kw["damp"] = DAMP
        pruned[key] = P.compress_layerwise(nets[name], CAL, method, **kw)[0]
    return pruned[key]


acc_sp = {(s, m): val_acc(prune_net("lenet_300_100", s, m)) for s in (*SPARSITIES, "2:4") for m in METHODS_P}
acc_sp_teacher = {(s, m): val_acc(prune_net("teacher", s, m)) for s in (0.5, "2:4") for m in METHODS_P}

# %% tags=["nbval-ignore-output"]
print(f"LeNet-300-100, validation accuracy (%), float {100 * base_val['lenet_300_100']:.2f}")
print(f"{'sparsity':>8}" + "".join(f"{m:>11}" for m in METHODS_P))
for s in (*SPARSITIES, "2:4"):
    print(f"{str(s):>8}" + "".join(f"{100 * acc_sp[s, m]:11.2f}" for m in METHODS_P))
print(f"teacher, float {100 * base_val['teacher']:.2f}")
for s in (0.5, "2:4"):
    print(f"{str(s):>8}" + "".join(f"{100 * acc_sp_teacher[s, m]:11.2f}" for m in METHODS_P))
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for m, mk in zip(METHODS_P, "osd"):
    ax.plot([100 * s for s in SPARSITIES], [100 * acc_sp[s, m] for s in SPARSITIES], marker=mk, label=m)
ax.axhline(100 * base_val["lenet_300_100"], color="grey", ls=":", label="float")
ax.set(xticks=[100 * s for s in SPARSITIES], xlabel="sparsity (%), no retraining", ylabel="validation accuracy (%)",
       title="LeNet-300-100: one-shot pruning")
ax.legend(loc="lower left")
plot.show(fig, alt=(
    "Validation accuracy of LeNet-300-100 pruned one-shot to 50, 60, 70, 80 and 90 percent sparsity, without "
    "retraining, for magnitude, Wanda and SparseGPT. SparseGPT stays highest at every sparsity, by most at 80 and "
    "90 percent; Wanda is level with magnitude at 50 percent and below it beyond."
))

# %%
print("LeNet-300-100: SparseGPT above magnitude and Wanda at every sparsity from 50 to 90 %:",
      "yes" if all(acc_sp[s, "sparsegpt"] > max(acc_sp[s, "magnitude"], acc_sp[s, "wanda"]) for s in SPARSITIES)
      else "no")
print("LeNet-300-100: at 90 % SparseGPT at least 10 pp above magnitude:",
      "yes" if acc_sp[0.9, "sparsegpt"] > acc_sp[0.9, "magnitude"] + 0.10 else "no")


# %% [markdown]
# ### Why does Wanda fall behind magnitude beyond 50 %, when it beats it on LLMs?
#
# Wanda differs from layer-wise magnitude pruning in two ways: it compares weights **within each
# output row** instead of across the whole layer, and it scores $|W_{ij}|\,\lVert X_j\rVert$ instead
# of $|W_{ij}|$. Two controls separate them. **Per-row magnitude** (`compress_layerwise(...,
# "magnitude", per_row=True)`) has Wanda's comparison group without its weighting. And since the
# driver feeds each layer the outputs of the layers *already pruned* before it (as the papers do),
# Wanda's norms $\lVert X_j\rVert$ are those of a damaged network; **Wanda with the float model's
# norms** (`sequential=False`) takes them from the intact network instead. For each mask, the last
# columns count the hidden units cut off entirely (every outgoing weight pruned) in `fc2` and `fc3`.

# %%
def cut_off_units(net):
    """Inputs of fc2 and fc3 whose every outgoing weight is pruned (a hidden unit disconnected)."""
    return sum(int(np.all(~net[name].mask, axis=0).sum()) for name in ("fc2", "fc3"))


wanda_ctrl = {}
for s in SPARSITIES:
    for label, method, opts in (("layer-wise magnitude", "magnitude", {}),
                                ("per-row magnitude", "magnitude", {"per_row": True}),
                                ("Wanda", "wanda", {}),
                                ("Wanda, float-model norms", "wanda", {"sequential": False})):
        net = prune_net("lenet_300_100", s, method) if not opts else \
            P.compress_layerwise(lenet, CAL, method, sparsity=s, **opts)[0]
        wanda_ctrl[s, label] = (val_acc(net), cut_off_units(net))
CTRL = ("layer-wise magnitude", "per-row magnitude", "Wanda", "Wanda, float-model norms")

# %% tags=["nbval-ignore-output"]
print("LeNet-300-100, validation accuracy (%) and [hidden units cut off in fc2 + fc3]")
print(f"{'sparsity':>8}" + "".join(f"{label:>28}" for label in CTRL))
for s in SPARSITIES:
    print(f"{s:8.0%}" + "".join(f"{100 * wanda_ctrl[s, c][0]:21.2f} [{wanda_ctrl[s, c][1]:3d}]" for c in CTRL))

# %%
acc_c = {k: v[0] for k, v in wanda_ctrl.items()}
for s in (0.7, 0.8):
    grouping = acc_c[s, "layer-wise magnitude"] - acc_c[s, "per-row magnitude"]
    weighting = acc_c[s, "per-row magnitude"] - acc_c[s, "Wanda"]
    print(f"at {s:.0%}, Wanda's weighting costs more than its per-row grouping (validation):",
          "yes" if weighting > grouping + 0.02 else "no")
    print(f"at {s:.0%}, Wanda with the float model's norms is within 2 pp of per-row magnitude:",
          "yes" if abs(acc_c[s, "Wanda, float-model norms"] - acc_c[s, "per-row magnitude"]) < 0.02 else "no")
    print(f"at {s:.0%}, Wanda with the pruned network's norms cuts off more hidden units than with the float model's:",
          "yes" if wanda_ctrl[s, "Wanda"][1] > wanda_ctrl[s, "Wanda, float-model norms"][1] else "no")

# %% [markdown]
# What the controls show, at 70 and 80 % (the table gives every sparsity): the per-row comparison is
# not what hurts — per-row magnitude stays close to layer-wise magnitude there — while Wanda's weighting
# costs much more. And the weighting hurts only with the norms of the already-pruned network: with the
# float model's norms, Wanda ends close to per-row magnitude. A hidden unit weakened by the pruning of
# the layer before looks unimportant to the next layer, which then removes its outgoing weights; the
# pruned network's norms cut off more hidden units entirely, and the damage compounds from layer to
# layer. (At 90 % the per-row group costs most: both per-row masks fall far below the layer-wise one.)
#
# Wanda's premise is that a few input features have **huge** activations (outliers 100× the rest in
# LLMs), so that $\lVert X_j\rVert$ tells which weights matter. Our first layer's inputs are pixels in
# [0, 1] and the hidden ones are ReLU outputs of similar scale; the spread of the input norms, layer by
# layer:

# %%
x, norm_spread = CAL, {}
for layer in lenet.layers:
    if layer.name in ("fc1", "fc2", "fc3"):
        nrm = np.linalg.norm(P.layer_inputs(layer, x), axis=0)
        live = nrm[nrm > 0]
        norm_spread[layer.name] = (np.percentile(live, 99) / np.median(live), int((nrm == 0).sum()))
    x = layer.forward(x)

# %% tags=["nbval-ignore-output"]
for lname, (r, dead) in norm_spread.items():
    print(f"{lname}: 99th percentile / median of ‖X_j‖ = {r:.1f}, inputs that are always 0: {dead}")

# %% [markdown]
# No input stands out the way LLM outlier features do, so the weighting has little to gain here; what
# it does is follow the pruned network's weakened units, which is what the control above found.

# %% [markdown]
# ### How much is left for retraining?
#
# One epoch of fine-tuning with the masks fixed (`labkit.prune.MaskCallback`, Adam at a fixed
# learning rate of 3·10⁻³, not tuned here: lab 06 tunes the rate of its own, longer retraining) from
# each method's 80 % sparse LeNet-300-100, three seeds each, on the 18,000 training images; accuracies
# on validation.

# %%
SEEDS = (0, 1, 2)
tuned_correct = {}  # method -> bool (seeds, validation images): the per-seed, per-image outcome
for m in METHODS_P:
    rows = []
    for seed in SEEDS:
        net = prune_net("lenet_300_100", 0.8, m).copy()
        train.fit(net, (data.X_train, data.y_train), epochs=1, lr=3e-3, batch_size=128, seed=seed,
                  callbacks=[P.MaskCallback()], progress=False)
        rows.append(net.predict(X_val) == y_val)
    tuned_correct[m] = np.stack(rows)
one_shot_correct = {m: prune_net("lenet_300_100", 0.8, m).predict(X_val) == y_val for m in METHODS_P}
# SparseGPT's lead over magnitude one-shot (fixed models, paired over images) and after one epoch
# (over seeds and images: stats.seed_image_bootstrap redraws both)
lead_one_shot = stats.paired_bootstrap(one_shot_correct["sparsegpt"], one_shot_correct["magnitude"], seed=0)
lead_tuned = stats.seed_image_bootstrap(tuned_correct["sparsegpt"], tuned_correct["magnitude"], seed=0)
wanda_tuned = stats.seed_image_bootstrap(tuned_correct["wanda"], tuned_correct["magnitude"], seed=0)

# %% tags=["nbval-ignore-output"]
for m in METHODS_P:
    per_seed = tuned_correct[m].mean(axis=1)
    print(f"{m:10s}: one-shot {100 * one_shot_correct[m].mean():.2f} -> fine-tuned {100 * per_seed.mean():.2f} "
          f"(seeds: {', '.join(f'{100 * a:.2f}' for a in per_seed)})")
for text, (diff, lo, hi), how in (
        ("SparseGPT − magnitude, one-shot", lead_one_shot, "paired bootstrap over images"),
        ("SparseGPT − magnitude, after one epoch", lead_tuned, "two-level bootstrap over seeds and images"),
        ("Wanda − magnitude, after one epoch", wanda_tuned, "two-level bootstrap over seeds and images")):
    print(f"{text}: {100 * diff:+.2f} pp (95 % interval {100 * lo:+.2f} to {100 * hi:+.2f}, {how})")

# %%
print("one epoch erases SparseGPT's one-shot lead (its interval after the epoch lies wholly below the one-shot one):",
      "yes" if lead_tuned[2] < lead_one_shot[1] else "no")
print("SparseGPT's mask ends above magnitude's after one epoch (over seeds and images):",
      stats.verdict(lead_tuned[1], lead_tuned[2]))
print("Wanda's mask ends above magnitude's after one epoch (over seeds and images):",
      stats.verdict(wanda_tuned[1], wanda_tuned[2]))


# %% [markdown]
# One-shot, SparseGPT is far ahead at 80 % (it *reconstructs* the kept weights); one epoch of fine-tuning
# erases that lead: what is left of it after the epoch is "not resolved at this sample size" — a
# difference this experiment cannot tell from zero, with an interval that counts both the seeds and
# the validation images. Wanda's mask ends lowest in our run; its verdict against magnitude is above.
# Retraining re-fits the kept weights by itself, so the reconstruction that SparseGPT computes is worth
# little once retraining is possible; its strength is the regime this lab is about, when retraining
# is not possible.

# %% [markdown]
# ## 7. Experiment — AWQ's finding in miniature: which 1 % to protect?
#
# Lin et al. observed that keeping just 1 % of the weight **channels** (input features) in full
# precision recovers most of the loss of low-bit RTN — *if* the channels are chosen by the size of their
# **activations**, not by the size of their weights. We repeat it on the teacher and LeNet-300-100: 3-bit
# RTN with one scale per row, and in every layer the 1 % of input columns with the largest
# $\operatorname{mean}|X_{:,j}|$, or the largest $\operatorname{mean}|W_{:,j}|$, or random ones (3 seeds)
# kept in float.

# %%
def rtn_protect(name, how, seed=0, bits=3, frac=0.01):
    net = nets[name].copy()
    x = CAL
    for layer in net.layers:
        if hasattr(layer, "W"):
            W = layer.W
            k = int(np.ceil(frac * W.shape[1]))
            if how == "activation":
                keep = np.argsort(-Q.activation_scale(P.layer_inputs(layer, x)))[:k]
            elif how == "weight":
                keep = np.argsort(-np.abs(W).mean(axis=0))[:k]
            elif how == "random":
                keep = np.random.default_rng([seed, W.shape[1]]).choice(W.shape[1], k, replace=False)
            else:
                keep = np.array([], int)
            W_hat = Q.dequantize_groupwise(*Q.quantize_groupwise(W, bits))
            W_hat[:, keep] = W[:, keep]
            x = layer.forward(x)  # inputs of the next layer: float model (this is a diagnostic)
            layer.W = W_hat
        else:
            x = layer.forward(x)
    return net


protect_nets = {}
for name in ("teacher", "lenet_300_100"):
    for how in ("none", "activation", "weight"):
        protect_nets[name, how] = rtn_protect(name, how)
    for seed in SEEDS:
        protect_nets[name, f"random {seed}"] = rtn_protect(name, "random", seed)
acc_protect = {k: val_acc(v) for k, v in protect_nets.items()}

# %% tags=["nbval-ignore-output"]
for name in ("teacher", "lenet_300_100"):
    print(f"{name} (float {100 * base_val[name]:.2f}), 3-bit RTN per row, 1 % of input channels in float:")
    for how in ("none", "activation", "weight", *(f"random {s}" for s in SEEDS)):
        print(f"   protect by {how:10s}: {100 * acc_protect[name, how]:.2f}")

# %%
for name in ("teacher", "lenet_300_100"):
    moved = max(abs(acc_protect[k] - acc_protect[name, "none"]) for k in acc_protect if k[0] == name)
    print(f"{name}: protecting 1 % of the channels, by any rule, moves 3-bit RTN by less than 1 pp (validation):",
          "yes" if moved < 0.01 else "no")

# %% [markdown]
# In miniature the finding does not reproduce: on the validation images every rule moves 3-bit RTN by less
# than 1 pp, and on test (section 9) protecting by activation is no better than protecting by weight —
# not resolved on the teacher, and *worse* on LeNet-300-100 in our run. The reason is the premise.
# In an LLM a handful of hidden features carry activations 10–100× the typical size, and the weights
# that multiply them dominate the output error; keeping them exact removes most of the error. Here the
# input norms of LeNet-300-100's layers vary by a factor of 1.4 to 2.5 between the median and the 99th
# percentile (section 6): there is no 1 % that matters much more than the rest. The same measurement
# explains why AWQ's search often settles on a small α here (the table in section 5).

# %% [markdown]
# ## 8. Experiment — the kernels: int4 groups and 2:4 against dense float32 and int8
#
# At batch 1 a layer is a matrix–vector product (GEMV), and lab 07's roofline says GEMV is
# **memory-bound**: time ≈ bytes of weights / bandwidth. A 4096 × 4096 layer (64 MB as float32, far
# larger than most caches) is timed as dense float32 (BLAS), int8 (`kernels.gemv_int8`), group-wise
# int4 with groups of 64 in two kernels, and 2:4 (`kernels.gemv_nm24`, values plus 2-bit positions).
# The two int4 kernels read the same codes and scales: `kernels.gemv_int4` multiplies them with the
# float32 input (each code is unpacked and converted to float), `kernels.gemv_w4a8` first rounds the
# input to int8 per group of 64 and sums exact integer products per group (llama.cpp's Q4 × Q8 dot
# product; on CPUs with AVX-512 VNNI one `vpdpbusd` handles 16 rows × 4 codes). All five are timed
# in alternating blocks in one run (`bench.timeit_interleaved`), so machine load falls on all of them,
# each on one thread (`bench.thread_limits(1)`).

# %%
N = K = 4096
rng = np.random.default_rng(7)
W_big = rng.standard_normal((N, K), dtype=np.float32)
x_big = rng.standard_normal(K, dtype=np.float32)
W_i8 = np.clip(np.rint(W_big / (np.abs(W_big).max() / 127)), -127, 127).astype(np.int8)
x_i8 = np.clip(np.rint(x_big / (np.abs(x_big).max() / 127)), -127, 127).astype(np.int8)
q4, s4, z4 = Q.quantize_groupwise(W_big, 4, 64)
packed4, z4u8 = Q.pack_int4(q4), z4.astype(np.uint8)
mask24 = P.nm_mask(W_big, 2, 4)
W24 = kernels.nm24_compress(np.where(mask24, W_big, 0).astype(np.float32), mask24)
panels4 = kernels.int4_panels(q4, s4, z4u8, 64)  # the W4A8 kernel's layout: 128 rows side by side
nbytes = {"float32": W_big.nbytes, "int8": W_i8.nbytes, "int4 g64": packed4.nbytes + s4.nbytes + z4u8.nbytes,
          "W4A8 g64": panels4.nbytes, "2:4": W24.nbytes}
contenders = {
    "float32": lambda: W_big @ x_big,
    "int8": lambda: kernels.gemv_int8(W_i8, x_i8),
    "int4 g64": lambda: kernels.gemv_int4(packed4, s4, z4u8, x_big, 64),
    "W4A8 g64": lambda: kernels.gemv_w4a8(panels4, x_big),
    "2:4": lambda: kernels.gemv_nm24(W24, x_big),
}
with bench.thread_limits(1):  # one thread for every kernel: this notebook keeps BLAS on one thread
    timings = bench.timeit_interleaved(contenders, repeat=15, rounds=3)

# %% tags=["nbval-ignore-output"]
print(f"{'kernel':>9} {'weight bytes':>14} {'bytes/float32':>14} {'median time/float32':>20}")
for k, t in timings.items():
    print(f"{k:>9} {nbytes[k]:>14,} {nbytes[k] / nbytes['float32']:>14.3f} "
          f"{t.median / timings['float32'].median:>20.2f}")
print(
    "int4 faster than float32 in this run:", "yes" if timings["int4 g64"].median < timings["float32"].median else "no"
)
print("int4 faster than int8 in this run:", "yes" if timings["int4 g64"].median < timings["int8"].median else "no")
print("W4A8 faster than int8 in this run:", "yes" if timings["W4A8 g64"].median < timings["int8"].median else "no")
print("2:4 faster than float32 in this run:", "yes" if timings["2:4"].median < timings["float32"].median else "no")
fig, ax = plt.subplots(figsize=(7, 3.5))
names_k = list(timings)
slots = np.arange(len(names_k))
ax.bar(slots - 0.2, [nbytes[k] / nbytes["float32"] for k in names_k], 0.4, label="weight bytes / float32")
ax.bar(slots + 0.2, [timings[k].median / timings["float32"].median for k in names_k], 0.4,
       label="median time / float32")
top = 1.35 * max(1.0, max(t.median / timings["float32"].median for t in timings.values()))
ax.set(xticks=slots, xticklabels=names_k, ylabel="ratio to dense float32", title="GEMV 4096 × 4096, batch 1")
ax.set_ylim(0, top)  # headroom: the legend sits above the tallest bar
ax.legend(loc="upper center", ncol=2)
plot.show(fig, alt=(
    "Paired bars per kernel (float32, int8, int4 with groups of 64 with float32 input, the same int4 weights with "
    "int8 input per group (W4A8), 2:4): weight bytes and median time, each as a ratio to dense float32, measured in "
    "one run. Bytes fall to 0.25, 0.14, 0.14 and 0.53; the time ratios are printed above and depend on the machine."
))

# %%
y_ref = Q.dequantize_groupwise(q4, s4, z4, 64).astype(np.float64) @ x_big.astype(np.float64)
same4 = np.allclose(kernels.gemv_int4(packed4, s4, z4u8, x_big, 64), y_ref, rtol=1e-4, atol=1e-3 * np.abs(y_ref).max())
print("int4 kernel equals the dequantized product (float32 tolerance):", "yes" if same4 else "no")
y24 = np.where(mask24, W_big, 0).astype(np.float64) @ x_big.astype(np.float64)
same24 = np.allclose(kernels.gemv_nm24(W24, x_big), y24, rtol=1e-4, atol=1e-3 * np.abs(y24).max())
print("2:4 kernel equals the masked dense product (float32 tolerance):", "yes" if same24 else "no")
y_w4a8 = kernels.gemv_w4a8(panels4, x_big)
same_w4a8 = np.array_equal(y_w4a8, kernels.gemv_w4a8_reference(q4, s4, z4u8, x_big, 64))
print("W4A8 kernel equals its numpy reference bit for bit:", "yes" if same_w4a8 else "no")
w4a8_err = np.abs(y_w4a8 - y_ref).max() / np.abs(y_ref).max()
print(f"W4A8 within 2% of the largest output of the exact int4 product: {'yes' if w4a8_err < 0.02 else 'no'}")
print("weight bytes: int8 = 1/4 of float32:", "yes" if nbytes["int8"] * 4 == nbytes["float32"] else "no")
print(
    f"weight bytes: int4 g64 = {nbytes['int4 g64']:,} (N·K/2 + 5 bytes per group of 64) ="
    f" {nbytes['int4 g64'] / nbytes['float32']:.4f} of float32"
)
print(
    f"weight bytes: 2:4 = {nbytes['2:4']:,} (N·K/2 float32 values + N·K/8 position bytes) ="
    f" {nbytes['2:4'] / nbytes['float32']:.4f} of float32"
)

# %% [markdown]
# Bytes are exact; times are ratios to dense float32 measured in one run on this machine (the stored
# run: a 2-core virtual machine shared with other jobs), printed in the cell above and not compared.
# A 2:4 matrix keeps float32 values, so it moves 53 % of the dense bytes: if moving bytes were the only
# cost its speed-up would be at most about $1/0.53 \approx 1.9$, and a gather per value eats into that
# on a CPU. On a loaded machine the time ratios move from run to run; a 2:4 ratio below about 0.53 says
# the dense GEMV did not run at full memory bandwidth in that run, not that 2:4 beats the bound. int4
# moves 14 % of the bytes. With a float32 input (`gemv_int4`) each code must be unpacked and converted
# to float before its multiply, so the kernel runs out of arithmetic before it runs out of bandwidth
# (lab 07's roofline). Rounding the input to int8 per group (W4A8) turns the work into exact integer
# products that a dot-product instruction does 64 at a time; the price is the input's rounding,
# checked above: W4A8 stays within 2 % of the largest output of the exact product of the int4 weights.

# %% [markdown]
# ## 9. Test, once: the claims, with intervals
#
# Every choice above was made on validation; the compressed networks are fixed. Each claim is now
# evaluated **once** on the 10,000 test images (this section is the only place they are read), as the
# paired difference of accuracies (method A − method B, on the same images) with a 95 % bootstrap
# interval (`stats.paired_bootstrap`, 10,000 resamples) and the exact McNemar p-value of "A and B are
# equally accurate" (`stats.mcnemar`).
#
# **Eighteen claims are one family.** If each were read alone at the 5 % level, about one in twenty
# true "no difference" claims would still come out "yes" or "no" by chance. Holm's method
# (`stats.holm`) controls the chance of *any* false verdict in the family at 5 %: sort the p-values,
# compare the smallest with 0.05/18, the next with 0.05/17, and so on, and stop at the first that
# fails. `stats.family_verdicts` turns the adjusted p-values into the verdict words: "yes" or "no"
# (by the sign of A − B) where the adjusted p-value is below 0.05, "not resolved at this sample size"
# elsewhere. The verdict cell prints the family's verdict, and, where it differs, what the claim's
# own interval says alone.

# %% tags=["test-once"]
# Test, once: every choice above was made on validation; the compressed networks are fixed
correct_cache = {}


def correct(net):
    if id(net) not in correct_cache:
        correct_cache[id(net)] = net.predict(data.X_test) == data.y_test
    return correct_cache[id(net)]


claims = []
for name, bits in [("lenet_300_100", 4), ("lenet_300_100", 3), ("teacher", 4), ("teacher", 3), ("lenet5", 3)]:
    claims.append((f"GPTQ beats RTN, {bits} bits g64, {name}",
                   quantize_net(name, bits, 64, "gptq"), quantize_net(name, bits, 64, "rtn")))
for name in ("lenet_300_100", "teacher", "lenet5"):
    claims.append((f"AWQ beats RTN, 3 bits g64, {name}",
                   quantize_net(name, 3, 64, "awq"), quantize_net(name, 3, 64, "rtn")))
for name in ("lenet_300_100", "teacher"):
    for pattern in (0.5, "2:4"):
        label = "50 %" if pattern == 0.5 else "2:4"
        for m in ("sparsegpt", "wanda"):
            claims.append((f"{'SparseGPT' if m == 'sparsegpt' else 'Wanda'} beats magnitude, {label}, {name}",
                           prune_net(name, pattern, m), prune_net(name, pattern, "magnitude")))
for name in ("teacher", "lenet_300_100"):
    claims.append((f"activation-salient beats weight-salient 1 % protection, 3-bit RTN, {name}",
                   protect_nets[name, "activation"], protect_nets[name, "weight"]))
results = [(text, *stats.paired_bootstrap(correct(a), correct(b), seed=0), stats.mcnemar(correct(a), correct(b)))
           for text, a, b in claims]
p_holm = stats.holm([p for *_, p in results])
family = stats.family_verdicts([diff for _, diff, _lo, _hi, _p in results], [p for *_, p in results], alpha=0.05)
alone = [stats.verdict(lo, hi) for _, _diff, lo, hi, _p in results]
test_acc = {id(n): correct(n).mean() for _, a, b in claims for n in (a, b)}

# %% tags=["nbval-ignore-output", "test-once"]
# Test, once: the numbers, intervals and p-values of the claims (read by no choice)
print(f"{'claim':78s} {'A':>6} {'B':>6} {'A−B (pp)':>9} {'95 % interval':>17} {'p':>9} {'Holm p':>9}")
for (text, a, b), (_, diff, lo, hi, p), ph in zip(claims, results, p_holm):
    print(f"{text:78s} {100 * test_acc[id(a)]:6.2f} {100 * test_acc[id(b)]:6.2f} {100 * diff:9.2f}"
          f"   [{100 * lo:6.2f}, {100 * hi:6.2f}] {p:9.2g} {ph:9.2g}")

# %% tags=["test-once"]
# Test, once: the verdicts of the family of 18 claims, Holm-controlled (read by no choice)
for (text, *_), word, single in zip(results, family, alone):
    print(f"{text}: {word}" + (f"   (its interval alone: {single})" if single != word else ""))
print("family:", {w: family.count(w) for w in stats.VERDICTS})

# %% [markdown]
# **Reading the verdicts** (written after our run; the numbers are in the cell above). A claim that is
# "not resolved" means this test set, read as one family of 18 claims, cannot tell the two apart — not
# that they are equal. Holm's control moves three verdicts of our run: GPTQ at 3 bits and Wanda at 50 % on
# LeNet-300-100 (each "yes" alone, its interval's lower end just above 0) and Wanda at 2:4 on the
# teacher ("no" alone) become "not resolved". Read alone, each of those would be a one-in-twenty-level
# claim among eighteen.
#
# * **GPTQ vs RTN.** "Yes" on LeNet-5 at 3 bits, where RTN hurts most (small convolutions). Not
#   resolved on LeNet-300-100 and the teacher at 3 and 4 bits: with groups of 64, RTN already stays
#   within a few tenths of a point of the float model, so there is little left to win — and on new
#   images GPTQ's per-layer gain is several times smaller than on its calibration images (section 5).
# * **AWQ vs RTN at 3 bits, g64.** Not resolved on all three models. AWQ minimises each layer's output
#   error on calibration images, one layer at a time; without activation outliers (section 7) the
#   scaling has little to protect.
# * **SparseGPT vs magnitude.** "Yes" at 50 % and 2:4 on LeNet-300-100 and at 2:4 on the teacher; at
#   50 % on the teacher not resolved — the wide teacher loses only about half a point to magnitude
#   pruning at 50 %, little is left to reconstruct.
# * **Wanda vs magnitude.** "No" at 2:4 on LeNet-300-100, not resolved elsewhere. At 2:4 both masks keep
#   2 of every 4 weights, so the comparison group is the same: what differs is the ‖X_j‖ weighting,
#   taken on the already-pruned network, which section 6 found to cost accuracy here.
# * **Activation- vs weight-salient protection.** Not resolved on the teacher and "no" on
#   LeNet-300-100: AWQ's observation does not carry over, for the reason of section 7.
#
# None of this says the methods fail on LLMs; it says which of their premises — wide layers, correlated
# inputs, activation outliers, no retraining — hold on a given model, and that those premises decide
# whether a method pays.

# %% [markdown]
# ## 10. Questions to think about
#
# 1. Section 1 gives OBS less than half of magnitude's error on one row. Why can the advantage only
#    grow when the inputs of a layer are more correlated? What happens to OBS when $H$ is singular
#    (dead ReLU inputs), and what does the damping do about it?
# 2. GPTQ quantizes columns left to right. `act_order=True` goes in order of decreasing $H_{jj}$.
#    Why could that help when a few inputs are much larger than the rest (the LLM case)?
# 3. Wanda is level with magnitude on LeNet-300-100 at 50 % and falls behind beyond (section 6).
#    Which property of LLM activations does its score rely on, and what did the input-norm spread of
#    our layers show?
# 4. AWQ multiplies salient input channels by $s > 1$ before rounding. Why does that lower their
#    *relative* rounding error without costing a single extra bit, and why must $1/s$ be folded into
#    the previous layer rather than computed at run time?
# 5. 2:4 at 50 % sparsity moves 53 % of the dense bytes. At which sparsity would CSR (lab 07) move
#    fewer bytes than 2:4? Why do GPUs still prefer 2:4?
# 6. Section 4 picked the calibration size and damping with the highest validation accuracy among nine
#    settings that differ by a few images. Why would the winner's validation accuracy overstate its
#    test accuracy, and why does section 9 not suffer from that?
#
# ## 11. Summary
#
# Numbers from our run (validation unless marked test; your run prints its own above; one validation
# image is 0.05 pp).
#
# | experiment | what was measured | finding |
# |---|---|---|
# | OBS vs magnitude, one row | output error after removing 50 of 100 weights of `fc3` | OBS 73.0× lower |
# | OBQ vs GPTQ | output error and time per row, LeNet-300-100 `fc2`, 3 bits | both an order of magnitude below RTN; GPTQ hundreds of times faster; with $H \propto I$ GPTQ = RTN bit for bit |
# | choices (validation) | calibration size × damping (GPTQ), AWQ grid | 512 images, damp 0.01, grid 20; the nine GPTQ settings span 0.70 pp, within the noise |
# | accuracy vs bits | RTN, GPTQ, AWQ, 8–2 bits, 4 group sizes (LeNet-300-100); 3–4 bits (teacher, LeNet-5) | all within 1 pp of float to 4 bits; at 2 bits GPTQ 87.45 % where RTN drops to 81.90 % and AWQ to 78.75 %; LeNet-5 at 3 bits: GPTQ 88.30 % vs RTN 86.25 % (above, by less than 3 pp) |
# | AWQ below RTN at 2 bits | layer and logit error vs accuracy, α sweep | AWQ's errors are lower, on validation too, its accuracy is not: at 2 bits the error it minimises does not track the accuracy |
# | conditioning of $H$ | eigenvalue spread, rank deficit, RTN/GPTQ output-error ratio per layer, calibration and validation | 10.80–44.24 on calibration, 3.40–16.60 on validation: layers wider than the 512 calibration images overfit them |
# | calibration size | RTN/GPTQ ratio, 128–4,096 images, `fc1` and `fc2` | the calibration and validation ratios meet as the images outnumber the inputs; the gain on new images grows |
# | accuracy vs sparsity | magnitude, Wanda, SparseGPT, 50–90 % and 2:4 | SparseGPT highest everywhere (52.55 % vs 29.85 % at 90 %); Wanda below magnitude beyond 50 % |
# | Wanda's control | per-row magnitude, Wanda with the float model's norms | the cost is the ‖X_j‖ weighting taken on the already-pruned network, not the per-row group (70 and 80 %) |
# | fine-tuning, 80 % | one epoch, 3 seeds, two-level bootstrap | magnitude 59.10 → 85.68, SparseGPT 83.15 → 85.70, Wanda 39.45 → 84.45 (means); SparseGPT's +24.05 pp lead is erased: after the epoch not resolved |
# | AWQ in miniature | 1 % of channels in float by activation, weight, random | every rule within 1 pp on validation; on test activation-based is not better (section 9) |
# | kernels | bytes (exact) and time ratios of int8, int4 g64 and 2:4 GEMV vs float32 | bytes 0.250, 0.1445, 0.5312 of float32; time ratios machine-dependent (section 8) |
# | claims on test, once | 18 paired comparisons, one family under Holm's control | 4 yes, 2 no, 12 not resolved; Holm moves 3 verdicts of the claims' own intervals (section 9) |

# %% tags=["nbval-ignore-output"]
print(f"CPU time of this notebook's kernel: {(time.process_time() - cpu_start) / 60:.1f} minutes")
