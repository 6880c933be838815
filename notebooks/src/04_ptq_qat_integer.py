# %% [markdown]
# # Lab 04 — Post-training quantization, quantization-aware training, integer-only inference
#
# **You will leave able to** quantize a trained network after training (PTQ) and read its
# accuracy-vs-bits curve, train *through* the quantizer with the straight-through estimator (QAT),
# compare linear with k-means quantization, and run a network with integers only — int8 weights,
# uint8 activations, int32 accumulators and a fixed-point multiplier — bit for bit.
#
# **Time:** about 60 minutes. Executing the whole notebook takes about 65 s of CPU time (one thread). On
# our 2-core machine, shared with other jobs, it ran in about 65 s of wall time at a load average
# below 2 and in about 75 s at a load average of 3; a heavier load stretches it further.
#
# **Method.** Every choice in this lab — PTQ bit width and granularity, the QAT and codebook learning
# rates, the activation calibration of the integer engine — is made on the **validation** split
# (`data.X_val`, 2,000 images held out of the training images). The 10,000 test images are used
# **once**, in section 6, after every choice is fixed; the training claims (QAT, codebook
# fine-tuning) are measured over three seeds with a t-interval.
#
# **Reading:** Jacob et al. 2018 (integer-only inference, §2–3); Krishnamoorthi 2018 (PTQ, per-channel,
# QAT, §3–4); Bengio et al. 2013 (the straight-through estimator); Han et al. 2016, *Deep Compression* (§3,
# k-means weight sharing).

# %%
from functools import partial

import matplotlib.pyplot as plt
import numba
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from labkit import bench, metrics, models, plot, stats, train
from labkit import quant as Q
from labkit.data import load_fashion_mnist

threadpool_limits(1)  # one BLAS thread: the same summation order, so the same training, on every machine
numba.set_num_threads(1)  # labkit.kernels on one thread too, so that section 5 compares like with like

data = load_fashion_mnist()
X_val, y_val = data.X_val, data.y_val  # every choice below is made on these 2,000 images
nets = {"LeNet-300-100": models.pretrained("lenet_300_100"), "LeNet-5": models.pretrained("lenet5")}
SEEDS = (0, 1, 2)  # the training claims are made over three seeds


def val_acc(model):
    """Accuracy on the validation split (the split every choice in this lab is made on)."""
    return train.evaluate(model, X_val, y_val)


# %% tags=["nbval-ignore-output", "skip-grading"]
base = {name: val_acc(net) for name, net in nets.items()}
for name, acc in base.items():
    print(f"{name}: float32 validation accuracy {acc:.4f}")

# %% [markdown]
# ## 1. Post-training quantization (PTQ) of the weights
#
# PTQ takes the trained float weights and rounds them: here symmetric, $s = \max|W| / (2^{b-1}-1)$,
# either one scale for the whole tensor (**per-tensor**) or one per output channel (**per-channel**).
# The integers run over the *narrow* signed range $-(2^{b-1}-1) \dots 2^{b-1}-1$ (TFLite's
# `narrow_range`: −127…127 at 8 bits, never −128), so a symmetric $b$-bit grid has $2^b - 1$ levels,
# symmetric about an exact 0: 255 at 8 bits, 15 at 4 bits, only **3** ($-s, 0, s$) at 2 bits.
# `Q.qparams(..., symmetric=True)` returns the parameters together with that range, and `quantize`
# clamps to it, even for inputs far outside the calibrated range:

# %%
w_fc1 = nets["LeNet-300-100"]["fc1"].W
qp = Q.qparams(w_fc1, bits=8, symmetric=True)
q_far = Q.quantize(3 * w_fc1, qp)  # three times the calibrated range: the large values clamp
print("integer range carried with symmetric 8-bit parameters:", qp.qrange)
print(
    f"codes of 3·W span {int(q_far.min())} to {int(q_far.max())}; never -128: {'yes' if q_far.min() > -128 else 'no'}"
)

# %% [markdown]
# The full signed range would add −128, one level on the negative side only: the grid would no longer
# be symmetric about 0, and −128 has no positive mirror image in int8 (negating it overflows).
# `Q.fake_quantize_weights(model, bits, per_channel)` returns a copy whose weights hold exactly the
# values an integer kernel would use ("fake" quantization: stored as float, valued on the grid), so
# evaluating it measures the accuracy the quantized weights give. Activations stay float here;
# section 5 quantizes them too.
#
# The sweep below runs on the **validation** split: it is how we choose a bit width and a
# granularity, so it must not look at the test images.

# %% tags=["nbval-ignore-output", "skip-grading"]
bits_list = [8, 6, 4, 3, 2]
ptq = {}
for name, net in nets.items():
    for per_channel in (True, False):
        for b in tqdm(bits_list, desc=f"{name} {'per-channel' if per_channel else 'per-tensor'}", leave=False):
            ptq[name, per_channel, b] = val_acc(Q.fake_quantize_weights(net, b, per_channel))
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
for ax, name in zip(axes, nets):
    curves = {
        kind: [ptq[name, pc, b] for b in bits_list] for kind, pc in [("per-channel", True), ("per-tensor", False)]
    }
    plot.accuracy_vs_bits(bits_list, curves, base[name], ax=ax, title=f"PTQ of {name}")  # ticked at bits_list
    ax.set_ylabel("validation accuracy (%)")
    for b in bits_list:
        print(f"{name}, {b} bits: per-channel {ptq[name, True, b]:.4f}, per-tensor {ptq[name, False, b]:.4f}")
fig.tight_layout()  # room for each panel's legend, which sits outside it
plot.show(
    fig,
    alt="Validation accuracy after post-training weight quantization at 8, 6, 4, 3 and 2 bits, one panel per "
    "network (LeNet-300-100, LeNet-5), bits decreasing from left to right, per-channel and per-tensor scales "
    "as two lines, the float accuracy as a dashed horizontal line. Read where each line leaves the float line as "
    "the bits decrease; the accuracies are printed with the figure and the setting chosen from them in the next cell.",
)

# %% [markdown]
# **Choosing a PTQ setting on validation.** The rule, fixed before looking at the curves: take the
# **fewest bits** whose validation accuracy is within **0.5 pp** of the float model (about the
# standard error of one accuracy measured on 2,000 images, so a smaller loss could not be told from
# noise here); at that bit width take the granularity that is more accurate on validation (per-tensor
# on a tie: one scale is cheaper than one per row).

# %% tags=["nbval-ignore-output", "skip-grading"]
PTQ_TOLERANCE = 0.005  # 0.5 pp of validation accuracy


def choose_ptq(name):
    """(bits, per_channel): the fewest bits within PTQ_TOLERANCE of float on validation, then the better granularity."""
    for b in sorted(bits_list):
        ok = [pc for pc in (False, True) if base[name] - ptq[name, pc, b] <= PTQ_TOLERANCE]
        if ok:
            return b, max(ok, key=lambda pc: ptq[name, pc, b])  # max keeps the first (per-tensor) on a tie
    return max(bits_list), True


ptq_choice = {name: choose_ptq(name) for name in nets}
for name, (b, pc) in ptq_choice.items():
    print(f"{name}: validation chose {b} bits, {'per-channel' if pc else 'per-tensor'} "
          f"({100 * (ptq[name, pc, b] - base[name]):+.2f} pp vs float on validation)")
for name in nets:
    print(f"{name}: per-channel minus per-tensor at 4 bits on validation "
          f"{100 * (ptq[name, True, 4] - ptq[name, False, 4]):+.2f} pp")


# %% [markdown]
# **What validation chose** (the cells above; the numbers are from our run). Down to 6 bits both
# networks stay within the 0.5 pp budget of the float model on validation; at 4 bits both lose more than
# that (LeNet-5 about 2 pp); at 3 and 2 bits they collapse. Per-tensor is the lower line at 2 bits on
# both networks (and at 3 bits on LeNet-300-100): its one scale is set by the row with the largest
# weights, which leaves the other rows few effective levels (lab 03, section 6). So validation chose
# **6 bits for both networks** — per-channel for LeNet-300-100 and per-tensor for LeNet-5, but at 6 bits
# the two granularities are within a few validation images of each other: there the choice is a
# toss-up, and per-channel scales only start to matter at 4 bits and below. Whether the chosen setting
# really costs nothing, and whether per-channel beats per-tensor at 4 bits, is measured once on the
# test set in section 6.
#
# ## 2. Quantization-aware training (QAT) and the straight-through estimator
#
# To recover low-bit accuracy, train **with** the quantizer in the forward pass. `round` has zero
# derivative almost everywhere, so backpropagation would stop there; the **straight-through
# estimator** (STE) pretends the quantizer is the identity inside its clipping range and a constant
# outside it:
#
# $$ \frac{\partial\, \mathrm{fq}(x)}{\partial x} \approx \begin{cases} 1 & q_\min \le \operatorname{round}(x/s) + z \le q_\max \\ 0 & \text{otherwise.} \end{cases} $$
#
# `Q.QATCallback` does this through `fit`'s hooks: at the start of every batch it keeps the float
# weights as a shadow and swaps in their fake-quantized copy; after the backward pass it puts the
# float weights back and zeroes the gradient of weights outside the range, so the optimizer updates
# the float weights with gradients computed through the quantized ones.
#
# ### Exercise 1 — the STE backward (1 point)
#
# Write `ste_backward(grad_out, x, scale, zero_point, bits)` for unsigned `bits`-bit fake
# quantization: return `grad_out` where $0 \le \operatorname{rint}(x/s) + z \le 2^b - 1$ and 0 elsewhere.

# %% nbgrader={"grade": false, "grade_id": "ste_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ste_backward(grad_out, x, scale, zero_point, bits):
    ### BEGIN SOLUTION
    q = np.rint(x / scale) + zero_point
    inside = (q >= 0) & (q <= 2**bits - 1)
    return np.where(inside, grad_out, 0).astype(grad_out.dtype)
    ### END SOLUTION


# %% labkit={"answer": "ste_backward"} nbgrader={"grade": true, "grade_id": "check_ste_backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
from labkit.check import lab04

lab04.ste_backward(ste_backward)

# %% [markdown]
# Now QAT on LeNet-300-100 at 4 and 2 bits (per-channel weights), one pass over half of the training
# split (9,000 images) from the trained weights, with Adam. The learning rate is a choice, so it is chosen on **validation**: one run per
# rate (seed 0), keeping the rate whose fake-quantized model is most accurate on validation. The grids
# space the rates a factor of about 3 apart, around where first tries put each bit width: small rates
# at 4 bits (the weights only need to settle on a fine grid; the grid reaches down to $10^{-5}$ because
# a first try chose its lowest rate) and about $10^{-3}$ at 2 bits (they must move across a coarse one). Two more seeds (1, 2) are then trained at that rate, so that section 6
# can measure the claim over three seeds. Half an epoch rather than three epochs keeps the ten runs
# within the lab's time budget; a longer schedule might recover more, and is worth trying.

# %% tags=["nbval-ignore-output", "skip-grading"]
lenet = nets["LeNet-300-100"]
TRAIN_HALF = (data.X_train[:9000], data.y_train[:9000])  # half the training split per run: the time budget
QAT_LRS = {4: (1e-5, 3e-5, 1e-4, 3e-4), 2: (3e-4, 1e-3, 3e-3)}  # bits -> the rates tried
QAT_BITS = tuple(QAT_LRS)


def qat_run(bits, lr, seed):
    """QAT at `bits` from the trained weights, one pass over TRAIN_HALF; returns the fake-quantized model."""
    student = lenet.copy()
    train.fit(student, TRAIN_HALF, epochs=1, lr=lr, batch_size=128, seed=seed,
              callbacks=[Q.QATCallback(bits=bits)], progress=False)
    return Q.fake_quantize_weights(student, bits)


qat_sweep = {(b, lr): qat_run(b, lr, 0) for b, lr in tqdm([(b, lr) for b in QAT_BITS for lr in QAT_LRS[b]], desc="QAT lr sweep")}
qat_lr = {b: max(QAT_LRS[b], key=lambda lr: val_acc(qat_sweep[b, lr])) for b in QAT_BITS}
qat_models = {(b, s): qat_sweep[b, qat_lr[b]] if s == 0 else qat_run(b, qat_lr[b], s) for b in QAT_BITS for s in SEEDS}
for b in QAT_BITS:
    print(f"{b} bits: validation accuracy by lr (seed 0):",
          {lr: round(val_acc(qat_sweep[b, lr]), 4) for lr in QAT_LRS[b]}, f"-> validation chose lr {qat_lr[b]:g}")
    ptq_b = ptq["LeNet-300-100", True, b]
    accs = [val_acc(qat_models[b, s]) for s in SEEDS]
    print(f"    float {base['LeNet-300-100']:.4f}, PTQ {ptq_b:.4f}, QAT seeds 0-2 {[round(a, 4) for a in accs]} "
          f"(validation; PTQ lost {100 * (base['LeNet-300-100'] - ptq_b):.2f} pp)")


# %% [markdown]
# **What validation chose** (printed above, our run). At 2 bits, $10^{-3}$, inside its grid and clearly
# ahead of its neighbours. At 4 bits the validation curve is **flat**: the four rates are within 0.2 pp
# of each other (4 of 2,000 images), and validation chose $10^{-5}$, tied with $3\cdot10^{-5}$ (on a tie
# `max` keeps the first, the smallest rate). A flat curve says only that any small rate will do: at 4
# bits the float weights need just a nudge to sit well on the grid. PTQ loses little there (under a
# point on validation), so QAT has little to win back; at 2 bits, where PTQ collapses (3 levels per
# row), half an epoch of QAT brings the network back to within a few points of float. How much of each
# holds on the test set, over three seeds, is measured in section 6.
#
# ## 3. K-means weight sharing vs linear quantization
#
# Linear quantization spaces its levels evenly. Han et al.'s weight sharing instead **clusters**
# each layer's weights into $2^b$ shared values (one codebook per layer, linear initialisation
# between min and max, then Lloyd's iterations) and stores a $b$-bit index per weight. The levels
# follow the weight distribution: many near 0, a few for the large weights.
#
# A fair comparison gives both methods the same number of levels per layer. A $b$-bit k-means codebook
# has $2^b$ entries; the symmetric quantizer of section 1 has only $2^b - 1$ levels (it keeps the
# code −2^{b−1} unused so that the grid is symmetric), which at 2 bits is 3 against k-means' 4. The
# like-for-like baseline is therefore the **affine per-tensor** quantizer of lab 03: one scale and
# one zero point per layer, $2^b$ evenly spaced levels over $[\min(W, 0), \max(W, 0)]$, with 0 exactly
# on the grid. We also show the symmetric per-channel quantizer of section 1, which has a separate
# grid of $2^b - 1$ levels for each of the 300 rows.

# %% tags=["skip-grading"]
def affine_per_tensor(model, bits):
    """Copy of `model` with each weight matrix fake-quantized by one affine (scale, zero point): 2^bits levels."""
    out = model.copy()
    for _, layer in out.weight_layers():
        scale, zp = Q.qparams(layer.W, bits=bits)  # asymmetric: unsigned codes 0 .. 2^bits - 1
        layer.W = Q.fake_quantize(layer.W, scale, zp, bits=bits)
    return out


km_models = {b: Q.kmeans_quantize_model(lenet, b) for b in (4, 3, 2)}  # b -> (model, codebooks)
levels = {
    "k-means": [len(np.unique(layer.W)) for _, layer in km_models[2][0].weight_layers()],
    "affine per-tensor": [len(np.unique(layer.W)) for _, layer in affine_per_tensor(lenet, 2).weight_layers()],
    "symmetric per-tensor": [
        len(np.unique(layer.W)) for _, layer in Q.fake_quantize_weights(lenet, 2, False).weight_layers()
    ],
}
print("distinct weight values in fc1, fc2, fc3 at 2 bits:")
for kind, counts in levels.items():
    print(f"  {kind:<21} {counts}")

# %% tags=["nbval-ignore-output", "skip-grading"]
km_acc = {b: val_acc(km_models[b][0]) for b in (4, 3, 2)}
aff_acc = {b: val_acc(affine_per_tensor(lenet, b)) for b in (4, 3, 2)}
for b in (4, 3, 2):
    print(f"{b} bits (validation): k-means {km_acc[b]:.4f} ({2**b} levels), affine per-tensor {aff_acc[b]:.4f} "
          f"({2**b} levels), symmetric per-channel {ptq['LeNet-300-100', True, b]:.4f} ({2**b - 1} levels per row)")

# %% [markdown]
# **On validation** (our run): with the same number of levels per layer, k-means is more accurate than
# the evenly spaced affine grid at every width, by a fraction of a point at 4 bits and by tens of
# points at 2 bits, where 4 evenly spaced levels waste most of their range on the few large weights.
# The symmetric per-channel quantizer is not like-for-like — it has 300 grids for fc1's 300 rows, each
# fitted to its own row, against one codebook for the whole layer — and k-means still matches it at 4
# bits and is ahead at 3 and 2 bits. Section 6 tests these comparisons once on the test set.
#
# **Codebook fine-tuning.** With 2 bits (4 shared values per layer) accuracy drops. Han et al.
# fine-tune the shared values: each centroid's gradient is the **sum** of the gradients of the
# weights that share it, $\partial L / \partial c_k = \sum_{ij: I_{ij} = k} \partial L / \partial W_{ij}$;
# the assignments stay fixed, so the model keeps exactly 4 distinct values per layer. (A pruned
# weight belongs to no cluster and contributes nothing; this network is not pruned, lab 06's is.)
# `Q.CodebookFinetune` does this as a training callback. Its learning rate (used for the centroids and
# for the biases, which train as usual) is chosen on validation among $\{10^{-3}, 3\cdot10^{-3},
# 10^{-2}, 3\cdot10^{-2}\}$ with seed 0, one pass over the same 9,000 training images as QAT; seeds 1
# and 2 are then trained at the chosen rate.

# %% tags=["nbval-ignore-output", "skip-grading"]
km2, books2 = km_models[2]
CB_LRS = (1e-3, 3e-3, 1e-2, 3e-2)


def codebook_run(lr, seed):
    """Codebook fine-tuning of the 2-bit k-means LeNet-300-100, one pass over TRAIN_HALF (fresh copies of model and books)."""
    model = km2.copy()
    books = {n: (cb.copy(), idx) for n, (cb, idx) in books2.items()}
    train.fit(model, TRAIN_HALF, epochs=1, lr=lr, seed=seed, callbacks=[Q.CodebookFinetune(books, lr=lr)],
              progress=False)
    return model


cb_sweep = {lr: codebook_run(lr, 0) for lr in tqdm(CB_LRS, desc="codebook lr sweep")}
cb_lr = max(CB_LRS, key=lambda lr: val_acc(cb_sweep[lr]))
cb_models = {s: cb_sweep[cb_lr] if s == 0 else codebook_run(cb_lr, s) for s in SEEDS}
print("validation accuracy by lr (seed 0):", {lr: round(val_acc(m), 4) for lr, m in cb_sweep.items()},
      f"-> validation chose lr {cb_lr:g}")
print(f"2-bit k-means on validation: {km_acc[2]:.4f} before fine-tuning, seeds 0-2 after: "
      f"{[round(val_acc(cb_models[s]), 4) for s in SEEDS]} (float {base['LeNet-300-100']:.4f})")

# %% tags=["skip-grading"]
print(
    "distinct weight values per layer after fine-tuning (every seed):",
    {n: sorted({len(np.unique(cb_models[s][n].W)) for s in SEEDS}) for n, _ in km2.weight_layers()},
)


# %% [markdown]
# The model keeps exactly 4 distinct values per layer (above). Validation chose $10^{-2}$ in our run:
# accuracy rose with the rate up to there, and at $3\cdot10^{-2}$ training diverged (chance accuracy,
# printed above), so the choice sits inside the grid. Large rates suit this training: only 12 numbers
# (4 per layer) and the biases move, each centroid by Adam steps of about the learning rate. The MIT 6.5940 lab reports 16% → 91% for 2-bit k-means on VGG/CIFAR-10; our small MLP
# loses much less at 2 bits to begin with (under 10 points on validation in our run), and one pass of
# codebook fine-tuning wins back most of it on validation. Section 6 measures it on test over three
# seeds.
#
#
# ## 4. Integer-only arithmetic
#
# Write every real tensor through its quantized form: input $x = s_x(q_x - z_x)$, weights
# $W = s_W q_W$ (symmetric, per channel $c$), output $y = s_y(q_y - z_y)$. Then $y = Wx + b$ becomes
#
# $$ q_y[c] = z_y + \underbrace{\frac{s_x\, s_W[c]}{s_y}}_{M_c} \Big( \underbrace{\textstyle\sum_k (q_x[k] - z_x)\, q_W[c,k] + q_b[c]}_{\text{int32 accumulator}} \Big), \qquad q_b[c] = \operatorname{round}\!\Big(\frac{b[c]}{s_x s_W[c]}\Big). $$
#
# Everything is integer except $M_c$. Jacob et al. write it as $M = 2^{-n} M_0$ with
# $M_0 \in [0.5, 1)$ and store $M_0$ as the int32 $\operatorname{round}(M_0 \cdot 2^{31})$: the
# multiplication becomes a 64-bit integer product followed by a **rounding right shift** by $31 + n$
# bits. A following ReLU is just a clamp at $z_y$ (real 0).
#
# ### Exercise 2 — the fixed-point multiplier (1 point)
#
# Write `quantize_multiplier(M)` returning `(M0, n)` as Python ints with $2^{30} \le M_0 < 2^{31}$ and
# $M \approx M_0 \cdot 2^{-(31+n)}$. `np.frexp` gives $M = m \cdot 2^e$ with $m \in [0.5, 1)$. Watch the
# case where $\operatorname{round}(m \cdot 2^{31})$ reaches $2^{31}$.

# %% nbgrader={"grade": false, "grade_id": "quantize_multiplier", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize_multiplier(M):
    ### BEGIN SOLUTION
    m, e = np.frexp(M)
    M0, n = int(np.rint(m * 2**31)), int(-e)
    if M0 == 2**31:
        M0, n = 2**30, n - 1
    return M0, n
    ### END SOLUTION


# %% labkit={"answer": "quantize_multiplier"} nbgrader={"grade": true, "grade_id": "check_quantize_multiplier", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab04.quantize_multiplier(quantize_multiplier)


# %% [markdown]
# ### Exercise 3 — requantization with a rounding shift (1 point)
#
# Write `requantize(acc, M0, n, zero_point)`: from int32 accumulators `acc`, compute the int64 product
# `acc * M0`, divide by $2^{31+n}$ **rounding half to even** using shifts, add the output zero point,
# and clamp to uint8 $[0, 255]$. Return an integer array.

# %% nbgrader={"grade": false, "grade_id": "requantize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def requantize(acc, M0, n, zero_point):
    ### BEGIN SOLUTION
    prod = acc.astype(np.int64) * np.int64(M0)
    s = 31 + n
    q = prod >> s  # floor
    r = prod - (q << s)
    half = np.int64(1) << (s - 1)
    q = q + ((r > half) | ((r == half) & (q % 2 == 1)))
    return np.clip(q + zero_point, 0, 255).astype(np.uint8)
    ### END SOLUTION


# %% labkit={"answer": "requantize"} nbgrader={"grade": true, "grade_id": "check_requantize", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab04.requantize(requantize)

# %% [markdown]
# ### One rounding or two: the requantization as in Jacob et al.
#
# Your `requantize` rounds **once**: the exact product $acc \cdot M_0$ divided by $2^{31+n}$, ties to
# even. That is labkit's default, `rounding="single"`. Jacob et al.'s reference implementation
# (gemmlowp, and TFLite after it) keeps every intermediate in 32 bits and rounds **twice**:
#
# 1. a *saturating rounding doubling high multiply*: the int32 nearest to $acc \cdot M_0 / 2^{31}$,
#    ties toward $+\infty$ (the single product that overflows, $-2^{31} \cdot -2^{31}$, saturates to
#    $2^{31} - 1$);
# 2. a *rounding divide by* $2^n$: nearest, ties **away from zero**.
#
# `Q.requantize(..., rounding="gemmlowp")` (and `Q.quantize_model(..., rounding="gemmlowp")`) is this
# requantization as in Jacob et al.; `Q.fixed_point_multiply(acc, M0, n, rounding)` is the product
# and rounding alone, without zero point and clamp. The two can differ by one step in two places: at
# exact ties, which they break differently, and where step 1's rounding pushes a value across the
# half that step 2 rounds at. With $M = 0.5$ ($M_0 = 2^{30}$, $n = 0$) every odd accumulator is a tie:

# %%
M0_half, n_half = Q.quantize_multiplier(0.5)
acc_ties = np.array([-5, -3, -1, 1, 3, 5], dtype=np.int32)
print(f"M = 0.5: M0 = {int(M0_half)} = 2^30, n = {int(n_half)}")
print("acc                         :", acc_ties.tolist())
print("exact acc · M               :", [f"{a / 2:+.1f}" for a in acc_ties.tolist()])
print("single rounding (ties even) :", Q.fixed_point_multiply(acc_ties, M0_half, n_half, "single").tolist())
print("gemmlowp (ties up, then away):", Q.fixed_point_multiply(acc_ties, M0_half, n_half, "gemmlowp").tolist())

# %% [markdown]
# Away from ties the two agree almost always. On a million random accumulators with a typical
# multiplier ($M \approx 0.0037$, so $n = 8$), count where they differ, and whether each difference is
# an exact tie of $acc \cdot M_0 / 2^{31+n}$ or a double-rounding effect:

# %%
M0_t, n_t = Q.quantize_multiplier(0.0037)
acc_rand = np.random.default_rng(0).integers(-(2**24), 2**24, 1_000_000).astype(np.int32)
single = Q.fixed_point_multiply(acc_rand, M0_t, n_t, "single")
gemm = Q.fixed_point_multiply(acc_rand, M0_t, n_t, "gemmlowp")
prod = acc_rand.astype(np.int64) * np.int64(M0_t)
tie = (prod % (np.int64(1) << (31 + int(n_t)))) == (np.int64(1) << (30 + int(n_t)))
differ = single != gemm
print(f"M0 = {int(M0_t)}, n = {int(n_t)}")
print(f"differ on {int(differ.sum()):,} of {acc_rand.size:,} accumulators, "
      f"by at most {int(np.abs(single - gemm).max())} step; exact ties among them: {int((differ & tie).sum()):,}")


# %% [markdown]
# As printed: the two forms disagree on about two accumulators in a thousand, always by one step, and
# here never at an exact tie (with this odd $M_0$ a tie is rare) — every difference is double
# rounding. Such differences are invisible in accuracy (section 5 measures them on a whole network),
# but they break **bit-exactness**: an engine that must match a phone's TFLite kernels output for
# output has to use the gemmlowp form.

# %% [markdown]
# ### Exercise 4 — one integer-only Dense layer (1 point)
#
# Write `integer_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu)`: `q_x` is uint8 (batch, in), `q_W` int8
# (out, in), `q_b` int32 (out,), `M0` and `n` per output channel. Compute the int32 accumulator
# $(q_x - z_x)\, q_W^T + q_b$, then requantize each channel with its own $(M_0, n)$; with `relu=True`
# clamp below at $z_y$. You may use your `requantize` (its arguments broadcast over channels) or
# `Q.requantize(acc, M0, n, z_y, relu=relu)`.

# %% nbgrader={"grade": false, "grade_id": "integer_dense", "locked": false, "schema_version": 3, "solution": true, "task": false}
def integer_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu):
    ### BEGIN SOLUTION
    acc = (q_x.astype(np.int32) - z_x) @ q_W.T.astype(np.int32) + q_b
    return Q.requantize(acc, M0, n, z_y, relu=relu)
    ### END SOLUTION


# %% labkit={"answer": "integer_dense"} nbgrader={"grade": true, "grade_id": "check_integer_dense", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab04.integer_dense(integer_dense)

# %% [markdown]
# ## 5. The integer-only engine, end to end
#
# `Q.quantize_model(model, calib=...)` does all of the above for a whole network: int8 per-channel
# symmetric weights, uint8 per-tensor affine activations whose ranges are **calibrated on 2,000
# training images** (never the validation or test images), int32 biases and accumulators, one
# $(M_0, n)$ per output channel, ReLU fused as a clamp, max pooling on the integers (it commutes with
# the monotonic quantization) and convolution padding with the zero point. Only the input is
# quantized from float; the predicted class is the argmax of the integer logits.
#
# `Q.simulate_float64` recomputes the same integer arithmetic in float64 (accumulators by a float64
# matmul, exact because every partial sum is an integer below $2^{53}$; requantization as
# $\operatorname{rint}(acc \cdot M) + z$) — an independent oracle that the engine must match **bit for bit**.
#
# The engine's `predict_int` is readable numpy: its int32 matrix products have no BLAS behind them,
# so it is slow. `labkit.kernels.gemm_int8_requant` is the same layer — $(q_x - z_x)\,q_W^T + q_b$
# accumulated in int32, then requantized with $(M_0, n)$, ties to even, with the fused ReLU — as a
# compiled kernel (lab 07). `engine.predict_int(X, backend="kernels")` runs the engine's layers through
# it (convolutions after the same im2col), so the whole network can be evaluated in a fraction of the
# time; we check below that it gives the same integers.
#
# **Choosing the activation calibration on validation.** The activation ranges can be the min and max
# seen on the calibration images (`"minmax"`) or a percentile of them that clips rare outliers
# (`"percentile"`, lab 03). We build the engine with each and keep, per network, the one whose
# integer-only predictions are most accurate on validation (`"minmax"` on a tie, the simpler). Lab 03's
# third method, the range that minimises the quantization MSE (`"mse"`), searches many candidate
# ranges per tensor; on LeNet-5's activations it took most of a minute on our loaded machine, more
# than this whole lab may spend, so it is left out here.

# %% tags=["nbval-ignore-output", "skip-grading"]
CALIB = data.X_train[:2000]
METHODS = ("minmax", "percentile")
candidates = {(name, m): Q.quantize_model(net, calib=CALIB, method=m) for name, net in nets.items() for m in METHODS}
calib_acc = {key: float((eng.predict_int(X_val, backend="kernels").argmax(1) == y_val).mean())
             for key, eng in candidates.items()}
calib_choice = {name: max(METHODS, key=lambda m: calib_acc[name, m]) for name in nets}
for name in nets:
    print(f"{name}: integer-only validation accuracy by calibration",
          {m: round(calib_acc[name, m], 4) for m in METHODS}, f"-> validation chose {calib_choice[name]!r}")

# %% tags=["nbval-ignore-output", "skip-grading"]
engines = {name: candidates[name, calib_choice[name]] for name in nets}
print(engines["LeNet-5"])  # zero points come from the calibration: not compared

# %% tags=["nbval-ignore-output", "skip-grading"]
results = {}
X_check = X_val[:500]  # the numpy engine and its float64 oracle are slow: 500 images check bit-exactness
for name, net in nets.items():
    eng = engines[name]
    q_logits = eng.predict_int(X_check)
    int_pred = eng.predict_int(X_val, backend="kernels").argmax(axis=1)
    float_pred = net.predict(X_val)
    results[name] = {
        "int_acc": float((int_pred == y_val).mean()),
        "agree": float((int_pred == float_pred).mean()),
        "bit_exact": bool(np.array_equal(q_logits.astype(np.int64), Q.simulate_float64(eng, X_check))),
        "kernels_exact": bool(np.array_equal(q_logits, eng.predict_int(X_check, backend="kernels"))),
        "float_bytes": metrics.size_bytes(net),
        "int_bytes": metrics.size_bytes(eng, "int8_engine"),
    }
    r = results[name]
    print(f"{name} (validation): float {base[name]:.4f}, integer-only {r['int_acc']:.4f} "
          f"({100 * (r['int_acc'] - base[name]):+.2f} pp), predictions agree on {r['agree']:.2%}")

# %% tags=["skip-grading"]
for name in nets:
    r = results[name]
    print(f"{name}: integer engine equals its float64 simulation bit for bit (500 validation images): "
          f"{'yes' if r['bit_exact'] else 'no'}")
    print(f"{name}: the engine run by labkit.kernels gives the same integer logits: {'yes' if r['kernels_exact'] else 'no'}")
    print(f"{name}: engine bytes {r['int_bytes']:,} vs float32 {r['float_bytes']:,}; >= 3.9x fewer: "
          f"{'yes' if r['float_bytes'] >= 3.9 * r['int_bytes'] else 'no'}")

# %% [markdown]
# The bytes are exact: every array the engine needs at run time — int8 weights, one int32 bias, one
# int32 $M_0$ and one int8 shift per output channel, the 8-bit zero points, and the float32 scale of
# the input and the output. LeNet-300-100 reaches 3.95×; **LeNet-5 stays just below 3.9×**
# because its layers are small: its 236 output channels cost 9 bytes each next to only 61,470
# weights (the 4× of int8 vs float32 is only the limit for large layers).
#
# **Latency.** Three ways to classify a batch of 256 validation images, timed in alternating blocks
# in one run (`bench.timeit_interleaved`, so that a burst of load from other programs falls on all
# three): the float32 model (float32 matmuls in an optimised BLAS, one thread), the engine's
# readable numpy `predict` (int32 matmuls without BLAS), and the same integers through
# `labkit.kernels` (compiled, one thread). We print ratios to the float model, not times: times
# depend on the machine, the ratios much less.

# %% tags=["nbval-ignore-output", "skip-grading"]
speed = {}
for name, net in nets.items():
    xb = X_val[:256]
    t = bench.timeit_interleaved(
        {
            "float32": partial(net.predict, xb),
            "integer, numpy": partial(engines[name].predict, xb),
            "integer, labkit.kernels": lambda: engines[name].predict_int(xb, backend="kernels").argmax(1),  # noqa: B023
        },
        repeat=4, warmup=1, rounds=2, settle=0.05,
    )
    speed[name] = {k: v.median / t["float32"].median for k, v in t.items()}
    print(f"{name}, batch of 256, time relative to float32 (median of 4, this run):",
          ", ".join(f"{k} {v:.2f}x" for k, v in speed[name].items()))

# %% tags=["skip-grading"]
print("LeNet-300-100: the numpy integer engine is at least 3x slower than float32 (a wide margin, for a busy machine):",
      "yes" if speed["LeNet-300-100"]["integer, numpy"] >= 3 else "no")

# %% [markdown]
# **Reading the ratios** (printed above, measured in one run on our 2-core machine while other jobs
# were running: read them as rough). The engine's numpy `predict` was many times slower than the float
# model on LeNet-300-100, whose time is almost all in three matrix products — float32 ones run in BLAS,
# int32 ones in numpy's plain loop; the verdict line above keeps only what survives a busy machine (at
# least 3× slower). On LeNet-5 the gap was much smaller (a few times), because a large part of the
# float model's time is spent outside matrix products (im2col, pooling), which cost about the same in
# both; on an earlier, heavily loaded run the integer engine even came out ahead of the float model on
# LeNet-5. Through `labkit.kernels` the same integers came closer to the float model (about 3× slower
# on LeNet-300-100, between 0.9× and 1.4× on LeNet-5 across our runs) — we state no winner on LeNet-5:
# the ratio is near 1 and moves with the load. Integer inference pays where int8 dot-product instructions (VNNI, NEON
# `sdot`) do the work at 4× the width of float32; lab 07 times such kernels against BLAS.

# %% [markdown]
# **The two roundings on a whole network.** The same LeNet-300-100 engine built with
# `rounding="gemmlowp"` (Jacob et al.'s requantization) instead of the default single rounding, on the
# 2,000 validation images: how many integer logits and predicted classes change?

# %% tags=["skip-grading"]
eng_s = Q.quantize_model(nets["LeNet-300-100"], calib=CALIB)
eng_g = Q.quantize_model(nets["LeNet-300-100"], calib=CALIB, rounding="gemmlowp")
logits_s = eng_s.predict_int(X_val).astype(np.int64)
logits_g = eng_g.predict_int(X_val).astype(np.int64)
changed = logits_s != logits_g
print(
    f"integer logits that differ: {int(changed.sum()):,} of {changed.size:,}, by at most {int(np.abs(logits_s - logits_g).max())} step(s)"
)
print(f"predicted classes that differ: {int((logits_s.argmax(1) != logits_g.argmax(1)).sum())} of {len(X_val):,}")

# %% [markdown]
# As printed: a few dozen of the 20,000 integer logits move by one step, and not one predicted class
# changes on these images. Each difference starts as a one-step change in some requantized activation
# (which the next layers could in principle carry further); a prediction could only change where the
# top two logits were within a step of each other. So the choice does not show in accuracy — but the
# two engines are not bit-identical, which is what matters when matching another implementation.

# %% [markdown]
# ## 6. Test, once: the claims, with intervals
#
# Every choice is now fixed, each made on validation: PTQ bits and granularity per network
# (section 1), the QAT and codebook learning rates (sections 2–3), the activation calibration
# (section 5). The 10,000 **test** images are used once, here. Two kinds of claims:
#
# * **Two fixed models** (PTQ vs float, per-channel vs per-tensor, k-means vs affine, integer vs
#   float) on the same test images: the paired difference of accuracies A − B with a 95 % bootstrap
#   interval (`stats.paired_bootstrap`, 10,000 resamples of the test images).
# * **Training claims** (QAT, codebook fine-tuning): per seed (0, 1, 2), the paired difference of
#   test accuracies; then the mean and the 95 % t-interval over the three seeds
#   (`stats.seed_summary`). With three seeds $t_{0.975, 2} = 4.30$: the interval is wide.
#   "Recovers at least half of what PTQ lost" is the difference QAT − (PTQ + float)/2: above 0 when
#   QAT ends above the midpoint between PTQ and float.
#
# The verdict is "yes" (interval above 0), "no" (below 0) or "not resolved at this sample size"
# (it contains 0).

# %% tags=["test-once", "skip-grading"]
# Test, once: every choice above was made on validation
X_test, y_test = data.X_test, data.y_test
correct_test = {}


def correct(key, model):
    """Per-image correctness on the test split (cached by key)."""
    if key not in correct_test:
        correct_test[key] = model.predict(X_test) == y_test
    return correct_test[key]


def ptq_correct(name, bits, per_channel):
    return correct((name, per_channel, bits), Q.fake_quantize_weights(nets[name], bits, per_channel))


float_pred = {name: net.predict(X_test) for name, net in nets.items()}
float_correct = {name: float_pred[name] == y_test for name in nets}
fixed_claims = []  # (text, correct_a, correct_b): A beats B?
for name, (b, pc) in ptq_choice.items():
    fixed_claims.append((f"{name}: float32 beats PTQ at {b} bits {'per-channel' if pc else 'per-tensor'} "
                         "(validation's choice)", float_correct[name], ptq_correct(name, b, pc)))
for name in nets:
    fixed_claims.append((f"{name}: at 4 bits, per-channel beats per-tensor",
                         ptq_correct(name, 4, True), ptq_correct(name, 4, False)))
km_correct = {b: correct(("km", b), km_models[b][0]) for b in (4, 3, 2)}
for b in (4, 3, 2):
    fixed_claims.append((f"LeNet-300-100: k-means beats affine per-tensor at {b} bits ({2**b} levels each)",
                         km_correct[b], correct(("affine", b), affine_per_tensor(lenet, b))))
fixed_claims.append(("LeNet-300-100: k-means (16 levels per layer) beats symmetric per-channel at 4 bits",
                     km_correct[4], ptq_correct("LeNet-300-100", 4, True)))
int_pred = {name: engines[name].predict_int(X_test, backend="kernels").argmax(1) for name in nets}
int_correct = {name: int_pred[name] == y_test for name in nets}
int_agree = {name: float((int_pred[name] == float_pred[name]).mean()) for name in nets}
for name in nets:
    fixed_claims.append((f"{name}: float32 beats the integer-only engine ({calib_choice[name]} calibration)",
                         float_correct[name], int_correct[name]))
fixed_results = [(text, a.mean(), b.mean(), *stats.paired_bootstrap(a, b, seed=0)) for text, a, b in fixed_claims]

acc_l3 = float_correct["LeNet-300-100"].mean()
seed_claims = []  # (text, per-seed differences)
for b in QAT_BITS:
    ptq_b = ptq_correct("LeNet-300-100", b, True).mean()
    qat_b = [correct(("qat", b, s), qat_models[b, s]).mean() for s in SEEDS]
    seed_claims.append((f"QAT at {b} bits (lr {qat_lr[b]:g}) beats PTQ at {b} bits", [q - ptq_b for q in qat_b]))
    seed_claims.append((f"QAT at {b} bits recovers at least half of what PTQ lost",
                        [q - (ptq_b + acc_l3) / 2 for q in qat_b]))
km2_test = km_correct[2].mean()
cb_test = [correct(("codebook", s), cb_models[s]).mean() for s in SEEDS]
seed_claims.append((f"codebook fine-tuning (lr {cb_lr:g}) beats 2-bit k-means before it", [a - km2_test for a in cb_test]))
seed_claims.append(("codebook fine-tuning recovers at least half of what 2-bit k-means lost",
                    [a - (km2_test + acc_l3) / 2 for a in cb_test]))
seed_results = [(text, diffs, *stats.seed_summary(diffs)) for text, diffs in seed_claims]

# %% tags=["test-once", "nbval-ignore-output", "skip-grading"]
# Test, once: the numbers behind the verdicts (they move a little from machine to machine)
for name in nets:
    print(f"{name}: float32 test accuracy {float_correct[name].mean():.4f}; integer-only engine "
          f"{int_correct[name].mean():.4f}, predictions agree with float on {int_agree[name]:.2%}")
print(f"\n{'two fixed models: A beats B?':86s} {'A':>6} {'B':>6} {'A−B (pp)':>9} {'95 % bootstrap interval':>24}")
for text, acc_a, acc_b, diff, lo, hi in fixed_results:
    print(f"{text:86s} {100 * acc_a:6.2f} {100 * acc_b:6.2f} {100 * diff:+9.2f}   [{100 * lo:+6.2f}, {100 * hi:+6.2f}] pp")
print("\ntraining claims, over seeds 0, 1, 2:")
for text, diffs, mean, _std, lo, hi in seed_results:
    per_seed = ", ".join(f"{100 * d:+.2f}" for d in diffs)
    print(f"{text}: {100 * mean:+.2f} pp (95 % t-interval over 3 seeds {100 * lo:+.2f} to {100 * hi:+.2f}; "
          f"per seed {per_seed})")

# %% tags=["test-once", "skip-grading"]
# Test, once: the verdicts
for text, _acc_a, _acc_b, _diff, lo, hi in fixed_results:
    print(f"{text}: {stats.verdict(lo, hi)}")
for text, _diffs, _mean, _std, lo, hi in seed_results:
    print(f"{text}: {stats.verdict(lo, hi)}")

# %% [markdown]
# **Reading the verdicts** (written after running; the numbers are in the cells above and move a
# little from machine to machine).
#
# * **PTQ at the bits validation chose (6).** On LeNet-300-100 the float model is ahead ("yes", about
#   0.2 pp, inside the 0.5 pp budget validation used); on LeNet-5 the difference is not resolved. 6-bit
#   weights cost at most a few tenths of a point — not "nothing".
# * **Per-channel vs per-tensor at 4 bits.** Yes on LeNet-5 (under a point); not resolved on
#   LeNet-300-100. The per-channel advantage the textbooks describe shows on the network whose
#   channels differ more (conv filters); on the MLP at 4 bits it is within the noise.
# * **k-means vs linear.** With the same number of levels per layer, k-means beats the affine grid at
#   4, 3 and 2 bits (from under a point at 4 bits to tens of points at 2). At 4 bits it also beats the
#   symmetric per-channel quantizer, by about half a point (yes).
# * **QAT (three seeds).** QAT beats PTQ at 4 bits (yes, under a point: PTQ itself loses under a
#   point there) and at 2 bits (yes, tens of points). "QAT at 4 bits recovers at least half of what PTQ
#   lost" is **yes** in our run, but by a few tenths of a point above the midpoint between PTQ and
#   float, with three seeds whose spread is small because they differ only in the batch order of half
#   an epoch; an earlier version of this lab, with other learning rates and a full epoch, got "not
#   resolved" on the same claim. At 2 bits QAT recovers well over half (yes), and in our run ended a
#   few points below the float model.
# * **Codebook fine-tuning (three seeds).** Yes and yes: one pass over 9,000 images, training the 4 shared values per
#   layer wins back several points and more than half of what 2-bit k-means lost, and the model keeps
#   its 4 values per layer.
# * **The integer-only engine vs float.** Not resolved on either network: on the test set, 8-bit
#   weights and activations with integer arithmetic are indistinguishable from float at this sample
#   size, while the predictions agree on about 99.4 % of the images (printed above).
#
# ## 7. Questions to think about
#
# 1. QAT at 4 bits barely has anything to recover on LeNet-300-100. Which layer would you keep at
#    8 bits if you had to go to 2 bits everywhere else, and how would you find out (on which split)?
# 2. The STE passes gradients through a function whose true derivative is zero. Why does training
#    still converge? What would happen with the true derivative?
# 3. Section 4 showed that single rounding and gemmlowp's two roundings disagree on about two
#    accumulators in a thousand. Why does gemmlowp accept the double rounding, when one rounding of
#    the 64-bit product is exact? (Think of 32-bit SIMD registers.)
# 4. Why must a convolution's padding use the zero point $z_x$ and not the integer 0?
# 5. k-means needs a codebook lookup before each multiply; linear quantization does not. When is
#    k-means worth that?
# 6. Section 6 needs three seeds for a training claim and still often cannot resolve it. How many
#    seeds would a difference of 0.2 pp need, given the spread you saw between seeds?
#
# ## 8. Summary
#
# | experiment | chosen on validation (our run) | test, once (section 6) |
# |---|---|---|
# | PTQ, 8/6/4/3/2 bits | 6 bits for both networks (fewest bits within 0.5 pp); granularity a toss-up at 6 bits | float ahead by about 0.2 pp on LeNet-300-100 (yes), not resolved on LeNet-5 |
# | per-channel vs per-tensor, 4 bits | — | yes on LeNet-5, not resolved on LeNet-300-100 |
# | QAT, 4 and 2 bits, half an epoch | lr $10^{-5}$ at 4 bits (a flat validation curve: any small rate), $10^{-3}$ at 2 bits | beats PTQ at both (yes, 3 seeds); recovers at least half of PTQ's loss: yes at both (at 4 bits by a few tenths of a point) |
# | k-means vs linear, 4/3/2 bits | — | k-means beats affine per-tensor at every width (yes), and symmetric per-channel at 4 bits (yes) |
# | 2-bit k-means + codebook fine-tuning | lr printed in section 3 | beats k-means alone and recovers over half its loss (yes, 3 seeds); 4 values per layer kept |
# | integer-only engine | percentile activation calibration (both networks) | bit-exact vs float64 simulation and vs `labkit.kernels`; vs float: not resolved (≈ 99.4 % agreement); 3.95× fewer bytes (LeNet-300-100), 3.88× (LeNet-5) |
# | latency (ratios, one run, loaded machine) | — | numpy engine ≥ 3× slower than float on LeNet-300-100; no winner claimed for LeNet-5 or for `labkit.kernels` |
# | single vs gemmlowp requantization | — | one-step differences on about 0.2 % of accumulators (double rounding); no predicted class changed on validation |
