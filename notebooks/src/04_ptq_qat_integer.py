# %% [markdown]
# # Lab 04 — Post-training quantization, quantization-aware training, integer-only inference
#
# **You will leave able to** quantize a trained network after training (PTQ) and read its
# accuracy-vs-bits curve, train *through* the quantizer with the straight-through estimator (QAT),
# compare linear with k-means quantization, and run a network with integers only — int8 weights,
# uint8 activations, int32 accumulators and a fixed-point multiplier — bit for bit.
#
# **Time:** about 60 minutes; the notebook runs in one to two minutes.
#
# **Reading:** Jacob et al. 2018 (integer-only inference, §2–3); Krishnamoorthi 2018 (PTQ, per-channel,
# QAT, §3–4); Bengio et al. 2013 (the straight-through estimator); Han et al. 2016, *Deep Compression* (§3,
# k-means weight sharing).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from labkit import bench, metrics, models, plot, train
from labkit import quant as Q
from labkit.data import load_fashion_mnist

data = load_fashion_mnist()
X_test, y_test = data.X_test, data.y_test
nets = {"LeNet-300-100": models.pretrained("lenet_300_100"), "LeNet-5": models.pretrained("lenet5")}
t_start = time.perf_counter()

# %% ignore-output
base = {name: train.evaluate(net, X_test, y_test) for name, net in nets.items()}
for name, acc in base.items():
    print(f"{name}: float32 test accuracy {acc:.4f}")

# %% [markdown]
# ## 1. Post-training quantization (PTQ) of the weights
#
# PTQ takes the trained float weights and rounds them: here symmetric, $s = \max|W| / (2^{b-1}-1)$,
# either one scale for the whole tensor (**per-tensor**) or one per output channel (**per-channel**).
# `Q.fake_quantize_weights(model, bits, per_channel)` returns a copy whose weights hold exactly the
# values an integer kernel would use ("fake" quantization: stored as float, valued on the grid), so
# evaluating it measures the accuracy the quantized weights give. Activations stay float here;
# section 5 quantizes them too.

# %% ignore-output
bits_list = [8, 6, 4, 3, 2]
ptq = {}
for name, net in nets.items():
    for per_channel in (True, False):
        for b in tqdm(bits_list, desc=f"{name} {'per-channel' if per_channel else 'per-tensor'}", leave=False):
            ptq[name, per_channel, b] = train.evaluate(Q.fake_quantize_weights(net, b, per_channel), X_test, y_test)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, name in zip(axes, nets):
    curves = {
        kind: [ptq[name, pc, b] for b in bits_list] for kind, pc in [("per-channel", True), ("per-tensor", False)]
    }
    plot.accuracy_vs_bits(bits_list, curves, base[name], ax=ax, title=f"PTQ of {name}")
    for b in bits_list:
        print(f"{name}, {b} bits: per-channel {ptq[name, True, b]:.4f}, per-tensor {ptq[name, False, b]:.4f}")
plt.show()
margin4 = {name: 100 * (ptq[name, True, 4] - ptq[name, False, 4]) for name in nets}
print("per-channel minus per-tensor at 4 bits (pp):", {k: round(v, 2) for k, v in margin4.items()})

# %%
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


# %% solution=ste_backward
def ste_backward(grad_out, x, scale, zero_point, bits):
    ### BEGIN SOLUTION
    q = np.rint(x / scale) + zero_point
    inside = (q >= 0) & (q <= 2**bits - 1)
    return np.where(inside, grad_out, 0).astype(grad_out.dtype)
    ### END SOLUTION


# %% check=ste_backward points=1
from labkit.check import lab04

lab04.ste_backward(ste_backward)

# %% [markdown]
# Now QAT on LeNet-300-100 at 4 and 2 bits (per-channel weights), three epochs each from the
# trained weights, with a small learning rate. We compare with PTQ at the same bits and count how
# much of PTQ's accuracy loss QAT wins back.

# %% ignore-output
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
          f"= {(qat[b] - ptq['LeNet-300-100', True, b]) / lost:.0%} of it")  # fmt: skip

# %%
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
# We compare k-means at 4 bits with linear quantization at 4 bits. The like-for-like baseline is
# **per-tensor** linear (one set of 16 levels per layer, like one codebook per layer); we also show
# per-channel linear, which has a separate grid for each of the 300 rows.

# %% ignore-output
km_acc = {}
for b in (4, 3, 2):
    km_model, _ = Q.kmeans_quantize_model(lenet, b)
    km_acc[b] = train.evaluate(km_model, X_test, y_test)
    print(f"{b} bits: k-means {km_acc[b]:.4f}, linear per-tensor {ptq['LeNet-300-100', False, b]:.4f}, "
          f"linear per-channel {ptq['LeNet-300-100', True, b]:.4f}")  # fmt: skip
print(f"k-means minus linear per-tensor at 4 bits: {100 * (km_acc[4] - ptq['LeNet-300-100', False, 4]):+.2f} pp")
print(f"k-means minus linear per-channel at 4 bits: {100 * (km_acc[4] - ptq['LeNet-300-100', True, 4]):+.2f} pp")

# %%
print("4 bits: k-means (one codebook per layer) at least as accurate as linear per-tensor:",
      "yes" if km_acc[4] >= ptq["LeNet-300-100", False, 4] else "no")  # fmt: skip
print(
    "4 bits: k-means at least as accurate as linear per-channel:",
    "yes" if km_acc[4] >= ptq["LeNet-300-100", True, 4] else "no",
)

# %% [markdown]
# **Codebook fine-tuning.** With 2 bits (4 shared values per layer) accuracy drops. Han et al.
# fine-tune the shared values: each centroid's gradient is the **sum** of the gradients of the
# weights that share it, $\partial L / \partial c_k = \sum_{ij: I_{ij} = k} \partial L / \partial W_{ij}$;
# the assignments stay fixed, so the model keeps exactly 4 distinct values per layer.
# `Q.CodebookFinetune` does this as a training callback.

# %% ignore-output
km2, books = Q.kmeans_quantize_model(lenet, 2)
km2_before = train.evaluate(km2, X_test, y_test)
train.fit(km2, data, epochs=3, lr=1e-3, seed=0, callbacks=[Q.CodebookFinetune(books, lr=1e-3)], progress=True)
km2_after = train.evaluate(km2, X_test, y_test)
lost2, won2 = base["LeNet-300-100"] - km2_before, km2_after - km2_before
print(f"2-bit k-means: {km2_before:.4f} before fine-tuning, {km2_after:.4f} after (float {base['LeNet-300-100']:.4f})")
print(f"recovered {100 * won2:.2f} pp of the {100 * lost2:.2f} pp lost = {won2 / lost2:.0%}")

# %%
print(
    "distinct weight values per layer after fine-tuning:",
    {n: len(np.unique(layer.W)) for n, layer in km2.weight_layers()},
)
print("2-bit k-means + codebook fine-tuning recovers most (> 50%) of its loss:",
      "yes" if km2_after - km2_before > 0.5 * lost2 else "no")  # fmt: skip

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


# %% solution=quantize_multiplier
def quantize_multiplier(M):
    ### BEGIN SOLUTION
    m, e = np.frexp(M)
    M0, n = int(np.rint(m * 2**31)), int(-e)
    if M0 == 2**31:
        M0, n = 2**30, n - 1
    return M0, n
    ### END SOLUTION


# %% check=quantize_multiplier points=1
lab04.quantize_multiplier(quantize_multiplier)

# %% [markdown]
# ### Exercise 3 — requantization with a rounding shift (1 point)
#
# Write `requantize(acc, M0, n, zero_point)`: from int32 accumulators `acc`, compute the int64 product
# `acc * M0`, divide by $2^{31+n}$ **rounding half to even** using shifts, add the output zero point,
# and clamp to uint8 $[0, 255]$. Return an integer array.


# %% solution=requantize
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


# %% check=requantize points=1
lab04.requantize(requantize)

# %% [markdown]
# ### Exercise 4 — one integer-only Dense layer (1 point)
#
# Write `integer_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu)`: `q_x` is uint8 (batch, in), `q_W` int8
# (out, in), `q_b` int32 (out,), `M0` and `n` per output channel. Compute the int32 accumulator
# $(q_x - z_x)\, q_W^T + q_b$, then requantize each channel with its own $(M_0, n)$; with `relu=True`
# clamp below at $z_y$. You may use your `requantize` (its arguments broadcast over channels) or
# `Q.requantize(acc, M0, n, z_y, relu=relu)`.


# %% solution=integer_dense
def integer_dense(q_x, z_x, q_W, q_b, M0, n, z_y, relu):
    ### BEGIN SOLUTION
    acc = (q_x.astype(np.int32) - z_x) @ q_W.T.astype(np.int32) + q_b
    return Q.requantize(acc, M0, n, z_y, relu=relu)
    ### END SOLUTION


# %% check=integer_dense points=1
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

# %% ignore-output
engines = {name: Q.quantize_model(net, calib=data.X_train[:2000]) for name, net in nets.items()}
print(engines["LeNet-5"])  # zero points come from the calibration: not compared

# %% ignore-output
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
          f"predictions agree on {r['agree']:.2%}")  # fmt: skip
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
          f"{'yes' if r['float_bytes'] >= 3.9 * r['int_bytes'] else 'no'}")  # fmt: skip

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

# %% ignore-output
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")

# %% [markdown]
# ## 6. Questions to think about
#
# 1. QAT at 4 bits barely has anything to recover on LeNet-300-100. Which layer would you keep at
#    8 bits if you had to go to 2 bits everywhere else, and how would you find out?
# 2. The STE passes gradients through a function whose true derivative is zero. Why does training
#    still converge? What would happen with the true derivative?
# 3. The engine rounds requantization ties to even; gemmlowp rounds them away from zero. Would the
#    accuracy differ measurably? Would bit-exactness with a phone's kernel?
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
# | k-means vs linear, 4 bits | k-means ≥ linear per-tensor (same granularity); per-channel linear is as good or better |
# | 2-bit k-means + codebook fine-tuning | most of the loss recovered, 4 shared values per layer kept |
# | integer-only engine | bit-exact vs float64 simulation; ≥ 99% agreement; within 0.3 pp; 3.95× fewer bytes (LeNet-300-100), 3.88× (LeNet-5) |
