# %% [markdown]
# # Lab 04 — Post-training quantization, quantization-aware training, integer-only inference
#
# **You will leave able to** quantize a trained network after training (PTQ) and read its
# accuracy-vs-bits curve, train *through* the quantizer with the straight-through estimator (QAT),
# compare linear with k-means quantization, and run a network with integers only — int8 weights,
# uint8 activations, int32 accumulators and a fixed-point multiplier — bit for bit.
#
# **Time:** about 60 minutes; the notebook needs about 100 s of CPU time (one BLAS thread; several
# minutes of wall time on a busy machine).
#
# **Reading:** Jacob et al. 2018 (integer-only inference, §2–3); Krishnamoorthi 2018 (PTQ, per-channel,
# QAT, §3–4); Bengio et al. 2013 (the straight-through estimator); Han et al. 2016, *Deep Compression* (§3,
# k-means weight sharing).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from labkit import bench, metrics, models, plot, train
from labkit import quant as Q
from labkit.data import load_fashion_mnist

threadpool_limits(1)  # one BLAS thread: the same summation order, so the same training, on every machine

data = load_fashion_mnist()
X_test, y_test = data.X_test, data.y_test
nets = {"LeNet-300-100": models.pretrained("lenet_300_100"), "LeNet-5": models.pretrained("lenet5")}
t_start = time.perf_counter()

# %% tags=["nbval-ignore-output", "skip-grading"]
base = {name: train.evaluate(net, X_test, y_test) for name, net in nets.items()}
for name, acc in base.items():
    print(f"{name}: float32 test accuracy {acc:.4f}")

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

# %% tags=["nbval-ignore-output", "skip-grading"]
bits_list = [8, 6, 4, 3, 2]
ptq = {}
for name, net in nets.items():
    for per_channel in (True, False):
        for b in tqdm(bits_list, desc=f"{name} {'per-channel' if per_channel else 'per-tensor'}", leave=False):
            ptq[name, per_channel, b] = train.evaluate(Q.fake_quantize_weights(net, b, per_channel), X_test, y_test)
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
for ax, name in zip(axes, nets):
    curves = {
        kind: [ptq[name, pc, b] for b in bits_list] for kind, pc in [("per-channel", True), ("per-tensor", False)]
    }
    plot.accuracy_vs_bits(bits_list, curves, base[name], ax=ax, title=f"PTQ of {name}")  # ticked at bits_list
    for b in bits_list:
        print(f"{name}, {b} bits: per-channel {ptq[name, True, b]:.4f}, per-tensor {ptq[name, False, b]:.4f}")
fig.tight_layout()  # room for each panel's legend, which sits outside it
plot.show(
    fig,
    alt="Test accuracy after post-training weight quantization at 8, 6, 4, 3 and 2 bits, one panel per "
    "network (LeNet-300-100, LeNet-5), bits decreasing from left to right, per-channel and per-tensor scales "
    "as two lines, the float accuracy as a horizontal line. Both lines stay on the float line down to 6 bits, bend at 4 and collapse at 2 bits, "
    "the per-tensor line first; the accuracies are printed below the figure.",
)
margin4 = {name: 100 * (ptq[name, True, 4] - ptq[name, False, 4]) for name in nets}
print("per-channel minus per-tensor at 4 bits (pp):", {k: round(v, 2) for k, v in margin4.items()})

# %% tags=["skip-grading"]
for name in nets:
    print(f"{name}: at 4 bits, per-channel beats per-tensor: {'yes' if margin4[name] > 0 else 'no'}")
print(
    "LeNet-300-100: 8-bit weights within 0.3 pp of float:",
    "yes" if base["LeNet-300-100"] - ptq["LeNet-300-100", True, 8] < 0.003 else "no",
)


# %% [markdown]
# Down to 6 bits the rounding error hides in the noise; at 3 and 2 bits the networks collapse, and
# per-tensor collapses first: its scale is set by the channel with the largest weights, leaving
# the others with fewer effective levels (lab 03, section 6).
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
# Now QAT on LeNet-300-100 at 4 and 2 bits (per-channel weights), three epochs each from the
# trained weights, with a small learning rate. We compare with PTQ at the same bits and count how
# much of PTQ's accuracy loss QAT wins back.

# %% tags=["nbval-ignore-output", "skip-grading"]
lenet = nets["LeNet-300-100"]
qat = {}
for b, lr in [(4, 1e-4), (2, 3e-4)]:
    student = lenet.copy()
    train.fit(student, data, epochs=3, lr=lr, batch_size=128, seed=0, callbacks=[Q.QATCallback(bits=b)], progress=True)
    qat[b] = train.evaluate(Q.fake_quantize_weights(student, b), X_test, y_test)
    lost = base["LeNet-300-100"] - ptq["LeNet-300-100", True, b]
    print(f"{b} bits: float {base['LeNet-300-100']:.4f}, PTQ {ptq['LeNet-300-100', True, b]:.4f}, QAT {qat[b]:.4f}")
    won = qat[b] - ptq["LeNet-300-100", True, b]
    print(f"        PTQ lost {100 * lost:.2f} pp; QAT recovered {100 * won:.2f} pp "
          f"= {(qat[b] - ptq['LeNet-300-100', True, b]) / lost:.0%} of it")

# %% tags=["skip-grading"]
for b in (4, 2):
    lost = base["LeNet-300-100"] - ptq["LeNet-300-100", True, b]
    won = qat[b] - ptq["LeNet-300-100", True, b]
    print(
        f"QAT at {b} bits recovers at least half of what PTQ lost: {'yes' if lost > 0 and won >= 0.5 * lost else 'no'}"
    )


# %% [markdown]
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


levels = {
    "k-means": [len(np.unique(layer.W)) for _, layer in Q.kmeans_quantize_model(lenet, 2)[0].weight_layers()],
    "affine per-tensor": [len(np.unique(layer.W)) for _, layer in affine_per_tensor(lenet, 2).weight_layers()],
    "symmetric per-tensor": [
        len(np.unique(layer.W)) for _, layer in Q.fake_quantize_weights(lenet, 2, False).weight_layers()
    ],
}
print("distinct weight values in fc1, fc2, fc3 at 2 bits:")
for kind, counts in levels.items():
    print(f"  {kind:<21} {counts}")

# %% tags=["nbval-ignore-output", "skip-grading"]
km_acc, aff_acc = {}, {}
for b in (4, 3, 2):
    km_model, _ = Q.kmeans_quantize_model(lenet, b)
    km_acc[b] = train.evaluate(km_model, X_test, y_test)
    aff_acc[b] = train.evaluate(affine_per_tensor(lenet, b), X_test, y_test)
    print(f"{b} bits: k-means {km_acc[b]:.4f} ({2**b} levels), affine per-tensor {aff_acc[b]:.4f} ({2**b} levels), "
          f"symmetric per-channel {ptq['LeNet-300-100', True, b]:.4f} ({2**b - 1} levels per row)")
for b in (4, 3, 2):
    print(f"k-means minus affine per-tensor at {b} bits: {100 * (km_acc[b] - aff_acc[b]):+.2f} pp")

# %% tags=["skip-grading"]
for b in (4, 3, 2):
    print(f"{b} bits, same number of levels per layer: k-means at least as accurate as affine per-tensor:",
          "yes" if km_acc[b] >= aff_acc[b] else "no")
print(
    "4 bits: k-means at least as accurate as symmetric per-channel:",
    "yes" if km_acc[4] >= ptq["LeNet-300-100", True, 4] else "no",
)

# %% [markdown]
# **Reading the verdicts.** With the same number of levels per layer, k-means is at least as accurate
# as the evenly spaced affine grid at every bit width, by a fraction of a point at 4 bits and by tens
# of points at 2 bits, where 4 evenly spaced levels waste most of their range on the few large
# weights. The last line is "no", and that is expected: the symmetric per-channel quantizer is not
# like-for-like — it has 300 grids for fc1's 300 rows, each fitted to its own row, against one
# codebook for the whole layer; at 4 bits that finer granularity is worth about as much as placing
# the levels well (the two are within a few tenths of a point).
#
# **Codebook fine-tuning.** With 2 bits (4 shared values per layer) accuracy drops. Han et al.
# fine-tune the shared values: each centroid's gradient is the **sum** of the gradients of the
# weights that share it, $\partial L / \partial c_k = \sum_{ij: I_{ij} = k} \partial L / \partial W_{ij}$;
# the assignments stay fixed, so the model keeps exactly 4 distinct values per layer. (A pruned
# weight belongs to no cluster and contributes nothing; this network is not pruned, lab 06's is.)
# `Q.CodebookFinetune` does this as a training callback.

# %% tags=["nbval-ignore-output", "skip-grading"]
km2, books = Q.kmeans_quantize_model(lenet, 2)
km2_before = train.evaluate(km2, X_test, y_test)
train.fit(km2, data, epochs=3, lr=1e-3, seed=0, callbacks=[Q.CodebookFinetune(books, lr=1e-3)], progress=True)
km2_after = train.evaluate(km2, X_test, y_test)
lost2, won2 = base["LeNet-300-100"] - km2_before, km2_after - km2_before
print(f"2-bit k-means: {km2_before:.4f} before fine-tuning, {km2_after:.4f} after (float {base['LeNet-300-100']:.4f})")
print(f"recovered {100 * won2:.2f} pp of the {100 * lost2:.2f} pp lost = {won2 / lost2:.0%}")

# %% tags=["skip-grading"]
print(
    "distinct weight values per layer after fine-tuning:",
    {n: len(np.unique(layer.W)) for n, layer in km2.weight_layers()},
)
print("2-bit k-means + codebook fine-tuning recovers most (> 50%) of its loss:",
      "yes" if km2_after - km2_before > 0.5 * lost2 else "no")


# %% [markdown]
# The MIT 6.5940 lab reports 16% → 91% for 2-bit k-means on VGG/CIFAR-10; our small MLP loses
# much less at 2 bits to begin with, and fine-tuning closes most of that gap.
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
# training images** (never the test set), int32 biases and accumulators, one $(M_0, n)$ per output
# channel, ReLU fused as a clamp, max pooling on the integers (it commutes with the monotonic
# quantization) and convolution padding with the zero point. Only the input is quantized from float;
# the predicted class is the argmax of the integer logits.
#
# `Q.simulate_float64` recomputes the same integer arithmetic in float64 (accumulators by a float64
# matmul, exact because every partial sum is an integer below $2^{53}$; requantization as
# $\operatorname{rint}(acc \cdot M) + z$) — an independent oracle that the engine must match **bit for bit**.

# %% tags=["nbval-ignore-output"]
engines = {name: Q.quantize_model(net, calib=data.X_train[:2000]) for name, net in nets.items()}
print(engines["LeNet-5"])  # zero points come from the calibration: not compared

# %% tags=["nbval-ignore-output"]
results = {}
for name, net in nets.items():
    eng = engines[name]
    q_logits = eng.predict_int(X_test)
    int_pred = q_logits.argmax(axis=1)
    float_pred = net.predict(X_test)
    results[name] = {
        "int_acc": float((int_pred == y_test).mean()),
        "agree": float((int_pred == float_pred).mean()),
        "bit_exact": bool(np.array_equal(q_logits.astype(np.int64), Q.simulate_float64(eng, X_test))),
        "float_bytes": metrics.size_bytes(net),
        "int_bytes": metrics.size_bytes(eng, "int8_engine"),
        "t_float": bench.timeit(net.predict, X_test[:256], repeat=5, warmup=1).median,
        "t_int": bench.timeit(eng.predict, X_test[:256], repeat=5, warmup=1).median,
    }
    r = results[name]
    gap, ratio = 100 * (r["int_acc"] - base[name]), r["float_bytes"] / r["int_bytes"]
    print(f"{name}: float {base[name]:.4f}, integer-only {r['int_acc']:.4f} ({gap:+.2f} pp), "
          f"predictions agree on {r['agree']:.2%}")
    print(f"    bytes: float32 {r['float_bytes']:,}, integer engine {r['int_bytes']:,} ({ratio:.3f}x fewer)")
    print(f"    batch-256 latency: float32 {1e3 * r['t_float']:.2f} ms, integer engine {1e3 * r['t_int']:.2f} ms")

# %%
for name in nets:
    r = results[name]
    print(f"{name}: integer engine equals its float64 simulation bit for bit: {'yes' if r['bit_exact'] else 'no'}")
    print(
        f"{name}: predictions agree with the float model on >= 99% of test images:",
        "yes" if r["agree"] >= 0.99 else "no",
    )
    print(
        f"{name}: integer-only accuracy within 0.3 pp of float: {'yes' if base[name] - r['int_acc'] <= 0.003 else 'no'}"
    )
    print(f"{name}: engine bytes {r['int_bytes']:,} vs float32 {r['float_bytes']:,}; >= 3.9x fewer: "
          f"{'yes' if r['float_bytes'] >= 3.9 * r['int_bytes'] else 'no'}")

# %% [markdown]
# The bytes are exact: every array the engine needs at run time — int8 weights, one int32 bias, one
# int32 $M_0$ and one int8 shift per output channel, the 8-bit zero points, and the float32 scale of
# the input and the output. LeNet-300-100 reaches 3.95×; **LeNet-5 stays just below 3.9×**
# because its layers are small: its 236 output channels cost 9 bytes each next to only 61,470
# weights (the 4× of int8 vs float32 is only the limit for large layers).
#
# **Latency.** This engine is readable numpy, and numpy has no BLAS for integer matrices: its int32
# matmul is a plain loop, while the float model's float32 matmul runs in an optimised BLAS. So do not
# expect the integer engine to be faster here (on an idle 2-core machine it was several times slower
# for LeNet-300-100). Integer inference pays where int8 dot-product instructions do the work (VNNI,
# NEON `sdot`), which lab 07's kernels use.

# %% [markdown]
# **The two roundings on a whole network.** The same LeNet-300-100 engine built with
# `rounding="gemmlowp"` (Jacob et al.'s requantization) instead of the default single rounding, on all
# 10,000 test images: how many integer logits and predicted classes change?

# %%
eng_g = Q.quantize_model(nets["LeNet-300-100"], calib=data.X_train[:2000], rounding="gemmlowp")
logits_s = engines["LeNet-300-100"].predict_int(X_test).astype(np.int64)
logits_g = eng_g.predict_int(X_test).astype(np.int64)
changed = logits_s != logits_g
print(
    f"integer logits that differ: {int(changed.sum()):,} of {changed.size:,}, by at most {int(np.abs(logits_s - logits_g).max())} step(s)"
)
print(f"predicted classes that differ: {int((logits_s.argmax(1) != logits_g.argmax(1)).sum())} of {len(X_test):,}")

# %% [markdown]
# As printed: a few hundred of the 100,000 integer logits move by one step, and not one predicted
# class changes. Each difference starts as a one-step change in some requantized activation (which
# the next layers could in principle carry further); a prediction could only change where the top
# two logits were within a step of each other. So the choice does not show in accuracy — but the
# two engines are not bit-identical, which is what matters when matching another implementation.

# %% tags=["nbval-ignore-output"]
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")

# %% [markdown]
# ## 6. Questions to think about
#
# 1. QAT at 4 bits barely has anything to recover on LeNet-300-100. Which layer would you keep at
#    8 bits if you had to go to 2 bits everywhere else, and how would you find out?
# 2. The STE passes gradients through a function whose true derivative is zero. Why does training
#    still converge? What would happen with the true derivative?
# 3. Section 4 showed that single rounding and gemmlowp's two roundings disagree on about two
#    accumulators in a thousand. Why does gemmlowp accept the double rounding, when one rounding of
#    the 64-bit product is exact? (Think of 32-bit SIMD registers.)
# 4. Why must a convolution's padding use the zero point $z_x$ and not the integer 0?
# 5. k-means needs a codebook lookup before each multiply; linear quantization does not. When is
#    k-means worth that?
#
# ## 7. Summary
#
# | experiment | result (raw numbers in the cells above) |
# |---|---|
# | PTQ, 8/6/4/3/2 bits | 8 and 6 bits ≈ float; 4 bits: per-channel better than per-tensor on both nets; 2 bits collapses |
# | QAT, 4 and 2 bits | recovers most of PTQ's loss (most visible at 2 bits) |
# | k-means vs linear, 4/3/2 bits | with the same levels per layer ($2^b$), k-means ≥ affine per-tensor at every width, by tens of points at 2 bits; symmetric per-channel ($2^b - 1$ levels per row) is about as good at 4 bits |
# | 2-bit k-means + codebook fine-tuning | most of the loss recovered, 4 shared values per layer kept |
# | integer-only engine | bit-exact vs float64 simulation; ≥ 99% agreement; within 0.3 pp; 3.95× fewer bytes (LeNet-300-100), 3.88× (LeNet-5) |
# | single vs gemmlowp requantization | one-step differences on about 0.2 % of accumulators (double rounding); see section 5 for logits and predictions |
