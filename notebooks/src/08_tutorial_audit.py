# %% [markdown]
# # Lab 08 — A worked example, audited
#
# **You will leave able to** read a compression tutorial critically: recompute each step of a worked
# example, tell what the text *claims* from what its own formulas *give*, and from what is *correct*;
# and fix the code that comes with it.
#
# **Time:** about 40 minutes; the notebook runs in about 20 seconds (measured on the 2-core reference
# machine while other jobs shared it; about 10 s of CPU time).
#
# **The text.** The subject is a widely shared Chinese-language blog article on neural-network
# compression for performance optimization (its keywords: 神经网络压缩、性能优化、模型压缩). It gives
# background and concepts, then in its **section 4** formulas for weight pruning and quantization with
# a 3×3 worked example, and in its **section 5** Python code with the output it says the code prints.
# The article is not part of this course and you do not need it: the next section restates, in our
# own words, every formula, number and piece of code behaviour that this lab checks. We then redo
# sections 4 and 5 step by step with `labkit`. The point is not to mock a text — errors like these
# are easy to make and easy to copy — but to practise the habit that catches them: *recompute every
# number you are shown*.
#
# ## Glossary of the terms used in the text
#
# | 中文 | pinyin | English | in this course |
# |---|---|---|---|
# | 神经网络压缩 | shénjīng wǎngluò yāsuō | neural-network compression | the whole course |
# | 模型压缩 | móxíng yāsuō | model compression | — |
# | 权重剪枝 | quánzhòng jiǎnzhī | weight pruning (unstructured) | lab 01 |
# | 网络剪枝 | wǎngluò jiǎnzhī | network pruning; here: removing neurons or layers (structured) | lab 02 |
# | 剪枝阈值 | jiǎnzhī yùzhí | pruning threshold | lab 01 |
# | 量化 | liànghuà | quantization | labs 03–04 |
# | 位宽 | wèikuān | bit width | lab 03 |
# | 数值范围 | shùzhí fànwéi | value range (here [a, b] = [min W, max W]) | lab 03 |
# | 低精度 | dī jīngdù | low precision | lab 03 |
# | 知识蒸馏 | zhīshi zhēngliú | knowledge distillation | lab 05 |
# | 教师模型 / 学生模型 | jiàoshī / xuéshēng móxíng | teacher model / student model | lab 05 |
# | 权重矩阵 | quánzhòng jǔzhèn | weight matrix | — |
# | 输入维度 / 输出维度 | shūrù / shūchū wéidù | input / output dimension | — |
# | 符号函数 | fúhào hánshù | sign function | — |
# | Hadamard 乘积 | — | Hadamard (element-wise) product ⊙ | — |
# | 四舍五入 | sì shě wǔ rù | rounding, halves away from zero ("round half up") | numpy rounds halves to even |
# | 性能优化 | xìngnéng yōuhuà | performance optimization | lab 07 |
#
# ## What the article states (restated)
#
# Section numbers below are the article's. Everything the lab checks is here; the symbols are the
# article's.
#
# **§ 4.1, the model.** A layer's weights form $W \in \mathbb{R}^{m \times n}$ ($m$ inputs, $n$ outputs).
# Pruning: sort the weights into $w_1, \dots, w_{mn}$; pick a threshold θ, said to lie between 0 and 1;
# remove the connections whose weight is below θ, which the article says leaves a smaller matrix
# $W' \in \mathbb{R}^{m' \times n'}$ with $m' < m$ and $n' < n$. Quantization: choose a range $[a, b]$
# and a bit width $w$; the quantized weights take the values $a, a + \frac{b-a}{2^w-1}, \dots, b$
# (in words: $2^w$ evenly spaced levels from $a$ to $b$).
#
# **§ 4.2, the formulas.**
#
# | step | the article's formula | in words |
# |---|---|---|
# | sort | $w_1 \le w_2 \le \dots \le w_{mn}$ | the weights in increasing order |
# | threshold | $\theta = \frac{1}{m'n'}\sum_{i=1}^{m'n'} \frac{1}{i} = \frac{\ln(m'n')}{m'n'}$ | the mean of the first $m'n'$ reciprocals, said to equal ln of the pruned size over that size |
# | prune | $W' = W \odot \mathrm{sign}(W \ge \theta)$ | element-wise product with a "sign" defined as 1 for arguments $\ge 0$ and 0 otherwise |
# | range | $a = \min W$, $b = \max W$ | the smallest and largest weight |
# | bit width | $w = \lceil \log_2 \frac{b-a}{b-a+1} \rceil$ | the bit width computed from the range |
# | quantize | $Q(W) = \mathrm{round}\big(\frac{W-a}{b-a}(2^w-1)\big)$ | map $[a, b]$ onto $[0, 2^w-1]$ and round, halves up (四舍五入) |
#
# **§ 4.3, the worked example.** $W$ has rows $(1, 0, -1)$, $(0, 1, 0)$, $(-1, 0, 1)$. The article lists
# the sorted weights as −1, 0, 1, −1, 0, 1, −1, 0, 1; computes $\theta = \ln(3 \cdot 3)/(3 \cdot 3)
# \approx 0.049$; gives the pruned matrix with rows $(0, 0, -1)$, $(0, 1, 0)$, $(-1, 0, 0)$; takes
# $a = -1$, $b = 1$ and obtains $w = 2$ from the bit-width formula; and gives $Q(W)$ with rows
# $(-1, 0, 1)$, $(0, 1, 0)$, $(-1, 0, 1)$.
#
# **5, the code.** It defines `weight_pruning(W, theta)` and `weight_quantization(W, w)` (both are
# printed in section 6 below, exactly as the article has them, without its unused TensorFlow import),
# then runs them on the example with `theta = 0.049` and `w = 2`: it prunes $W$, quantizes the
# *pruned* matrix, and prints the original, pruned and quantized matrices. The output the article
# shows for this run (its section 5.4) prints every entry as a float (`1.`, `0.`, `-1.`); the original
# is $W$, the pruned matrix is the one of 4.3, and the quantized matrix is the $Q(W)$ of 4.3.
#
# **7.3, further reading.** The article recommends three papers, with these titles and authors:
# "Empirical Evaluation of Generic Network Pruning Techniques" (Y. LeCun, Y. Bengio, G. Hinton);
# "Quantized Neural Networks" (S. Han, J. Pool, J. Mao, W. J. Dally, K. K. Shen); and
# "Squeeze-and-Excitation Networks" (H. Hu, L. Shen, G. Sun).

# %%
import math

import numpy as np

from labkit import models, stats, train
from labkit.data import load_fashion_mnist

W = np.array([[1, 0, -1], [0, 1, 0], [-1, 0, 1]])  # the text's example (section 4.3), as it writes it
print(W)
print("shape", W.shape, "| entries", W.size, "| non-zeros", np.count_nonzero(W))

# %% [markdown]
# ## 1. Sorting the weights (4.2 step 1, 4.3 step 1)
#
# The text sorts the $mn$ weights, $w_1 \le w_2 \le \dots \le w_{mn}$, and for the example lists
# $w_1,\dots,w_9 = -1, 0, 1, -1, 0, 1, -1, 0, 1$.

# %%
claimed = [-1, 0, 1, -1, 0, 1, -1, 0, 1]
print("claimed list       :", claimed)
print("is it sorted?      :", "yes" if claimed == sorted(claimed) else "no")
print("same values as W?  :", "yes" if sorted(claimed) == sorted(W.ravel().tolist()) else "no")
print("W sorted by value  :", sorted(W.ravel().tolist()))
print("W sorted by |w|    :", sorted(W.ravel().tolist(), key=abs))

# %% [markdown]
# The listed sequence is neither sorted nor the entries of $W$ ($W$ has two −1s and four 0s, the
# list three of each). For pruning, the order that matters is by **magnitude** $|w|$ (Han et al.
# 2015): a weight of −1 matters as much as one of +1.
#
# ## 2. The pruning threshold (4.2 step 2)
#
# The text defines
#
# $$\theta = \frac{1}{m'n'}\sum_{i=1}^{m'n'}\frac{1}{i} = \frac{\ln(m'n')}{m'n'}$$
#
# and for the example writes $\theta = \ln(3\times3)/(3\times3) \approx 0.049$. Three things to check:
#
# * **The harmonic sum is not $\ln N$.** $H_N = \sum_{i=1}^N 1/i = \ln N + \gamma + \frac{1}{2N} - \dots$
#   with Euler's $\gamma \approx 0.5772$; the gap to $\ln N$ tends to $\gamma$, not to 0.
# * **The arithmetic.** $\ln 9 / 9$ is not 0.049.
# * **The definition is circular.** $m'n'$ is the size *after* pruning, which is what the threshold
#   is supposed to produce. (The example silently uses $m'n' = 9$, the size before.) The formula also
#   never looks at the weights: scaling $W$ by 1000 would leave θ unchanged.

# %%
N = 9
H = sum(1 / i for i in range(1, N + 1))
print(f"H_9 = {H:.4f}   ln 9 = {math.log(N):.4f}   gap = {H - math.log(N):.4f}")
print(f"ln(9)/9 = {math.log(N) / N:.3f}   H_9/9 = {H / N:.3f}   the text: 0.049")
for n in (10, 1_000, 100_000):
    print(f"N = {n:>7,}: H_N - ln N = {sum(1 / i for i in range(1, n + 1)) - math.log(n):.4f}")

# %% [markdown]
# What a threshold should be: choose a **target sparsity** $s$ (the fraction of weights to remove),
# remove the $k = \lfloor sN \rfloor$ weights of smallest magnitude, i.e. $\theta$ is the $k$-th
# smallest $|w|$ (Han et al. 2015 set it per layer from a quality parameter times the layer's weight
# standard deviation; lab 01 uses the sparsity form). Either way θ comes from the weights.
#
# ## 3. Pruning by sign instead of magnitude (4.2 step 3, 4.3 step 3)
#
# The text writes $W' = W \odot \mathrm{sign}(W \ge \theta)$ and defines "sign" as 1 for $x \ge 0$
# and 0 otherwise (that is the Heaviside step, not the sign function). Read literally, it keeps
# $w_{ij}$ when $w_{ij} \ge \theta$: every **negative** weight is removed, however large. The text's
# result is $\begin{bmatrix}0&0&-1\\0&1&0\\-1&0&0\end{bmatrix}$.

# %%
theta = 0.049
text_result = np.array([[0, 0, -1], [0, 1, 0], [-1, 0, 0]])
by_formula = W * (W >= theta)
by_magnitude = W * (np.abs(W) >= theta)
print("its formula, W * (W >= θ):\n", by_formula)
print("magnitude,   W * (|W| >= θ):\n", by_magnitude)
print("the text's result matches its formula:", "yes" if np.array_equal(text_result, by_formula) else "no")
print("the text's result matches magnitude pruning:", "yes" if np.array_equal(text_result, by_magnitude) else "no")

# %% [markdown]
# The printed result follows from neither rule: it keeps both −1s (which the formula removes) and
# removes two of the three +1s (which both rules keep). With any θ in (0, 1], magnitude pruning
# leaves this $W$ unchanged: its only small weights are already 0.
#
# **The shape claim.** Section 4.1 says the pruned matrix is $W' \in \mathbb{R}^{m'\times n'}$ with
# $m' < m$, $n' < n$. Unstructured pruning sets entries to zero; the matrix stays $m \times n$ (the
# text's own example result is 3×3). Only *structured* pruning — removing whole neurons, i.e. rows of
# one layer's $W$ and the matching columns of the next — shrinks the shapes (lab 02). Saving bytes
# with unstructured pruning needs a sparse format that stores indices (labs 06 and 07).

# %%
row_norms = np.abs(W).sum(axis=1)
print("unstructured result shape:", by_magnitude.shape, "— non-zeros:", np.count_nonzero(by_magnitude))
print("structured: dropping the row with the smallest L1 norm gives shape", np.delete(W, row_norms.argmin(), 0).shape)

# %% [markdown]
# ## 4. A bit width with a negative logarithm (§ 4.2, quantization step 2)
#
# The text sets the bit width to $w = \lceil \log_2 \frac{b-a}{b-a+1} \rceil$ and gets $w = 2$ for
# $a=-1, b=1$. For any $b > a$ the fraction lies strictly between 0 and 1, so its logarithm is
# negative and $w \le 0$ — never a usable bit width.

# %%
a, b = W.min(), W.max()
frac = (b - a) / (b - a + 1)
print(f"(b-a)/(b-a+1) = {frac:.4f}, log2 = {math.log2(frac):.4f}, ceil = {math.ceil(math.log2(frac))}; the text: 2")
for span in (0.01, 1, 2, 100):
    print(f"b - a = {span:>6}: log2(span/(span+1)) = {math.log2(span / (span + 1)):+.4f}")

# %% [markdown]
# The bit width is a *choice* (storage against accuracy; lab 03), not something the range implies.
# Once $w$ is chosen, the range fixes the step: $\Delta = (b-a)/(2^w-1)$, so that $2^w$ levels
# $a, a+\Delta, \dots, b$ cover $[a, b]$ — the level set of section 4.1, which is right.
#
# ## 5. A quantized matrix that does not follow from its formula (4.2 step 3, 4.3 step 3)
#
# The text's formula gives integer codes $Q(W) = \mathrm{round}\left(\frac{W-a}{b-a}(2^w-1)\right)$,
# which lie in $\{0, 1, \dots, 2^w-1\}$. Its example result contains −1.

# %%
text_Q = np.array([[-1, 0, 1], [0, 1, 0], [-1, 0, 1]])
w_bits = 2
codes = np.round((W - a) / (b - a) * (2**w_bits - 1)).astype(int)
print("its formula on W gives the codes:\n", codes)
print("codes of the text's pruned W':\n", np.round((text_result - a) / (b - a) * 3).astype(int))
print("the text's Q(W) can be codes in [0, 3]:", "yes" if text_Q.min() >= 0 else "no")
step = (b - a) / (2**w_bits - 1)
print("dequantized a + code·Δ:\n", np.round(a + codes * step, 4))

# %% [markdown]
# Two more things show up. The 0s are coded as $1.5 \to 2$ (numpy rounds halves to even; 四舍五入
# would also give 2 here, but not for 0.5), and **0 is not on the grid** −1, −1/3, 1/3, 1: every
# pruned weight comes back as 1/3 after dequantization. A quantizer for pruned weights must map 0
# exactly, which is why `labkit.quant` (like TFLite and PyTorch; Jacob et al. 2018) uses a scale and
# an integer **zero point** $z$: $r = \Delta\,(q - z)$ with $z = \mathrm{round}(-a/\Delta)$.

# %%
from labkit.quant import dequantize, qparams, quantize

scale, zp = qparams(W.astype(np.float32), bits=2)
q = quantize(W.astype(np.float32), scale, zp, bits=2)
print(f"scale {float(scale):.4f}, zero point {zp}")
print("codes:\n", q)
print("dequantized (Δ·(q − z)):\n", np.round(dequantize(q, scale, zp), 4))
print("pruned zeros stay zero:", "yes" if np.all(dequantize(q, scale, zp)[W == 0] == 0) else "no")


# %% [markdown]
# (Here the range is symmetric, so $-a/\Delta = 1.5$ sits exactly on a rounding tie; with a float32
# scale it lands a hair below, rounds to 1, and the grid becomes −2/3, 0, 2/3, 4/3.)
#
# ## 6. The code of section 5
#
# The text's `weight_pruning` and `weight_quantization`, verbatim (the unused `import tensorflow`
# left out; TensorFlow is not needed by either function):
#
# ```python
# def weight_pruning(W, theta):
#     sorted_indices = np.argsort(W.flatten())
#     theta_indices = int(theta * len(W.flatten()))
#     W_pruned = W.copy()
#     W_pruned[sorted_indices[theta_indices:], :] = 0
#     return W_pruned
#
# def weight_quantization(W, w):
#     a = W.min()
#     b = W.max()
#     Q = (W - a) / (b - a) * (2**w - 1)
#     Q = np.round(Q)
#     return Q * (b - a) + a
# ```

# %%
def tutorial_weight_pruning(W, theta):
    sorted_indices = np.argsort(W.flatten())
    theta_indices = int(theta * len(W.flatten()))
    W_pruned = W.copy()
    W_pruned[sorted_indices[theta_indices:], :] = 0
    return W_pruned


def tutorial_weight_quantization(W, w):
    a = W.min()
    b = W.max()
    Q = (W - a) / (b - a) * (2**w - 1)
    Q = np.round(Q)
    return Q * (b - a) + a


try:
    W_pruned = tutorial_weight_pruning(W, 0.049)
    print("pruning ran")
except Exception as exc:
    print(f"weight_pruning(W, 0.049) raises {type(exc).__name__}")
    print(
        "because an index is out of bounds for axis 0 (the 3 rows):",
        "yes" if "out of bounds for axis 0" in str(exc) else "no",
    )

# %% [markdown]
# It cannot run: `sorted_indices` are positions in the *flattened* 9-entry array (0…8), but they are
# used as *row* indices of a 3-row matrix. The script stops there, before any `print`, so the output
# the article shows in section 5.4 ("运行结果", run result) cannot have come from this code. The output also prints `1.`,
# `0.` (floats), while `np.array([[1, 0, -1], ...])` holds integers and prints `1`, `0`. Three more
# problems hide behind the crash:
#
# * `np.argsort(W.flatten())` orders by signed value, not magnitude;
# * `theta` is used as a *fraction* of entries (`int(0.049 · 9) = 0`), not as the threshold of § 4.2;
# * `sorted_indices[theta_indices:]` are the **largest** entries: it zeroes what it should keep.
#
# `weight_quantization` runs, but dequantizes with the wrong step: it multiplies the codes by
# $(b-a)$ instead of $\Delta = (b-a)/(2^w-1)$, and divides by zero when $b = a$ (e.g. a fully pruned
# matrix).

# %% [markdown]
# Since the article's run never reaches its quantizer, we call `weight_quantization` on $W$ itself
# (the pruned matrix it should have received does not exist), and compare with the $Q(W)$ the article
# prints. Expected if the article were right: the same matrix.

# %%
out = tutorial_weight_quantization(W, 2)
print("tutorial weight_quantization(W, 2):\n", out)
print("range of the output:", out.min(), "to", out.max(), "— the input range was", W.min(), "to", W.max())
print("the text's printed output matches:", "yes" if np.array_equal(out, text_Q) else "no")

# %% [markdown]
# "No", as expected from the step error: the codes 0, 1, 2, 3 are multiplied by $b - a = 2$ and
# shifted by $a = -1$, so the output runs from −1 to 5, three times wider than the input; the
# article's printed $Q(W)$ stays within [−1, 1] and so cannot be this function's output either.

# %% [markdown]
# ## 7. Side by side
#
# | step | the text claims | its own formula / code gives | correct |
# |---|---|---|---|
# | sorted weights | −1, 0, 1, −1, 0, 1, −1, 0, 1 | (no formula) | by magnitude: 0, 0, 0, 0, ±1 ×5 |
# | $H_N$ | $= \ln N$ | $H_9 = 2.829$, $\ln 9 = 2.197$ | $H_N = \ln N + \gamma + O(1/N)$ |
# | θ for 3×3 | ≈ 0.049 | $\ln 9/9 = 0.244$ | from a target sparsity: the $\lfloor sN\rfloor$-th smallest $\lvert w\rvert$ |
# | pruned $W'$ | [[0,0,−1],[0,1,0],[−1,0,0]] | $W\odot[W\ge\theta]$ = identity | $W\odot[\lvert W\rvert\ge\theta]$ = $W$ unchanged |
# | shape after pruning | $m' \times n'$, smaller | 3×3 | $m \times n$ (only structured pruning shrinks) |
# | bit width | $w = 2$ | $\lceil\log_2(2/3)\rceil = 0$, always ≤ 0 | a choice; then $\Delta = (b-a)/(2^w-1)$ |
# | $Q(W)$ | contains −1 | codes [[3,2,0],[2,3,2],[0,2,3]] | codes with a zero point; 0 stays 0 |
# | code: pruning | prints a matrix | IndexError | magnitude, flat indices, shape kept (exercise 1) |
# | code: quantization | [[−1,0,1],…] | [[5,3,−1],…] | step $(b-a)/(2^w-1)$ and a zero point (exercise 2) |
#
# The middle column was computed above; the checks below recompute it.

# %%
assert claimed != sorted(claimed)
assert round(math.log(9) / 9, 3) == 0.244 and round(H, 3) == 2.829
assert np.array_equal(by_formula, np.eye(3, dtype=int)) and np.array_equal(by_magnitude, W)
assert math.ceil(math.log2(2 / 3)) == 0
assert codes.tolist() == [[3, 2, 0], [2, 3, 2], [0, 2, 3]]
assert out.tolist() == [[5, 3, -1], [3, 5, 3], [-1, 3, 5]]
print("every entry of the middle column recomputed: yes")


# %% [markdown]
# ## Exercise 1 — fix `weight_pruning` (2 points)
#
# Write `weight_pruning(W, sparsity)` that performs **unstructured magnitude pruning** of the whole
# array: set the $k = \lfloor \text{sparsity}\cdot W.\text{size} \rfloor$ entries with the smallest
# $|w|$ to 0 and leave every other entry unchanged. Return a new numpy array of W's shape and dtype
# (do not modify W).
# Ties among equal magnitudes may be broken any way. Hint: `np.argsort` on `np.abs(W).ravel()`, and
# write through `out.ravel()` (a view of a contiguous copy).

# %% nbgrader={"grade": false, "grade_id": "weight_pruning", "locked": false, "schema_version": 3, "solution": true, "task": false}
def weight_pruning(W, sparsity):
    ### BEGIN SOLUTION
    k = math.floor(sparsity * W.size)
    out = W.copy()
    out.ravel()[np.argsort(np.abs(W).ravel(), kind="stable")[:k]] = 0
    return out
    ### END SOLUTION


# %% labkit={"answer": "weight_pruning"} nbgrader={"grade": true, "grade_id": "check_weight_pruning", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
from labkit.check import lab08

lab08.weight_pruning(weight_pruning)


# %% [markdown]
# ## Exercise 2 — fix `weight_quantization` (2 points)
#
# Write `weight_quantization(W, w)` that quantizes to $w$ bits over the range of $W$ and returns the
# **dequantized** values as a float32 numpy array of W's shape, finite everywhere, with 0 exactly
# representable (the check allows float32 rounding: relative 1e-5):
#
# 1. $a = \min(\min W, 0)$, $b = \max(\max W, 0)$ (the range must contain 0); if $b = a$ return zeros;
# 2. $\Delta = (b-a)/(2^w-1)$ (as `np.float32`), zero point $z = \mathrm{clip}(\mathrm{round}(-a/\Delta), 0, 2^w-1)$;
# 3. $q = \mathrm{clip}(\mathrm{round}(W/\Delta) + z,\ 0,\ 2^w-1)$ with `np.rint` (halves to even);
# 4. return $\Delta\,(q - z)$ as float32.

# %% nbgrader={"grade": false, "grade_id": "weight_quantization", "locked": false, "schema_version": 3, "solution": true, "task": false}
def weight_quantization(W, w):
    ### BEGIN SOLUTION
    a, b = min(float(W.min()), 0.0), max(float(W.max()), 0.0)
    levels = 2**w - 1
    if b == a:
        return np.zeros(W.shape, dtype=np.float32)
    scale = np.float32((b - a) / levels)
    z = np.clip(np.rint(-a / np.float64(scale)), 0, levels)
    q = np.clip(np.rint(W / np.float64(scale)) + z, 0, levels)
    return (scale * (q - z)).astype(np.float32)
    ### END SOLUTION


# %% labkit={"answer": "weight_quantization"} nbgrader={"grade": true, "grade_id": "check_weight_quantization", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab08.weight_quantization(weight_quantization)

# %% [markdown]
# ## 8. Experiment: the difference on a real network
#
# On the 3×3 example the errors look cosmetic. On the shipped LeNet-300-100 they are not. We apply,
# to every weight matrix, (a) the text's rule $W\odot[W \ge 0.049]$; (b) magnitude pruning to the
# *same* sparsity; (c) the text's quantizer at 4 bits; (d) your fixed quantizer at 4 bits. No
# retraining: this is only about the formulas.
#
# Nothing is tuned here (the threshold 0.049 is the text's, the 4 bits a fixed choice), but the
# verdicts below still read the **validation** split: 2,000 images held out of the training images,
# never trained on. The 10,000 test images are used once, at the end of this section.

# %%
data = load_fashion_mnist()
base = models.pretrained("lenet_300_100")


def transformed(model, fn):
    out = model.copy()
    for _, layer in out.weight_layers():
        layer.W = np.asarray(fn(layer.W), dtype=np.float32)
    return out


text_rule = transformed(base, lambda W: W * (W >= 0.049))
sparsity = 1 - np.count_nonzero(text_rule["fc1"].W) / text_rule["fc1"].W.size
magnitude = transformed(base, lambda W: weight_pruning(W, 1 - np.count_nonzero(W >= 0.049) / W.size))
variants = {
    "baseline": base,
    "(a) text's rule W*(W >= 0.049)": text_rule,
    "(b) magnitude, same sparsity": magnitude,
    "(c) text's quantizer, 4 bits": transformed(base, lambda W: tutorial_weight_quantization(W, 4)),
    "(d) fixed quantizer, 4 bits": transformed(base, lambda W: weight_quantization(W, 4)),
}
acc = {name: train.evaluate(m, data.X_val, data.y_val) for name, m in variants.items()}

# %% tags=["nbval-ignore-output"]
print(f"fc1 sparsity of rule (a): {sparsity:.3f}")
for name, v in acc.items():
    print(f"{name:<34} validation accuracy {100 * v:6.2f}%")

# %%
base_acc = acc["baseline"]
no_negatives = all(np.all(layer.W >= 0) for _, layer in text_rule.weight_layers())
print(
    "rule (a) removes more than half of fc1, every negative weight among them:",
    "yes" if sparsity > 0.5 and no_negatives else "no",
)
print("(a) loses more than 20 pp:", "yes" if base_acc - acc["(a) text's rule W*(W >= 0.049)"] > 0.20 else "no")
print(
    "(b) at the same sparsity beats (a):",
    "yes" if acc["(b) magnitude, same sparsity"] > acc["(a) text's rule W*(W >= 0.049)"] else "no",
)
print("(c) is no better than guessing (< 20%):", "yes" if acc["(c) text's quantizer, 4 bits"] < 0.20 else "no")
print("(d) within 2 pp of the baseline:", "yes" if base_acc - acc["(d) fixed quantizer, 4 bits"] < 0.02 else "no")
print("validation images per class:", np.bincount(data.y_val).tolist())
for name in ("(a) text's rule W*(W >= 0.049)", "(c) text's quantizer, 4 bits"):
    answers = np.unique(variants[name].predict(data.X_val))
    print(f"{name} answers one single class for all validation images: {'yes' if answers.size == 1 else 'no'}")

# %% [markdown]
# Every verdict came out as the audit predicts (on validation, in our run). Two numbers in the table
# above deserve a word:
#
# * (a) and (c) both score **exactly 10.00 %**. The validation split holds 200 images of each of the
#   10 classes, so a network that answers the same class for every image scores exactly one tenth, and
#   the last two lines show that both broken variants do just that. Rule (a) deletes every negative
#   weight: with non-negative weights and non-negative pixels, nothing can inhibit a unit any more,
#   and one output wins for every image. The text's quantizer (c) maps each layer onto values from
#   $a$ to $a + 15(b - a)$, a range 15 times too wide, which swamps whatever the input says.
# * (b), magnitude pruning at the same sparsity, keeps most of the accuracy but still loses well over
#   ten points in our run: it removes more than three quarters of fc1 without any retraining. Lab 01
#   shows that a few epochs of fine-tuning with the masks held recover most of it.
#
# ### Test, once
#
# The five variants are fixed; nothing below changes them. The 10,000 test images are used once here,
# for the final accuracies and three paired comparisons on the same images: the difference of
# accuracies (A − B, in percentage points) with its 95 % paired-bootstrap interval
# (`stats.paired_bootstrap`, 10,000 resamples) and its verdict: "yes" (the interval lies above 0),
# "no" (below 0), "not resolved at this sample size" (it contains 0).

# %% tags=["test-once", "nbval-ignore-output"]
# Test, once: the five variants above are fixed; every verdict before this cell read validation
correct_test = {name: m.predict(data.X_test) == data.y_test for name, m in variants.items()}
comparisons = [
    ("(b) magnitude pruning more accurate than (a) the text's rule", "(b) magnitude, same sparsity",
     "(a) text's rule W*(W >= 0.049)"),
    ("(d) fixed quantizer more accurate than (c) the text's quantizer", "(d) fixed quantizer, 4 bits",
     "(c) text's quantizer, 4 bits"),
    ("(d) fixed 4-bit quantizer more accurate than the float baseline", "(d) fixed quantizer, 4 bits", "baseline"),
]
test_results = [(text, *stats.paired_bootstrap(correct_test[a], correct_test[b], seed=0)) for text, a, b in comparisons]
for name, c in correct_test.items():
    print(f"{name:<34} test accuracy {100 * c.mean():6.2f}%")
for text, diff, lo, hi in test_results:
    print(f"{text}: {100 * diff:+.2f} pp (95 % paired-bootstrap interval {100 * lo:+.2f} to {100 * hi:+.2f})")

# %% tags=["test-once"]
# Test, once: the verdicts of the comparisons above (no choice follows from them)
for text, _diff, lo, hi in test_results:
    print(f"{text}: {stats.verdict(lo, hi)}")
for name in ("(a) text's rule W*(W >= 0.049)", "(c) text's quantizer, 4 bits"):
    single = np.unique(variants[name].predict(data.X_test)).size == 1
    print(f"{name} answers one single class for all test images: {'yes' if single else 'no'}")

# %% [markdown]
# On the test images the two broken variants again answer a single class for every image (exactly
# 10.00 %: the test set holds 1,000 images per class), and both fixes beat them by tens of points with
# intervals far from 0. The third line asks whether the fixed 4-bit quantizer, per tensor and without
# retraining, is as accurate as the float baseline: "no" — in our run it lost about a point, with the
# whole interval below 0. "Within 2 pp" on validation was the claim; on 10,000 test images even a
# one-point loss is resolved.

# %% [markdown]
# ## Questions to think about
#
# 1. The text's pruning and quantization sections each contain a formula that cannot be evaluated as
#    written (a circular θ, a negative bit width). What single habit would have caught both?
# 2. Section 5.4 shows an "output" that the code cannot produce. What does that tell you about how the
#    output was made, and how much weight should the surrounding prose get?
# 3. Our fixed quantizer is per-tensor. For which of LeNet-300-100's layers would per-channel
#    scales (lab 03) help most, and why?
# 4. The article's section 7.3 recommends three papers (restated at the top of this lab). Look each
#    one up: is there a paper with that title, and does it have those authors? (Hint: Deep
#    Compression's authors are Han, Mao and Dally; Han, Pool, Tran and Dally wrote *Learning both
#    weights and connections*.)
#
# ## Summary
#
# | what we checked | outcome |
# |---|---|
# | sorted list of the example | not sorted, and not W's entries |
# | $H_N = \ln N$ | false: $H_N - \ln N \to \gamma \approx 0.577$ |
# | θ ≈ 0.049 | its own formula gives 0.244; the definition is circular |
# | $W \odot \mathrm{sign}(W\ge\theta)$ | prunes by signed value; the printed result follows from no rule |
# | $W' \in \mathbb{R}^{m'\times n'}$ | false for unstructured pruning |
# | $w = \lceil\log_2\frac{b-a}{b-a+1}\rceil$ | always ≤ 0 |
# | example $Q(W)$ | contains −1, impossible for its codes |
# | `weight_pruning` | IndexError (row indexing with flat indices); also signed order, inverted |
# | `weight_quantization` | step $(b-a)$ instead of $(b-a)/(2^w-1)$; 0 not representable |
#
# On LeNet-300-100 (section 8), the text's pruning rule and its quantizer each cost most of the
# accuracy, on validation and, once, on test, while the fixed versions keep most of it; read the
# verdicts above for the exact statements and their intervals.
