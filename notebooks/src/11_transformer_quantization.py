# %% [markdown]
# # Lab 11 — Compression meets the transformer: activation outliers, W8A8, SmoothQuant, LLM.int8() and rotations
#
# **You will leave able to** take a small GPT apart — LayerNorm, causal attention, the four linear
# layers of a block — and measure what flows into each linear layer: the largest value of every input
# channel, the kurtosis of the whole input, and the tokens the largest values sit on. You will quantize
# the model's weights and activations to 8 and 4 bits, statically per tensor and dynamically per
# token, and price each choice in **perplexity with an interval**; then apply the three families of
# methods built for transformers' activation outliers — **SmoothQuant** (move the difficulty into the
# weights), **LLM.int8()** (keep the outlier columns in float) and **rotations** (spread every channel
# over all the others, the idea of QuaRot and SpinQuant) — checking that each leaves the float model's
# output unchanged, and measuring what each buys on this model, with controls that say why.
#
# **Time:** about 75 minutes. The notebook computes for about 2 minutes of CPU time; the last cell
# prints the CPU time of your run.
#
# **Reading:** Xiao, Lin, Seznec, Wu, Demouth & Han 2023 (*SmoothQuant*, ICML), §3–4; Dettmers, Lewis,
# Belkada & Zettlemoyer 2022 (*LLM.int8()*, NeurIPS), §3; Ashkboos et al. 2024 (*QuaRot*, NeurIPS),
# §3–4; Liu et al. 2024 (*SpinQuant*); Sun, Chen, Kolter & Liu 2024 (*Massive activations in large
# language models*); Xiao, Tian, Chen, Han & Lewis 2024 (*Efficient streaming language models with
# attention sinks*, ICLR); Bondarenko, Nagel & Blankevoort 2023 (*Quantizable transformers: removing
# outliers by helping attention heads do nothing*, NeurIPS).
#
# **The model and the text.** `models.pretrained("tiny_gpt")` is a character-level GPT (4 blocks,
# 4 heads, 128 features, context 128; pre-LN, learned positions, a BOS token opening every window)
# trained on the training split of Tiny Shakespeare (`data.load_tiny_shakespeare()`: 90 / 5 / 5 %
# contiguous training, validation and test text). Calibration windows (static activation ranges,
# SmoothQuant's maxima) come from the **training** split. Every choice — SmoothQuant's α, which
# configuration goes on — is made on a fixed set of **validation** windows. The **test** split is read
# once, in section 10, after every choice is fixed. Perplexity is measured on non-overlapping windows of
# 128 characters, each opened by BOS (`metrics.window_nll`), and every comparison is stated with a $95\,\%$
# bootstrap interval over windows (`stats.window_bootstrap`, `stats.paired_window_bootstrap`) and one
# of the words "yes", "no" or "not resolved at this sample size".

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from labkit import data, metrics, models, plot, quant, stats

threadpool_limits(1)  # one BLAS thread: the same float sums on every run, and no idle spinning on a shared machine
cpu_start = time.process_time()

text = data.load_tiny_shakespeare()
model = models.pretrained("tiny_gpt")
T = model.context
N_WINDOWS = 64  # windows of 128 characters per evaluation: 8,192 predicted characters


def spaced_windows(tokens, n):
    """The tokens of n windows of T characters spread evenly over `tokens` (one array; window i = [iT, (i+1)T))."""
    picks = np.linspace(0, len(tokens) // T - 1, n).round().astype(int)
    return np.concatenate([tokens[k * T : (k + 1) * T] for k in picks])


val_tokens = spaced_windows(text.val, N_WINDOWS)  # every choice is made on these
val_ids = data.lm_windows(val_tokens, T, model.bos)[0]  # (64, 128): BOS, then 127 characters
cal_ids = data.sample_windows(text.train, T, 32, np.random.default_rng(0), bos=model.bos)[0]  # training split
print(model)
print(f"validation: {len(text.val) // T} windows of {T} characters, {N_WINDOWS} of them evaluated "
      f"({len(val_tokens):,} characters); calibration: {len(cal_ids)} training windows")
print("linear layers:", ", ".join(f"{n} {layer.W.shape}" for n, layer in model.weight_layers()[:4]), "... head",
      model["head"].W.shape)

# %% [markdown]
# ## 1. The model: a GPT in numpy
#
# Characters become ids $0..65$ (id 0 is BOS). A window of $T$ ids is embedded as
# $x_t = E[\text{id}_t] + P[t]$ (token and learned position tables, $d = 128$ features), then passes
# four **pre-LN blocks**,
#
# $$ h = x + \operatorname{Attn}(\operatorname{LN}_1(x)), \qquad x' = h + \operatorname{MLP}(\operatorname{LN}_2(h)), $$
#
# and a final LayerNorm and linear head give the logits of the next character at every position.
# The residual stream $x$ is only ever *added to*; what reads it goes through a LayerNorm.
#
# **LayerNorm** normalises each token's vector on its own, over its $d$ features:
#
# $$ \mu = \tfrac1d \textstyle\sum_j x_j,\quad \sigma^2 = \tfrac1d \sum_j (x_j - \mu)^2,\quad
#    r = \frac{1}{\sqrt{\sigma^2 + \varepsilon}},\quad \hat x = (x - \mu)\, r,\quad y = \gamma \odot \hat x + \beta . $$
#
# Its backward pass, with $g = \partial L/\partial y \odot \gamma$ and means over the $d$ features:
# $\mu$ and $r$ depend on every $x_j$, and differentiating through them gives
#
# $$ \frac{\partial L}{\partial x} = r \big( g - \operatorname{mean}(g) - \hat x \cdot \operatorname{mean}(g \odot \hat x) \big), \qquad
#    \frac{\partial L}{\partial \gamma} = \sum_{\text{rows}} \frac{\partial L}{\partial y} \odot \hat x, \qquad
#    \frac{\partial L}{\partial \beta} = \sum_{\text{rows}} \frac{\partial L}{\partial y} . $$
#
# (The two subtracted terms remove the components of $g$ along $\mathbf 1$ and along $\hat x$: the
# directions in which moving $x$ changes $\mu$ and $\sigma$ but not $\hat x$.)
#
# **Causal self-attention.** One linear layer `attn.qkv` maps each token to a query, a key and a value
# ($3d$ numbers), cut into 4 heads of 32. For one head with queries $Q$, keys $K$ ($T \times d_h$) and
# values $V$,
#
# $$ \operatorname{head}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{Q K^\top}{\sqrt{d_h}} + M\Big) V, \qquad
#    M_{ij} = \begin{cases} 0 & j \le i \\ -\infty & j > i \end{cases} $$
#
# (the mask $M$ lets position $i$ read itself and the past, never the future; the softmax runs over each
# row, and subtracting each row's maximum first keeps $\exp$ finite). The heads are concatenated and
# mixed by `attn.proj`. A head with nothing useful to read must still put its probability mass
# *somewhere*: trained transformers park it on the first token, BOS — an **attention sink** (Xiao et al.
# 2024) — and Bondarenko et al. 2023 trace the large activations of BERT and OPT to exactly these
# "no-op" heads.
#
# **The MLP:** `mlp.fc1` ($d \to 4d$), GELU, `mlp.fc2` ($4d \to d$).
#
# So every block has four linear layers, and each sees a different kind of input:
#
# | layer | its input $X$ (tokens × channels) |
# |---|---|
# | `h{i}.attn.qkv` | $\operatorname{LN}_1$ of the residual stream (128 channels) |
# | `h{i}.attn.proj` | the heads' outputs, attention-weighted values (128) |
# | `h{i}.mlp.fc1` | $\operatorname{LN}_2$ of the residual stream (128) |
# | `h{i}.mlp.fc2` | the GELU's output (512) |
#
# plus the LM head, which reads $\operatorname{LN}_f$ of the final stream.

# %% [markdown]
# ## 2. Quantizing a transformer's linear layers, and three remedies for outliers
#
# **W8A8.** A linear layer $Y = X W^\top + b$ runs in integers when both factors are quantized:
#
# $$ Y \approx \big(s_X \odot Q_X\big)\big(s_W \odot Q_W\big)^\top + b, \qquad
#    Q = \operatorname{clamp}\big(\operatorname{round}(\cdot / s),\, -q_{\max},\, q_{\max}\big),\quad q_{\max} = 2^{b-1} - 1 . $$
#
# Weights are known in advance and get one scale per output channel, $s_W[o] = \max_j |W_{oj}| / q_{\max}$
# (labs 03–04). Activations are not known in advance. Two ways to scale them:
#
# * **per tensor, static**: one scale per layer, $s_X = \max |X| / q_{\max}$ over calibration windows
#   from the training text, fixed before inference; a value beyond it clamps at run time;
# * **per token, dynamic**: each row $t$ (one token's features) gets $s_X[t] = \max_j |X_{tj}| / q_{\max}$,
#   computed at run time; no calibration and no clamping, a cheap reduction per token.
#
# Either way **one large channel sets the scale** for everything that shares it. If channel $j^*$ reaches
# $M$ while the others stay near $m$, the others keep about $q_{\max} \cdot m / M$ integer levels: at
# $M/m = 20$ and 8 bits, about 6; at 4 bits, none. Large language models grow exactly such channels
# (Dettmers et al. 2022: a few feature dimensions, up to about 20× the rest, in every layer beyond a
# model size of about 6.7 B parameters). This is why weight-only int8 is easy and W8A8 is not.
#
# **SmoothQuant** (Xiao et al. 2023) divides input channel $j$ by $s_j$ and multiplies weight column $j$
# by it — $X W^\top = (X \operatorname{diag}(s)^{-1})(W \operatorname{diag}(s))^\top$ exactly — with
#
# $$ s_j = \frac{\max_t |X_{tj}|^{\alpha}}{\max_o |W_{oj}|^{1-\alpha}} ,$$
#
# the maxima over calibration tokens and over the output rows (over all three of $q, k, v$: one
# LayerNorm feeds them). The division is never computed: it folds into the LayerNorm in front,
# $\gamma \leftarrow \gamma / s$, $\beta \leftarrow \beta / s$. The migration strength $\alpha$ moves
# the difficulty from activations ($\alpha = 1$: every activation channel's maximum becomes 1) to
# weights; $\alpha = 0.5$ equalises the two maxima. The paper smooths the inputs of `qkv` and `fc1`
# (the attention output and the GELU output have no LayerNorm in front).
#
# **LLM.int8()** (Dettmers et al. 2022) keeps what cannot be quantized in float: every input column $j$
# in which some $|X_{tj}| \ge 6$ is multiplied in float, the rest in int8 with a scale per token and
# per output channel (vector-wise):
# $Y = X_O W_O^\top + \operatorname{diag}(s_X)\,(Q_{X,R} Q_{W,R}^\top)\, \operatorname{diag}(s_W)$.
# It costs a float product for the outlier columns, and as many as there are.
#
# **Rotations** (QuaRot, SpinQuant). For an orthogonal $Q$ ($QQ^\top = I$), $X W^\top = (XQ^\top)(WQ^\top)^\top$.
# A rotation mixes every channel into every other, so one huge channel becomes many moderate ones: the
# **kurtosis** $\kappa = E[(x-\mu)^4]/\sigma^4$ of the values (3 for Gaussian numbers, far more when a
# few dwarf the rest) falls, and so does the quantization error. The Walsh–Hadamard matrix is the
# convenient rotation: entries $\pm 1/\sqrt n$,
#
# $$ H_1 = [1], \qquad H_{2k} = \frac{1}{\sqrt 2}\begin{bmatrix} H_k & H_k \\ H_k & -H_k \end{bmatrix}, $$
#
# and $x H^\top$ costs $O(n \log n)$ by the **fast Walsh–Hadamard transform**: $\log_2 n$ passes of
# butterflies $(a, b) \to (a + b, a - b)$ over pairs $h = 1, 2, 4, \dots$ apart, then a division by
# $\sqrt n$. Where can $Q$ go in *this* model without changing its output (`labkit/quant/rotation.py`
# derives each case)?
#
# * **the residual stream**, if LayerNorm commutes with $Q$. It subtracts the mean, so a plain $H$ does not
#   ($H\mathbf 1 = \sqrt n\, e_1$); $Q = H D H$ with random signs $D$ ($D_{00} = +1$) keeps
#   $Q\mathbf 1 = \mathbf 1$, and then $\operatorname{LN}(xQ^\top) = \operatorname{LN}(x)Q^\top$ once $\gamma, \beta$ are folded
#   into the layers that read each LayerNorm (`quant.fold_layernorms`). Embeddings and readers take $Q^\top$ on
#   their input side, writers $Q$ on their output side;
# * **values and `attn.proj`**, one Hadamard per head (attention mixes positions, not channels);
# * **the input of `mlp.fc2`**, *online*: GELU sits between `fc1` and `fc2`, so nothing can be folded;
#   the input is rotated at run time by a fast transform, $x \mapsto \operatorname{fwht}(x \odot d)$ with random
#   signs $d$, and $(H\operatorname{diag}(d))^\top$ is folded into `fc2`'s weights.
#
# `labkit.quant` applies all of this to the GPT: `activation_stats`, `quantize_gpt` (fake-quantized
# inference: integer grids, float arithmetic), `smooth_gpt`, `fold_layernorms`, `rotate_gpt`, and
# `amplify_channel` (SmoothQuant run backwards, used in section 9).

# %% [markdown]
# ## 3. Demo: what flows into the linear layers of this model
#
# `quant.activation_stats(model, ids)` runs the model on token windows and keeps, at every linear
# layer's input, the per-channel maximum $\max_t |X_{tj}|$, the kurtosis of all entries, and the largest
# entries with their window, position, channel and token. We call an input channel an **outlier
# channel** when its maximum reaches both LLM.int8()'s threshold 6 and 10 times the median channel
# maximum of its layer (a criterion fixed before looking, in the spirit of Dettmers et al.'s
# "magnitude ≥ 6").

# %% tags=["skip-grading"]
act = quant.activation_stats(model, val_ids, top=12)
layers = [n for n, _ in model.weight_layers()]
OUTLIER_ABS, OUTLIER_RATIO = 6.0, 10.0


def outlier_channels(s):
    """Channels whose max |x| reaches 6 and 10× the layer's median channel maximum."""
    return np.flatnonzero((s.absmax >= OUTLIER_ABS) & (s.absmax >= OUTLIER_RATIO * np.median(s.absmax)))


# %% tags=["nbval-ignore-output", "skip-grading"]
print(f"{'layer':15s} {'in':>4s} {'median max|x_j|':>16s} {'largest (channel)':>19s} {'ratio':>6s} {'≥ 6':>4s} {'kurtosis':>9s}")
for name in layers:
    s = act[name]
    med = np.median(s.absmax)
    print(f"{name:15s} {s.absmax.size:4d} {med:16.2f} {s.absmax.max():12.2f} ({s.absmax.argmax():3d}) "
          f"{s.absmax.max() / med:6.1f} {int((s.absmax >= OUTLIER_ABS).sum()):4d} {s.kurtosis:9.1f}")

# %% tags=["skip-grading"]
found = {name: outlier_channels(act[name]).tolist() for name in layers if outlier_channels(act[name]).size}
print("outlier channels (max|x_j| ≥ 6 and ≥ 10× the layer's median):", found if found else "none in any layer")

# %% tags=["skip-grading"]
kinds = ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"]
fig, axes = plt.subplots(2, 2, figsize=(11, 6.5))
for ax, kind in zip(axes.ravel(), kinds):
    for i in range(model.n_layer):
        a = act[f"h{i}.{kind}"].absmax
        ax.plot(np.arange(a.size), a, label=f"block {i}", markevery=max(1, a.size // 16), linewidth=1)
    ax.axhline(OUTLIER_ABS, color="0.4", linestyle=":", linewidth=1)
    ax.set_title(f"input of {kind}")
    ax.set_xlabel("input channel j")
    ax.set_ylabel("max over tokens of |x_j|")
plot.legend(axes[0, 1])
fig.tight_layout()
plot.show(fig, alt=(
    "Four panels, one per kind of linear layer (qkv, attention output projection, fc1, fc2), each showing the "
    "largest absolute value of every input channel over 64 validation windows, one line per block, with a "
    "dotted line at 6, LLM.int8()'s outlier threshold. The table above gives each layer's median, largest "
    "value and the channels that reach the threshold."
))


# %% [markdown]
# Where do the largest values sit? The next cell lists the largest entries of the inputs of the four
# layer kinds, with the character they sit on (`'\n'` a newline, `BOS` the window's first position),
# and the share of each head's attention that goes to position 0.

# %% tags=["nbval-ignore-output", "skip-grading"]
def char(token_id):
    return "BOS" if token_id == model.bos else repr(text.vocab.decode([token_id]))


for kind in kinds:
    top = sorted((a for i in range(model.n_layer) for a in act[f"h{i}.{kind}"].largest), key=lambda a: -abs(a.value))
    print(f"{kind:9s}", "  ".join(f"{a.value:+.1f} @pos {a.position} ch {a.channel} {char(a.token)}" for a in top[:4]))
sink = quant.attention_to_first(model, val_ids[:16])
print("attention to position 0 (rows: blocks, columns: heads):")
print(np.array2string(sink, precision=2))

# %% tags=["skip-grading"]
print("layers whose largest input value sits at the BOS position:",
      sum(int(act[n].position_absmax.argmax() == 0) for n in layers), "of", len(layers))
print("heads giving more than half of their attention to BOS:", int((sink > 0.5).sum()), "of", sink.size)


# %% [markdown]
# **Reading the demo.** This model has **no outlier channels**. In every layer the largest channel
# maximum is 1.3 to 4.1 times the median channel maximum, and one channel of one layer reaches 6:
# channel 58 of `h2.attn.qkv`'s input at 6.69, 2.1× its layer's median, on the BOS position (−6.7 in
# the list of largest entries). The LayerNorm outputs (inputs of `qkv`, `fc1` and the head) have a
# kurtosis of 3.1 to 3.7, close to Gaussian values. The GELU outputs (inputs of `fc2`) have 11.1 to
# 36.0: heavy tails because most of a GELU's outputs sit near 0 and a few are large, spread over many
# channels (their largest channel is 2.4 to 4.1 times the median), which is not a channel outlier.
# There is no attention sink either: every head gives 1 % to 5 % of its attention to BOS, and none
# more than half. The large outliers of language models appear with scale and long training:
# Dettmers et al. 2022 see them in every layer from about 6.7 B parameters on, Sun et al. 2024 find
# "massive activations" of thousands of times the median in LLMs, and Bondarenko et al. 2023 tie them
# to heads that learned to do nothing. An 826,690-parameter model trained for minutes has grown none
# of this, and we say so rather than tune it until it does. Section 9 builds a clearly labelled
# variant that has one.

# %% [markdown]
# ## 4. Graded exercises
#
# Conventions: float inputs are float64; a row of `X` is one token, a column one channel; `W` is
# (out, in); rounding is `np.rint` (half to even), then clamp. Each check runs your function on fixed
# and random cases and compares with labkit's own implementation.
#
# ### Exercise 1 — One head of causal self-attention (2 points)
#
# Write `causal_attention_head(q, k, v)` for one head: `q` and `k` are (T, d), `v` is (T, d_v), all
# float64. Return the numpy array (T, d_v) $\operatorname{softmax}(q k^\top / \sqrt d + M)\, v$ with
# $d$ = `q.shape[1]` and $M_{ij} = -\infty$ for $j > i$, 0 otherwise. The check requires: the output
# $P v$ (not the probabilities $P$); the division by $\sqrt d$; the mask on the scores *before* the
# softmax, with $-\infty$ (not 0); the softmax over each row (the keys of one query); a finite result
# when scores are in the hundreds (subtract each row's maximum before `np.exp`); values within a
# relative 1e-5.

# %% nbgrader={"grade": false, "grade_id": "causal_attention_head", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_attention_head(q, k, v):
    ### BEGIN SOLUTION
    t, d = q.shape
    scores = q @ k.T / np.sqrt(d)
    scores[np.triu_indices(t, k=1)] = -np.inf
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    return p @ v
    ### END SOLUTION


# %% labkit={"answer": "causal_attention_head"} nbgrader={"grade": true, "grade_id": "check_causal_attention_head", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
from labkit.check import lab11

lab11.causal_attention_head(causal_attention_head)


# %% [markdown]
# ### Exercise 2 — LayerNorm's backward pass (3 points)
#
# Write `layernorm_backward(dy, x, gamma, eps)`: `x` and `dy` are float64 (n, d) (n tokens of d
# features), `gamma` is (d,), `eps` a positive float. The forward pass was
# $y = \gamma \odot \hat x + \beta$ with $\hat x = (x - \mu)\, r$, $r = 1/\sqrt{\sigma^2 + \varepsilon}$,
# $\mu$ and the **biased** variance $\sigma^2$ (divide by $d$) taken over the last axis of each row.
# Return the tuple `(dx, dgamma, dbeta)`: `dx` of shape (n, d) by the formula of section 1, and
# `dgamma`, `dbeta` of shape (d,), summed over the rows. `eps` goes inside the square root (one case
# uses eps = 0.5, where it shows). Values within a relative 1e-5.

# %% nbgrader={"grade": false, "grade_id": "layernorm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layernorm_backward(dy, x, gamma, eps):
    ### BEGIN SOLUTION
    mu = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mu) * r
    g = dy * gamma
    dx = r * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)
    ### END SOLUTION


# %% labkit={"answer": "layernorm_backward"} nbgrader={"grade": true, "grade_id": "check_layernorm_backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab11.layernorm_backward(layernorm_backward)


# %% [markdown]
# ### Exercise 3 — SmoothQuant's scales and their fold (2 points)
#
# Write `smoothquant_fold(x_absmax, gamma, beta, W, alpha)`: `x_absmax` (in,) holds $\max_t |X_{tj}|$
# from calibration, `gamma` and `beta` (in,) are the LayerNorm's, `W` (out, in) the layer that reads
# it, `alpha` in [0, 1]; all float64. Return the tuple `(s, gamma_new, beta_new, W_new)` of numpy
# arrays: $s_j = \texttt{x\_absmax}_j^{\,\alpha} / \max_o |W_{oj}|^{\,1-\alpha}$ (one scale per input
# channel, the maximum of $|W|$ over its column), with $s_j = 1$ where `x_absmax[j]` is 0 or column
# $j$ of `W` is all zero; `gamma_new` $= \gamma / s$, `beta_new` $= \beta / s$, and `W_new` $= W\,\operatorname{diag}(s)$
# (column $j$ times $s_j$). Shapes (in,), (in,), (in,), (out, in); values within a relative 1e-5.

# %% nbgrader={"grade": false, "grade_id": "smoothquant_fold", "locked": false, "schema_version": 3, "solution": true, "task": false}
def smoothquant_fold(x_absmax, gamma, beta, W, alpha):
    ### BEGIN SOLUTION
    w_absmax = np.abs(W).max(axis=0)
    s = np.ones_like(x_absmax)
    live = (x_absmax > 0) & (w_absmax > 0)
    s[live] = x_absmax[live] ** alpha / w_absmax[live] ** (1 - alpha)
    return s, gamma / s, beta / s, W * s
    ### END SOLUTION


# %% labkit={"answer": "smoothquant_fold"} nbgrader={"grade": true, "grade_id": "check_smoothquant_fold", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab11.smoothquant_fold(smoothquant_fold)


# %% [markdown]
# ### Exercise 4 — Per-token dynamic quantization (2 points)
#
# Write `per_token_quantize(X, bits)`: `X` is float64 (T, d), `bits` an integer from 2 to 8. Return the
# tuple `(q, scale)`: `scale` a float array of shape (T,) with
# $\texttt{scale}_t = \max_j |X_{tj}| / q_{\max}$, $q_{\max} = 2^{\text{bits}-1} - 1$, and 1 for an
# all-zero row; `q` an **int8** array (T, d),
# $q = \operatorname{clip}(\operatorname{rint}(X / \texttt{scale}_t), -q_{\max}, q_{\max})$, rounding half
# to even (`np.rint`: 2.5 → 2, −0.5 → 0). The check compares `scale` to a relative 1e-6 and `q` exactly;
# where $X / \texttt{scale}_t$ lies within $10^{-4}$ of a half-integer without being one (float32 and
# float64 division can round it either way), either neighbour is accepted.

# %% nbgrader={"grade": false, "grade_id": "per_token_quantize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def per_token_quantize(X, bits):
    ### BEGIN SOLUTION
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(X).max(axis=1)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.rint(X / scale[:, None]), -qmax, qmax).astype(np.int8)
    return q, scale
    ### END SOLUTION


# %% labkit={"answer": "per_token_quantize"} nbgrader={"grade": true, "grade_id": "check_per_token_quantize", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab11.per_token_quantize(per_token_quantize)


# %% [markdown]
# ### Exercise 5 — The fast Walsh–Hadamard transform (2 points)
#
# Write `fast_hadamard(x)`: `x` is float64 of shape (..., n) — one vector or a batch of rows — with $n$ a
# power of two. Return the numpy array of `x`'s shape holding $x H^\top$ along the **last** axis, $H$ the
# orthonormal Sylvester–Hadamard matrix of section 2 (entries $\pm 1/\sqrt n$), computed by
# $\log_2 n$ butterfly passes $(a, b) \to (a + b, a - b)$ over pairs $h = 1, 2, 4, \dots$ apart
# (first half of each block of $2h$ gets the sums, second half the differences), then a division by
# $\sqrt n$. The check compares values (within a relative 1e-6) on vectors of 2 to 64 entries; building
# the $n \times n$ matrix would pass it but costs $n^2$ operations instead of $n \log_2 n$.

# %% nbgrader={"grade": false, "grade_id": "fast_hadamard", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fast_hadamard(x):
    ### BEGIN SOLUTION
    y = np.array(x, dtype=np.float64)
    n = y.shape[-1]
    h = 1
    while h < n:
        y = y.reshape(*x.shape[:-1], n // (2 * h), 2, h)
        y = np.stack([y[..., 0, :] + y[..., 1, :], y[..., 0, :] - y[..., 1, :]], axis=-2)
        h *= 2
    return y.reshape(x.shape) / np.sqrt(n)
    ### END SOLUTION


# %% labkit={"answer": "fast_hadamard"} nbgrader={"grade": true, "grade_id": "check_fast_hadamard", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]
lab11.fast_hadamard(fast_hadamard)


# %% [markdown]
# Your `fast_hadamard` is the transform `quant.fwht` runs on every token before `mlp.fc2` in the
# rotated model of section 8, and `per_token_quantize` is what `quantize_gpt(..., act="per_token")`
# does at every linear layer's input.

# %% [markdown]
# ## 5. W8A8 on the model: weights, then activations
#
# `quant.quantize_gpt(model, weight_bits, act, act_bits, calibration)` returns a copy of the model whose
# block linear layers compute on quantized values (the LM head, the embeddings and the attention's own
# products stay in float, as in SmoothQuant and QuaRot). We evaluate, on the 64 validation windows:
# the float model; int8 weights only (W8); W8 with int8 activations per tensor, static (calibrated on
# 32 training windows); and W8 with int8 activations per token, dynamic.
#
# A verdict word comes from a paired interval. When that interval ends within a few thousandths of 0,
# another CPU's float rounding can move it across; such verdicts are printed beside their interval,
# in the cell with the perplexities, and the cell after it states only the verdicts far from that edge.

# %% tags=["skip-grading"]
def evaluate(m, tokens=val_tokens):
    """Mean NLL of each window (nats per character); perplexity = exp(mean)."""
    return metrics.window_nll(m, tokens, batch_size=32)


def w8a8(m, act="per_tensor", bits=8, act_bits=8):
    return quant.quantize_gpt(m, weight_bits=bits, act=act, act_bits=act_bits, calibration=cal_ids)


val_nll = {"float": evaluate(model)}
variants = {  # built when evaluated: a model that has run keeps its layers' inputs (about 250 MB here)
    "W8": lambda: quant.quantize_gpt(model, weight_bits=8),
    "W8A8 per-tensor static": lambda: w8a8(model, "per_tensor"),
    "W8A8 per-token dynamic": lambda: w8a8(model, "per_token"),
}
for name, build in variants.items():
    val_nll[name] = evaluate(build())


def report(names, ref="float", nll=val_nll):
    """Perplexity with its window-bootstrap interval, and the paired difference to `ref` with its interval."""
    for name in names:
        ppl, lo, hi = stats.window_bootstrap(nll[name])
        d, dlo, dhi = stats.paired_window_bootstrap(nll[name], nll[ref]) if name != ref else (0.0, 0.0, 0.0)
        print(f"{name:38s} perplexity {ppl:6.3f} [{lo:6.3f}, {hi:6.3f}]   − {ref}: {d:+.4f} [{dlo:+.4f}, {dhi:+.4f}]")


def verdicts(names, ref="float", nll=val_nll, claim="above", interval=False):
    """The verdict word on "name's perplexity is above (or below) ref's", from the paired interval."""
    for name in names:
        a, b = (nll[name], nll[ref]) if claim == "above" else (nll[ref], nll[name])
        _, lo, hi = stats.paired_window_bootstrap(a, b)
        shown = f" (interval [{lo:+.4f}, {hi:+.4f}])" if interval else ""
        print(f"{name}: perplexity {claim} {ref}'s{shown}: {stats.verdict(lo, hi)}")


# %% tags=["nbval-ignore-output", "skip-grading"]
report(val_nll)
verdicts(["W8", "W8A8 per-token dynamic"], interval=True)

# %% tags=["skip-grading"]
verdicts(["W8A8 per-tensor static"])

# %% [markdown]
# **Reading W8A8.** Without outliers, 8 bits cost little here. On the validation windows, int8
# weights change the perplexity by +0.0010 [−0.0004, +0.0024] (not resolved), int8 activations per
# tensor, static, by +0.0116 [+0.0045, +0.0188], and per token, dynamic, by +0.0040 [+0.0007,
# +0.0073], against a float perplexity of 4.963. The per-token estimate is the smaller of the two, as
# expected of a scale that follows each token; but since no channel is more than a few times its
# layer's median, even the per-tensor scale wastes little.

# %% [markdown]
# ## 6. SmoothQuant: α chosen on validation
#
# The maxima $\max_t|X_{tj}|$ come from the 32 calibration windows (training text). For each α of a
# grid fixed in advance, `quant.smooth_gpt` folds the scales into every block's `ln1`/`qkv` and
# `ln2`/`fc1`, and the smoothed model is quantized to W8A8 per tensor, static (the setting SmoothQuant
# targets, calibrated again after smoothing). The α with the lowest validation perplexity is kept.
# First the fold must not change the float model.

# %% tags=["skip-grading"]
smoothed_layers = [f"h{i}.{reader}" for i in range(model.n_layer) for _, reader in quant.SMOOTHED_PAIRS]
cal_act = quant.activation_stats(model, cal_ids, names=smoothed_layers)
ALPHAS = [0.25, 0.5, 0.75, 0.9]
smooth_nll = {}
for alpha in ALPHAS:
    smooth_nll[alpha] = evaluate(w8a8(quant.smooth_gpt(model, cal_act, alpha), "per_tensor"))
alpha_best = min(ALPHAS, key=lambda a: smooth_nll[a].mean())
smoothed = quant.smooth_gpt(model, cal_act, alpha_best)
val_nll["SmoothQuant W8A8 per-tensor static"] = smooth_nll[alpha_best]
logit_gap_smooth = float(np.abs(smoothed.forward(val_ids[:4]) - model.forward(val_ids[:4])).max())

# %% tags=["nbval-ignore-output", "skip-grading"]
for alpha in ALPHAS:
    print(f"α = {alpha:4}: W8A8 per-tensor static perplexity {np.exp(smooth_nll[alpha].mean()):.4f}")
print(f"chosen α = {alpha_best}; largest |logit change| of the smoothed float model: {logit_gap_smooth:.2e}")
report(["W8A8 per-tensor static", "SmoothQuant W8A8 per-tensor static"])
verdicts(["SmoothQuant W8A8 per-tensor static"], ref="W8A8 per-tensor static", claim="below", interval=True)

# %% tags=["skip-grading"]
print("smoothing leaves the float logits unchanged (largest change < 1e-3):", "yes" if logit_gap_smooth < 1e-3 else "no")

# %% tags=["skip-grading"]
name = "h0.mlp.fc1"
after = quant.activation_stats(smoothed, cal_ids, names=[name])[name].absmax
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, (title, x_max, W) in zip(axes, [("before smoothing", cal_act[name].absmax, model[name].W),
                                        (f"after smoothing, α = {alpha_best}", after, smoothed[name].W)]):
    ax.plot(x_max, label="activations: max over tokens |X_j|", markevery=16, linewidth=1)
    ax.plot(np.abs(W).max(axis=0), label="weights: max over rows |W_j|", markevery=16, linewidth=1)
    ax.set_title(f"{name}: {title}")
    ax.set_xlabel("input channel j")
axes[0].set_ylabel("largest magnitude")
plot.legend(axes[1])
fig.tight_layout()
plot.show(fig, alt=(
    "Two panels for the input of block 0's fc1: per input channel, the largest activation magnitude over the "
    "calibration tokens and the largest weight magnitude over the layer's rows, before smoothing (left) and after "
    "smoothing with the chosen alpha (right), where activations are divided and weights multiplied channel by channel."
))

# %% [markdown]
# **Reading SmoothQuant.** The fold is exact up to float32 rounding (largest logit change 1.48e-05).
# The α grid is almost flat on validation (4.9709 to 4.9761) and α = 0.75 is kept. Smoothed W8A8 per
# tensor costs +0.0079 [+0.0017, +0.0143] against +0.0116 for the unsmoothed model: whether
# SmoothQuant helps is not resolved on these windows. With channel maxima within a few times of each
# other there is little difficulty to migrate; the variant of section 9 is where SmoothQuant has
# something to do.

# %% [markdown]
# ## 7. LLM.int8(): the outlier columns in float
#
# With threshold 6, every input column of a layer in which some $|x| \ge 6$ appears in a forward pass
# (a batch of 32 windows here) is multiplied in float; the rest in vector-wise int8 (per token × per
# output channel). Without decomposition, LLM.int8() is exactly the per-token W8A8 of section 5 — the
# control that isolates what the float columns buy.

# %% tags=["skip-grading"]
int8_model = quant.quantize_gpt(model, weight_bits=8, act="llm_int8", threshold=6.0)
val_nll["LLM.int8() threshold 6"] = evaluate(int8_model)
float_cols = quant.float_column_fraction(int8_model)

# %% tags=["nbval-ignore-output", "skip-grading"]
print("fraction of input columns kept in float, per layer (over the validation batches):")
print("  " + "  ".join(f"{n}: {f:.3f}" for n, f in float_cols.items() if n != "all"))
print(f"all layers: {float_cols['all']:.4f}")
report(["W8A8 per-token dynamic", "LLM.int8() threshold 6"])
verdicts(["LLM.int8() threshold 6"], interval=True)
verdicts(["LLM.int8() threshold 6"], ref="W8A8 per-token dynamic", claim="below", interval=True)

# %% tags=["skip-grading"]
print("fraction of columns in float below 5 %:", "yes" if float_cols["all"] < 0.05 else "no")

# %% [markdown]
# **Reading LLM.int8().** Threshold 6 sends 0.0003 of all input columns to float: only the inputs of
# `h2.attn.qkv` have any (0.008 of its columns, the channel 58 seen in section 3, on BOS). The
# perplexity cost is +0.0031 [−0.0004, +0.0066], against +0.0040 for per-token int8 without the
# decomposition (its control): the difference is not resolved. LLM.int8() is built for models where
# a few columns carry values of 20 or more; this one has almost none to decompose.

# %% [markdown]
# ## 8. Rotations: kurtosis, W4A8 and W4A4
#
# `quant.rotate_gpt(model, seed=0)` folds every LayerNorm's γ, β into its readers, rotates the residual
# stream by $Q = HDH$, the values and `attn.proj` by one Hadamard per head, and makes `mlp.fc2` rotate its
# input online by `fwht(x · d)`. The seed is fixed in advance (SpinQuant shows that random rotations
# differ; learning one is beyond this lab). At 8 bits there is little to win (section 5), so the test is
# 4-bit weights with 8- and 4-bit per-token activations.

# %% tags=["skip-grading"]
rotated = quant.rotate_gpt(model, seed=0)
logit_gap_rot = float(np.abs(rotated.forward(val_ids[:4]) - model.forward(val_ids[:4])).max())
kurt_ids = val_ids[:16]
kurt_before = {n: s.kurtosis for n, s in quant.activation_stats(model, kurt_ids).items()}
kurt_after = {n: s.kurtosis for n, s in quant.activation_stats(rotated, kurt_ids).items()}
fc2_names = [f"h{i}.mlp.fc2" for i in range(model.n_layer)]
plain_h_stats = quant.activation_stats(quant.rotate_gpt(model, seed=0, online_signs=False), kurt_ids, names=fc2_names)
kurt_plain_h = {n: s.kurtosis for n, s in plain_h_stats.items()}  # control: plain H before fc2
builds = {"": lambda: model, "rotated ": lambda: rotated, "LayerNorm-folded ": lambda: quant.fold_layernorms(model)}
for tag, build in builds.items():  # the last: control, the γ, β fold without any rotation
    for a_bits in (8, 4):
        val_nll[f"{tag}W4A{a_bits} per-token"] = evaluate(w8a8(build(), "per_token", bits=4, act_bits=a_bits))

# %% tags=["nbval-ignore-output", "skip-grading"]
print(f"largest |logit change| of the rotated float model: {logit_gap_rot:.2e}")
print(f"{'layer':15s} {'kurtosis before':>16s} {'after rotation':>15s}")
for n in layers:
    extra = f"   (plain H before fc2: {kurt_plain_h[n]:.1f})" if n in kurt_plain_h else ""
    print(f"{n:15s} {kurt_before[n]:16.2f} {kurt_after[n]:15.2f}{extra}")
report(["W4A8 per-token", "rotated W4A8 per-token", "W4A4 per-token", "rotated W4A4 per-token",
        "LayerNorm-folded W4A4 per-token"])
verdicts(["rotated W4A8 per-token"], ref="W4A8 per-token", claim="below", interval=True)

# %% tags=["skip-grading"]
print("rotation leaves the float logits unchanged (largest change < 1e-3):", "yes" if logit_gap_rot < 1e-3 else "no")
rotated_layers = [n for n in layers if n != "head"]
print("kurtosis lower after rotation in", sum(kurt_after[n] < kurt_before[n] for n in rotated_layers), "of",
      len(rotated_layers), "block layers")
verdicts(["rotated W4A4 per-token"], ref="W4A4 per-token", claim="below")
verdicts(["rotated W4A4 per-token"], ref="LayerNorm-folded W4A4 per-token", claim="below")

# %% tags=["skip-grading"]
fig, ax = plt.subplots(figsize=(11, 3.8))
x = np.arange(len(rotated_layers))
ax.bar(x - 0.2, [kurt_before[n] for n in rotated_layers], width=0.4, label="float model", hatch=plot.HATCHES[0])
ax.bar(x + 0.2, [kurt_after[n] for n in rotated_layers], width=0.4, label="rotated", hatch=plot.HATCHES[1])
ax.axhline(3.0, color="0.4", linestyle=":", linewidth=1)
ax.set_xticks(x, [n.replace(".", "\n", 1) for n in rotated_layers], fontsize=8)
ax.set_ylabel("kurtosis of the layer's input")
ax.set_title("kurtosis at every block linear layer's input (dotted: 3, Gaussian values)")
plot.legend(ax)
fig.tight_layout()
plot.show(fig, alt=(
    "Bar chart, one pair of bars per block linear layer: the kurtosis of the layer's input in the float model and "
    "in the rotated model, with a dotted line at 3, the kurtosis of Gaussian values. The table above gives the values."
))

# %% [markdown]
# **Reading the rotations.** The rotated model computes the same function (largest logit change
# 2.50e-05). Rotation lowers the kurtosis in 15 of 16 block layers, most at the GELU outputs: from
# 11.29–36.30 to 3.10–3.54 at the inputs of `fc2`. The control with a plain Hadamard before `fc2`
# (no random signs) leaves 4.3 to 23.1: the signs matter (question 4). In perplexity, W4A8 goes from
# 5.097 to 5.073 (not resolved), and W4A4 from 6.268 to 5.635 (yes, lower). Folding the LayerNorms
# alone, the first step of the recipe, gives 6.424 at W4A4, no better than the plain model, so the
# gain comes from the rotation itself. Even without outlier channels, rotations help at 4 bits because
# they make every input closer to Gaussian: fewer rare large values set the per-token scale.

# %% [markdown]
# ## 9. A clearly labelled variant with an outlier channel
#
# To see the mechanism the methods were built for, we give the model an outlier channel **without
# changing what it computes**: SmoothQuant run backwards. In every block, channel $j^* = 0$ (chosen
# before any result) of `ln1` and `ln2` gets $\gamma_{j^*}, \beta_{j^*} \times 20$ and the matching
# column of `qkv` and `fc1` is divided by 20 (`quant.amplify_channel`); 20× is the size Dettmers et al.
# report for LLM outlier features. The float logits are unchanged; only the inputs that the quantizers
# see differ. **This variant is not a trained model**: it shows how the methods act on an outlier of
# known size and place, not how they act on a larger language model. Nothing about it is tuned to
# favour a method; SmoothQuant's α is chosen on validation again, on the same grid.

# %% tags=["skip-grading"]
OUTLIER_CHANNEL, OUTLIER_FACTOR = 0, 20.0
loud = quant.amplify_channel(model, OUTLIER_CHANNEL, OUTLIER_FACTOR)
logit_gap_loud = float(np.abs(loud.forward(val_ids[:4]) - model.forward(val_ids[:4])).max())
act_loud = quant.activation_stats(loud, kurt_ids)
found_loud = {n: outlier_channels(act_loud[n]).tolist() for n in layers if outlier_channels(act_loud[n]).size}
val_nll["variant: W8A8 per-tensor static"] = evaluate(w8a8(loud, "per_tensor"))
val_nll["variant: W8A8 per-token dynamic"] = evaluate(w8a8(loud, "per_token"))
cal_loud = quant.activation_stats(loud, cal_ids, names=smoothed_layers)
smooth_nll_loud = {a: evaluate(w8a8(quant.smooth_gpt(loud, cal_loud, a), "per_tensor")) for a in ALPHAS}
alpha_loud = min(ALPHAS, key=lambda a: smooth_nll_loud[a].mean())
val_nll["variant: SmoothQuant W8A8 per-tensor static"] = smooth_nll_loud[alpha_loud]
int8_loud = quant.quantize_gpt(loud, weight_bits=8, act="llm_int8", threshold=6.0)
val_nll["variant: LLM.int8() threshold 6"] = evaluate(int8_loud)
float_cols_loud = quant.float_column_fraction(int8_loud)
val_nll["variant: rotated W8A8 per-tensor static"] = evaluate(w8a8(quant.rotate_gpt(loud, seed=0), "per_tensor"))
val_nll["variant: LayerNorm-folded W8A8 per-tensor static"] = evaluate(w8a8(quant.fold_layernorms(loud), "per_tensor"))
variant_names = [n for n in val_nll if n.startswith("variant:")]

# %% tags=["nbval-ignore-output", "skip-grading"]
print(f"largest |logit change| of the variant: {logit_gap_loud:.2e}")
for n in ("h0.attn.qkv", "h0.mlp.fc1"):
    s = act_loud[n]
    print(f"{n}: channel {OUTLIER_CHANNEL} max|x| {s.absmax[OUTLIER_CHANNEL]:.1f}, median channel "
          f"{np.median(s.absmax):.2f}, kurtosis {s.kurtosis:.1f} (float model: {kurt_before[n]:.1f})")
for alpha in ALPHAS:
    print(f"variant, α = {alpha:4}: SmoothQuant W8A8 per-tensor static perplexity {np.exp(smooth_nll_loud[alpha].mean()):.4f}")
print(f"chosen α = {alpha_loud}; LLM.int8() keeps {float_cols_loud['all']:.4f} of the columns in float")
report(variant_names)

# %% tags=["skip-grading"]
print("the variant's float logits equal the model's (largest change < 1e-3):", "yes" if logit_gap_loud < 1e-3 else "no")
print("outlier channels of the variant:", found_loud if found_loud else "none")
verdicts(["variant: W8A8 per-tensor static", "variant: W8A8 per-token dynamic"])
verdicts(["variant: SmoothQuant W8A8 per-tensor static", "variant: rotated W8A8 per-tensor static",
          "variant: LayerNorm-folded W8A8 per-tensor static"], ref="variant: W8A8 per-tensor static", claim="below")
verdicts(["variant: LLM.int8() threshold 6"], ref="variant: W8A8 per-token dynamic", claim="below")

# %% [markdown]
# **Reading the variant.** The variant computes the same function as the model (largest logit change
# 8.58e-06), but channel 0 of `h0.attn.qkv`'s input now reaches 76.1 against a median channel of
# 3.18, and the kurtosis of that input is 218.2 instead of 3.2. The outlier channel is found in the
# inputs of every `qkv` and `fc1`, the layers that read `ln1` and `ln2`. What this does to the
# quantizers:
#
# * **per tensor, static**, the outlier sets the one scale: perplexity 5.572, +0.6092 [+0.5386, +0.6862]
#   over float, against +0.0116 on the model;
# * **per token, dynamic**: 5.010, +0.0472 [+0.0310, +0.0629]: each token's scale is set by its
#   channel 0 too, but a token's own range is smaller than the whole tensor's;
# * **SmoothQuant** (α = 0.75 again on validation) brings it back to 4.971, +0.0077 [+0.0011, +0.0144].
#   Its scale undoes the amplification exactly: $\max|X_j|$ grows by 20 and $\max|W_j|$ shrinks by 20,
#   so $s_j$ grows by $20^\alpha \cdot 20^{1-\alpha} = 20$ at every α, and the smoothed variant is the
#   smoothed model (its α grid prints the same perplexities as section 6, 4.9706 to 4.9759);
# * **LLM.int8()** keeps 0.0025 of the columns in float and gets 4.966, +0.0027 [−0.0007, +0.0061]:
#   the outlier columns are exactly the ones it takes out;
# * **rotation** gets 4.965, +0.0016 [−0.0028, +0.0058]; but its control, folding the LayerNorms
#   without rotating, already gets 4.972, +0.0088 [+0.0016, +0.0162]. The outlier of this variant
#   lives in LayerNorm's γ, and the fold moves γ into the weights before any rotation (question 6).
#   On this variant the rotation's recovery is the fold's; section 8 is where the rotation itself
#   shows a gain.

# %% [markdown]
# ## 10. Test, once: the claims, with intervals
#
# Every choice is fixed: α (sections 6 and 9), the rotation's seed, the variant's channel and factor,
# the grids. The test split is now read once: 64 windows of 128 characters spread evenly over it, each
# claim a paired difference of perplexities on the same windows with a $95\,\%$ bootstrap interval and a
# bootstrap p-value (`stats.paired_window_pvalue`). The claims form one family, so the verdict words
# come from Holm's method (`stats.family_verdicts`, family-wise error 5 %); the table before them also
# gives what each claim's own interval says, read alone.

# %% tags=["test-once"]
# Test, once: every choice above was made on validation; the quantized models are fixed
test_tokens = spaced_windows(text.test, N_WINDOWS)
test_models = {  # each built when evaluated, so that no quantized copy stays in memory
    "float": lambda: model,
    "W8": variants["W8"],
    "W8A8 per-tensor static": variants["W8A8 per-tensor static"],
    "W8A8 per-token dynamic": variants["W8A8 per-token dynamic"],
    "SmoothQuant W8A8 per-tensor static": lambda: w8a8(smoothed, "per_tensor"),
    "LLM.int8() threshold 6": lambda: quant.quantize_gpt(model, weight_bits=8, act="llm_int8", threshold=6.0),
    "W4A4 per-token": lambda: w8a8(model, "per_token", bits=4, act_bits=4),
    "rotated W4A4 per-token": lambda: w8a8(rotated, "per_token", bits=4, act_bits=4),
    "variant: W8A8 per-tensor static": lambda: w8a8(loud, "per_tensor"),
    "variant: W8A8 per-token dynamic": lambda: w8a8(loud, "per_token"),
    "variant: SmoothQuant W8A8 per-tensor static": lambda: w8a8(quant.smooth_gpt(loud, cal_loud, alpha_loud), "per_tensor"),
    "variant: LLM.int8() threshold 6": lambda: quant.quantize_gpt(loud, weight_bits=8, act="llm_int8", threshold=6.0),
    "variant: rotated W8A8 per-tensor static": lambda: w8a8(quant.rotate_gpt(loud, seed=0), "per_tensor"),
}
test_nll = {name: evaluate(build(), test_tokens) for name, build in test_models.items()}
claims = [  # (claim, A, B): "A's perplexity is above B's" (a cost) or "below" (a gain)
    ("W8 costs perplexity", "W8", "float", "above"),
    ("W8A8 per-tensor static costs perplexity", "W8A8 per-tensor static", "float", "above"),
    ("W8A8 per-token dynamic costs perplexity", "W8A8 per-token dynamic", "float", "above"),
    ("SmoothQuant beats W8A8 per-tensor static", "SmoothQuant W8A8 per-tensor static", "W8A8 per-tensor static", "below"),
    ("LLM.int8() beats W8A8 per-token dynamic", "LLM.int8() threshold 6", "W8A8 per-token dynamic", "below"),
    ("rotation beats no rotation at W4A4", "rotated W4A4 per-token", "W4A4 per-token", "below"),
    ("variant: W8A8 per-tensor static costs perplexity", "variant: W8A8 per-tensor static", "float", "above"),
    ("variant: W8A8 per-token dynamic costs perplexity", "variant: W8A8 per-token dynamic", "float", "above"),
    ("variant: SmoothQuant beats W8A8 per-tensor static", "variant: SmoothQuant W8A8 per-tensor static",
     "variant: W8A8 per-tensor static", "below"),
    ("variant: LLM.int8() beats W8A8 per-token dynamic", "variant: LLM.int8() threshold 6",
     "variant: W8A8 per-token dynamic", "below"),
    ("variant: rotation beats W8A8 per-tensor static", "variant: rotated W8A8 per-tensor static",
     "variant: W8A8 per-tensor static", "below"),
]
results = []
for claim, a, b, direction in claims:
    x, y = (test_nll[a], test_nll[b]) if direction == "above" else (test_nll[b], test_nll[a])
    results.append((claim, *stats.paired_window_bootstrap(x, y), stats.paired_window_pvalue(x, y)))
family = stats.family_verdicts([r[1] for r in results], [r[4] for r in results], alpha=0.05)
alone = [stats.verdict(lo, hi) for _, _, lo, hi, _ in results]

# %% tags=["nbval-ignore-output", "test-once"]
# Test, once: perplexities and the claims' intervals (read by no choice)
for name, nll in test_nll.items():
    ppl, lo, hi = stats.window_bootstrap(nll)
    print(f"{name:44s} test perplexity {ppl:6.3f} [{lo:6.3f}, {hi:6.3f}]")
print()
p_holm = stats.holm([r[4] for r in results])
for (claim, d, lo, hi, p), ph, single in zip(results, p_holm, alone):
    print(f"{claim:52s} effect {d:+.4f} [{lo:+.4f}, {hi:+.4f}]  p {p:.2g}  Holm p {ph:.2g}  (interval alone: {single})")

# %% tags=["test-once"]
# Test, once: the verdicts of the family of claims, Holm-controlled (read by no choice)
for (claim, *_), word in zip(results, family):
    print(f"{claim}: {word}")

# %% [markdown]
# **Reading the verdicts.** On the trained model, no 8-bit configuration has a resolved cost on the
# test windows once the family is controlled, and neither SmoothQuant nor LLM.int8() has a resolved
# gain: at 8 bits there is nothing to recover. At W4A4, rotation lowers the test perplexity (6.886
# without, 6.258 with): yes. On the variant with an outlier channel, W8A8 per tensor (6.200 against
# 5.610 in float) and per token (5.648) both cost perplexity, and SmoothQuant, LLM.int8() and the
# rotation recipe each recover it (5.606, 5.610, 5.613): yes for each, the rotation's through its
# LayerNorm fold (section 9). The two halves of the lab say different things, and both are the
# measurement: activation-aware methods fix outlier channels when there are some, and this small
# model has none.

# %% [markdown]
# ## 11. Questions to think about
#
# 1. A per-token scale adapts to each token, a per-tensor scale does not. Which of the two suffers more
#    from an outlier channel that is large on *every* token, and which from one token (say BOS) whose
#    values are large in *every* channel?
# 2. SmoothQuant folds $1/s$ into LayerNorm. Why can it not smooth the input of `mlp.fc2` the same way,
#    and what does QuaRot do there instead?
# 3. The rotation of the residual stream needs $Q\mathbf 1 = \mathbf 1$ because LayerNorm subtracts the
#    mean. LLaMA uses RMSNorm. Which rotations would be exact there, and why is that simpler?
# 4. Why does a plain Hadamard before `fc2` lower the kurtosis of its input much less than one with
#    random signs in section 8? (Think of the first row of $H$ and the sign of GELU's outputs.)
# 5. LLM.int8() keeps a column in float when *any* token reaches 6. What happens to the fraction of
#    float columns as the batch grows, and what does that do to its speed?
# 6. Section 9 moved an outlier into LayerNorm's γ. Why does the rotation recipe remove it before any
#    rotation happens, and where would an outlier have to live for only the rotation to spread it?
#
# ## 12. Summary
#
# * A character-level GPT of 826,690 parameters has **no outlier channels** and no attention sink:
#   channel maxima within 1.3 to 4.1 times their layer's median, 1 % to 5 % of each head's attention
#   on BOS. Its GELU outputs are heavy-tailed (kurtosis up to 36.0) without being channel outliers.
# * On it, W8A8 costs little (at most +0.0116 in validation perplexity, not resolved on test after
#   Holm), and SmoothQuant and LLM.int8() have nothing to fix. At W4A4, a Hadamard rotation folded into
#   the weights lowers the perplexity, 6.886 → 6.258 on test.
# * Given an outlier channel of 20× by an output-preserving rescaling, W8A8 per tensor breaks (6.200
#   against 5.610 on test) and per token suffers (5.648); SmoothQuant, LLM.int8() and the folded,
#   rotated model recover it. SmoothQuant's scales undo such a rescaling exactly, and the LayerNorm
#   fold alone removes an outlier that lives in γ.
# * Every transformation was checked to leave the float logits unchanged (within float32 rounding)
#   before its quantized perplexity was read.

# %% tags=["nbval-ignore-output"]
print(f"CPU time of this notebook's kernel: {(time.process_time() - cpu_start) / 60:.1f} minutes")
