"""Checks for lab 11 (compression meets the transformer): causal attention, LayerNorm's backward pass,
SmoothQuant's scale and fold, per-token dynamic quantization and the fast Walsh–Hadamard transform.

Each check's ``compare`` is an ordered list of detectors, one small function per mistake it names
(shape and type first, specific mistakes next, a generic comparison last): the first that recognises
the answer gives the hint. The references are labkit's own (``labkit.nn.causal_attention``,
``labkit.nn.LayerNorm``, ``labkit.quant.smoothquant_scales`` / ``fold_smoothquant_layernorm``,
``labkit.quant.quantize_per_token``, ``labkit.quant.fwht``), which the lab then uses at scale.
"""

from __future__ import annotations

import numpy as np

from ..nn import LayerNorm, causal_attention
from ..quant import fold_smoothquant_layernorm, fwht, quantize_per_token, smoothquant_scales
from .exercise import Case, Exercise

__all__ = [
    "causal_attention_head",
    "layernorm_backward",
    "smoothquant_fold",
    "per_token_quantize",
    "fast_hadamard",
    "reference_causal_attention_head",
    "reference_layernorm_backward",
    "reference_smoothquant_fold",
    "reference_per_token_quantize",
    "reference_fast_hadamard",
]


class _Answer:
    """What a detector looks at: the learner's ``got``, the reference's ``expected``, the case's ``args``."""

    __slots__ = ("got", "expected", "case")

    def __init__(self, got, expected, case):
        self.got, self.expected, self.case = got, expected, case

    @property
    def args(self):
        return self.case.args


#: what a detector returns for an answer that is right although not equal to the reference
_ACCEPT = object()


def _detectors(*detectors):
    """A check's ``compare``: the first detector that recognises the answer gives the hint (or accepts it)."""

    def compare(got, expected, case):
        a = _Answer(got, expected, case)
        hint = next((h for h in (d(a) for d in detectors) if h is not None), None)
        return None if hint is _ACCEPT else hint

    compare.detectors = detectors
    return compare


def _num(x) -> str:
    """A number as a hint prints it (8.0, 64; never np.float32(8.0))."""
    return f"{float(x):.6g}"


def _array(got, what, shape, why=""):
    """What is wrong with an array answer's type, shape or dtype kind (a float array expected), or None."""
    if not isinstance(got, np.ndarray):
        return f"{what} must be a numpy array, got {type(got).__name__}"
    if got.shape != tuple(shape):
        return f"{what} has shape {got.shape}, expected {tuple(shape)}" + (f" ({why})" if why else "")
    if got.dtype.kind not in "fiu":
        return f"{what} should hold numbers, got dtype {got.dtype}"
    return None


def compare_arrays(got, expected, what, rtol=1e-5, atol=1e-8, exact=False):
    """A hint naming the largest difference (plain numbers), or None if ``got`` matches ``expected``."""
    got_a, exp_a = np.asarray(got), np.asarray(expected)
    if got_a.shape != exp_a.shape:
        return f"{what} has shape {got_a.shape}, expected {exp_a.shape}"
    if exact:
        bad = got_a != exp_a
        if not bad.any():
            return None
        i = tuple(int(j) for j in np.unravel_index(np.argmax(bad), bad.shape))
        first = f"first at index {i}: got {got_a[i]}, expected {exp_a[i]}"
        return f"{what} differs in {int(bad.sum())} of {bad.size} entries ({first})"
    if _close(got_a, exp_a, rtol, atol):
        return None
    err = np.abs(got_a.astype(np.float64) - exp_a.astype(np.float64))
    err = np.where(np.isnan(err), np.inf, err)
    i = tuple(int(j) for j in np.unravel_index(np.argmax(err), err.shape))
    return f"{what} is off (largest error {_num(err[i])} at index {i}: got {_num(got_a[i])}, expected {_num(exp_a[i])})"


def _close(got, want, rtol=1e-5, atol=1e-8):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and bool(np.all(np.isfinite(got))) and np.allclose(got, want, rtol=rtol, atol=atol)


def _equal(a):
    """Right: every part of the answer equal to the reference's (floats to rtol 1e-6)."""
    parts = a.expected if isinstance(a.expected, tuple) else (a.expected,)
    got = a.got if isinstance(a.expected, tuple) else (a.got,)

    def same(g, p):
        if p.dtype.kind in "iu":  # integer codes: the same dtype and values
            return isinstance(g, np.ndarray) and g.dtype == p.dtype and np.array_equal(g, p)
        return isinstance(g, np.ndarray) and g.dtype.kind == "f" and _close(g, p, rtol=1e-6, atol=1e-9)

    return _ACCEPT if all(same(g, p) for g, p in zip(got, parts)) else None


def _tuple(got, n, names):
    if not isinstance(got, (tuple, list)) or len(got) != n:
        what = type(got).__name__ + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "")
        return f"return a tuple of {n} arrays ({', '.join(names)}), got a {what}"
    return None


# --- Exercise 1: one head of causal self-attention ---------------------------------------------------


def reference_causal_attention_head(q, k, v):
    """``softmax(q kᵀ / √d + M) v`` with ``M[i, j] = −∞`` for ``j > i``; q, k (T, d), v (T, d_v) → (T, d_v)."""
    y, _ = causal_attention(q[None, None], k[None, None], v[None, None])
    return y[0, 0]


def _attention(q, k, v, scale=None, mask="causal", axis=1, when="before"):
    """Variants of attention in float64: the mistakes the detectors recognise."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    t, d = q.shape
    s = q @ k.T / (np.sqrt(d) if scale is None else scale)
    future = np.triu(np.ones((t, t), bool), 1)
    hidden = {"causal": future, "none": np.zeros_like(future), "past": future.T}[mask]
    if when == "before":
        s = np.where(hidden, -np.inf, s)
    elif when == "zero":
        s = np.where(hidden, 0.0, s)
    s = s - s.max(axis=axis, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=axis, keepdims=True)
    if when == "after":
        p = np.where(hidden, 0.0, p)
    return p @ v


def _attn_shape(a):
    q, _, v = a.args
    t, dv = q.shape[0], v.shape[1]
    if isinstance(a.got, np.ndarray) and a.got.shape == (t, t) and t != dv:
        return (
            f"you returned a ({t}, {t}) array, the attention probabilities P: "
            f"return the output P @ v, shape ({t}, {dv})"
        )
    return _array(a.got, "the output", (t, dv), "one row per query, v's columns")


def _attn_diagonal(a):
    got = np.asarray(a.got, np.float64)
    if not np.all(np.isfinite(got[0])) and np.all(np.isfinite(got[1:])):
        return (
            "row 0 is not finite: query 0 has no key left to look at. A query sees its own position and the "
            "past; mask only the future, M[i, j] = -inf for j > i (np.triu(..., k=1))"
        )
    return None


def _attn_overflow(a):
    if not np.all(np.isfinite(np.asarray(a.got, np.float64))):
        return (
            "the output holds nan or inf on large scores: exp overflows. Subtract each row's largest score "
            "before np.exp (softmax(s) = softmax(s - max s))"
        )
    return None


def _attn_no_mask(a):
    if _close(a.got, _attention(*a.args, mask="none")):
        return "each query also reads later positions: add the causal mask, M[i, j] = -inf for keys j > i"
    return None


def _attn_past_masked(a):
    if _close(a.got, _attention(*a.args, mask="past")):
        return "you hid the past and kept the future: mask keys j > i (above the diagonal), not j < i"
    return None


def _attn_no_scale(a):
    if _close(a.got, _attention(*a.args, scale=1.0)):
        return "divide the scores by √d (d = q.shape[1], the key length): softmax(q kᵀ / √d + M)"
    return None


def _attn_scale_d(a):
    if _close(a.got, _attention(*a.args, scale=float(a.args[0].shape[1]))):
        return "you divided the scores by d; scaled dot-product attention divides by √d"
    return None


def _attn_axis0(a):
    if _close(a.got, _attention(*a.args, axis=0)):
        return "the softmax runs over the keys of each query (axis 1, each row sums to 1), not over the queries"
    return None


def _attn_mask_after(a):
    if _close(a.got, _attention(*a.args, when="after")):
        return (
            "you zeroed the future probabilities after the softmax, so rows no longer sum to 1: mask the scores "
            "with -inf before the softmax"
        )
    return None


def _attn_zero_scores(a):
    if _close(a.got, _attention(*a.args, when="zero")):
        return "a masked score of 0 still gets the weight exp(0) = 1: set masked scores to -inf"
    return None


def _attn_values(a):
    return compare_arrays(a.got, a.expected, "the output", rtol=1e-5, atol=1e-8)


def _attn_cases(rng):
    cases = []
    for t, d, dv in [(5, 3, 4), (7, 6, 2), (6, 2, 5)]:
        q, k, v = rng.standard_normal((t, d)), rng.standard_normal((t, d)), rng.standard_normal((t, dv))
        cases.append(Case((q, k, v), label=f"T = {t}, d = {d}, d_v = {dv}"))
    return cases


def _attn_fixed():
    rng = np.random.default_rng(11)
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    big = rng.standard_normal((5, 4)) * 40.0
    return [
        Case((q, k, v), label="T = 4, d = 3, d_v = 2"),
        Case((big, big[::-1].copy(), rng.standard_normal((5, 3))), label="large scores (|s| in the hundreds)"),
    ]


causal_attention_head = Exercise(
    "causal_attention_head",
    reference_causal_attention_head,
    fixed_cases=_attn_fixed(),
    cases=_attn_cases,
    compare=_detectors(
        _attn_shape,
        _equal,
        _attn_diagonal,
        _attn_overflow,
        _attn_no_mask,
        _attn_past_masked,
        _attn_no_scale,
        _attn_scale_d,
        _attn_axis0,
        _attn_mask_after,
        _attn_zero_scores,
        _attn_values,
    ),
    pass_line="causal_attention_head: masked, scaled, stable softmax attention correct on 5 cases",
)


# --- Exercise 2: LayerNorm's backward pass -----------------------------------------------------------


def reference_layernorm_backward(dy, x, gamma, eps):
    """``(dx, dgamma, dbeta)`` of ``y = (x − μ)/sqrt(σ² + eps) · γ + β`` (statistics over the last axis)."""
    ln = LayerNorm(x.shape[-1], eps=eps, dtype=np.float64)
    ln.gamma = np.asarray(gamma, np.float64).copy()
    ln.forward(np.asarray(x, np.float64))
    dx = ln.backward(np.asarray(dy, np.float64))
    return dx, ln.dgamma, ln.dbeta


def _ln_variant(dy, x, gamma, eps, ddof=0, eps_outside=False, axis=-1, dgamma_x=False, dx="full"):
    """LayerNorm's gradients in float64, with the mistakes the detectors recognise."""
    dy, x, gamma = (np.asarray(a, np.float64) for a in (dy, x, gamma))
    mu = x.mean(axis=axis, keepdims=True)
    xc = x - mu
    var = (xc * xc).sum(axis=axis, keepdims=True) / (x.shape[axis] - ddof)
    r = 1.0 / (np.sqrt(var) + eps) if eps_outside else 1.0 / np.sqrt(var + eps)
    xhat = xc * r
    dgamma = (dy * (x if dgamma_x else xhat)).sum(axis=0)
    dbeta = dy.sum(axis=0)
    g = dy * gamma if dx != "no_gamma" else dy
    mg = g.mean(axis=axis, keepdims=True)
    mgx = (g * xhat).mean(axis=axis, keepdims=True)
    if dx == "constant":
        out = r * g
    elif dx == "no_mean":
        out = r * (g - xhat * mgx)
    elif dx == "no_var":
        out = r * (g - mg)
    else:
        out = r * (g - mg - xhat * mgx)
    return out, dgamma, dbeta


def _triple_close(got, want, rtol=1e-5):
    return all(_close(g, w, rtol=rtol, atol=1e-8) for g, w in zip(got, want))


def _ln_tuple(a):
    return _tuple(a.got, 3, ("dx", "dgamma", "dbeta"))


def _ln_shapes(a):
    _, x, _, _ = a.args
    n, d = x.shape
    dx, dgamma, dbeta = a.got
    for got, what, shape in ((dx, "dx", (n, d)), (dgamma, "dgamma", (d,)), (dbeta, "dbeta", (d,))):
        why = "one value per feature: sum over the rows (tokens)" if what != "dx" else "the shape of x"
        problem = _array(got, what, shape, why)
        if problem:
            return problem
    return None


def _ln_swapped(a):
    _, dgamma, dbeta = a.got
    if _close(dgamma, a.expected[2]) and _close(dbeta, a.expected[1]):
        return "dgamma and dbeta are swapped: dbeta = Σ dy, dgamma = Σ dy · x̂ (sums over the rows)"
    return None


def _ln_unbiased(a):
    if _triple_close(a.got, _ln_variant(*a.args, ddof=1)):
        return "LayerNorm uses the biased variance, σ² = mean((x − μ)²) (divide by d, not d − 1)"
    return None


def _ln_eps_outside(a):
    if _triple_close(a.got, _ln_variant(*a.args, eps_outside=True)):
        return "eps goes inside the square root: r = 1 / sqrt(σ² + eps), not 1 / (σ + eps)"
    return None


def _ln_axis0(a):
    if _triple_close(a.got, _ln_variant(*a.args, axis=0)):
        return "normalise each row (one token's features, the last axis), not each column"
    return None


def _ln_dgamma_x(a):
    if _close(a.got[1], _ln_variant(*a.args, dgamma_x=True)[1]):
        return "dgamma = Σ dy · x̂ with the normalised x̂ = (x − μ) · r, not the raw x"
    return None


def _ln_dgamma(a):
    return compare_arrays(a.got[1], a.expected[1], "dgamma", rtol=1e-5, atol=1e-8)


def _ln_dbeta(a):
    return compare_arrays(a.got[2], a.expected[2], "dbeta", rtol=1e-5, atol=1e-8)


def _ln_dx_variant(kind, hint):
    def detector(a):
        return hint if _close(a.got[0], _ln_variant(*a.args, dx=kind)[0]) else None

    detector.__name__ = f"_ln_dx_{kind}"
    return detector


_ln_constant = _ln_dx_variant(
    "constant",
    "dx = dy · γ · r treats μ and σ as constants, but both depend on x: dx = r · (g − mean(g) − x̂ · mean(g · x̂)), "
    "g = dy · γ",
)
_ln_no_mean = _ln_dx_variant(
    "no_mean", "dx misses the mean's term: subtract mean(g) over the features, dx = r · (g − mean(g) − x̂ · mean(g · x̂))"
)
_ln_no_var = _ln_dx_variant(
    "no_var", "dx misses the variance's term: subtract x̂ · mean(g · x̂), dx = r · (g − mean(g) − x̂ · mean(g · x̂))"
)
_ln_no_gamma = _ln_dx_variant("no_gamma", "the gradient reaching x̂ is g = dy · γ: multiply by gamma before the means")


def _ln_dx(a):
    return compare_arrays(a.got[0], a.expected[0], "dx", rtol=1e-5, atol=1e-8)


def _ln_cases(rng):
    cases = []
    for n, d in [(3, 8), (5, 6), (4, 16)]:
        x = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0) + rng.standard_normal(d)
        gamma = 1.0 + 0.5 * rng.standard_normal(d)
        dy = rng.standard_normal((n, d))
        cases.append(Case((dy, x, gamma, 1e-5), label=f"{n} tokens of {d} features, eps = 1e-5"))
    return cases


def _ln_fixed():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 5)) * 0.3
    return [Case((rng.standard_normal((4, 5)), x, 1.0 + 0.5 * rng.standard_normal(5), 0.5), label="eps = 0.5")]


layernorm_backward = Exercise(
    "layernorm_backward",
    reference_layernorm_backward,
    fixed_cases=_ln_fixed(),
    cases=_ln_cases,
    compare=_detectors(
        _ln_tuple,
        _ln_shapes,
        _equal,
        _ln_swapped,
        _ln_unbiased,
        _ln_eps_outside,
        _ln_axis0,
        _ln_dgamma_x,
        _ln_dgamma,
        _ln_dbeta,
        _ln_constant,
        _ln_no_mean,
        _ln_no_var,
        _ln_no_gamma,
        _ln_dx,
    ),
    pass_line="layernorm_backward: dx, dgamma and dbeta match the finite-difference-checked layer on 4 cases",
)


# --- Exercise 3: SmoothQuant's scales and their fold into a LayerNorm ---------------------------------


def reference_smoothquant_fold(x_absmax, gamma, beta, W, alpha):
    """``(s, γ/s, β/s, W·diag(s))`` with ``s_j = max|X_j|^α / max_o|W_oj|^(1−α)`` (1 where a maximum is 0)."""
    s = smoothquant_scales(x_absmax, W, alpha).astype(np.float64)
    g, b, Ws = fold_smoothquant_layernorm(gamma, beta, W, s)
    return s, g, b, Ws


def _sq_scales(x_absmax, W, alpha, w_abs=True, swap=False, multiply=False):
    a = np.asarray(x_absmax, np.float64)
    w = (np.abs(W) if w_abs else np.asarray(W)).max(axis=0).astype(np.float64)
    ea, ew = (1 - alpha, alpha) if swap else (alpha, 1 - alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a**ea * w**ew if multiply else a**ea / w**ew
    live = (a > 0) & (np.abs(W).max(axis=0) > 0)
    return np.where(live, s, 1.0)


def _sq_tuple(a):
    return _tuple(a.got, 4, ("s", "gamma_new", "beta_new", "W_new"))


def _sq_shapes(a):
    _, _, _, W, _ = a.args
    out, n = W.shape
    s = a.got[0]
    if isinstance(s, np.ndarray) and s.shape == (out,):
        return (
            f"s has shape ({out},), one per output row of W: SmoothQuant scales each input channel j, "
            f"so take max|W| over axis 0 (shape ({n},))"
        )
    for got, what, shape in zip(a.got, ("s", "gamma_new", "beta_new", "W_new"), ((n,), (n,), (n,), (out, n))):
        problem = _array(got, what, shape)
        if problem:
            return problem
    return None


def _sq_dead(a):
    x_absmax, _, _, W, _ = a.args
    dead = (np.asarray(x_absmax) == 0) | (np.abs(W).max(axis=0) == 0)
    s = np.asarray(a.got[0], np.float64)
    if dead.any() and not np.allclose(s[dead], 1.0):
        return (
            f"channels {np.flatnonzero(dead).tolist()} have max|X_j| = 0 or max|W_j| = 0 (nothing to balance): "
            "give them s_j = 1"
        )
    return None


def _sq_swapped(a):
    x_absmax, _, _, W, alpha = a.args
    if alpha != 0.5 and _close(a.got[0], _sq_scales(x_absmax, W, alpha, swap=True)):
        return "the exponents are swapped: s_j = max|X_j|^α / max|W_j|^(1−α) (α on the activations)"
    return None


def _sq_signed(a):
    x_absmax, _, _, W, alpha = a.args
    if _close(a.got[0], _sq_scales(x_absmax, W, alpha, w_abs=False)):
        return "max|W_j| is the largest magnitude in column j: take np.abs(W) before the max"
    return None


def _sq_multiplied(a):
    x_absmax, _, _, W, alpha = a.args
    if _close(a.got[0], _sq_scales(x_absmax, W, alpha, multiply=True)):
        return "divide by max|W_j|^(1−α): s_j = max|X_j|^α / max|W_j|^(1−α)"
    return None


def _sq_s(a):
    return compare_arrays(a.got[0], a.expected[0], "s", rtol=1e-5, atol=1e-8)


def _sq_gamma_times(a):
    _, gamma, _, _, _ = a.args
    if _close(a.got[1], gamma * a.expected[0]):
        return "gamma_new = gamma · s moves the wrong way: the activations are divided by s, so γ ← γ / s"
    return None


def _sq_beta_kept(a):
    _, _, beta, _, _ = a.args
    if _close(a.got[2], beta) and not _close(beta, a.expected[2]):
        return "β must be divided by s too: the whole LayerNorm output γ ⊙ n + β is divided by s"
    return None


def _sq_w_divided(a):
    _, _, _, W, _ = a.args
    if _close(a.got[3], W / a.expected[0]):
        return "W_new divides the columns by s; it must multiply them, W_new = W · diag(s), so X Wᵀ is unchanged"
    return None


def _sq_rest(a):
    names = ("gamma_new", "beta_new", "W_new")
    hints = (compare_arrays(g, e, n, rtol=1e-5, atol=1e-8) for g, e, n in zip(a.got[1:], a.expected[1:], names))
    return next((h for h in hints if h), None)


def _sq_case(rng, out, n, alpha, dead=False):
    x_absmax = rng.uniform(0.2, 2.0, n)
    x_absmax[rng.integers(n)] = rng.uniform(20.0, 60.0)  # an outlier channel
    W = rng.standard_normal((out, n)) * 0.1
    if dead:
        x_absmax[1] = 0.0
        W[:, 2] = 0.0
    gamma, beta = 1.0 + 0.2 * rng.standard_normal(n), 0.1 * rng.standard_normal(n)
    label = f"W ({out}, {n}), α = {alpha}" + (", a dead channel and a zero weight column" if dead else "")
    return Case((x_absmax, gamma, beta, W, alpha), label=label)


smoothquant_fold = Exercise(
    "smoothquant_fold",
    reference_smoothquant_fold,
    fixed_cases=[_sq_case(np.random.default_rng(13), 6, 4, 0.5), _sq_case(np.random.default_rng(14), 3, 5, 0.5, True)],
    cases=lambda rng: [_sq_case(rng, out, n, al) for out, n, al in [(8, 5, 0.75), (3, 6, 0.3), (12, 4, 0.5)]],
    compare=_detectors(
        _sq_tuple,
        _sq_shapes,
        _equal,
        _sq_dead,
        _sq_swapped,
        _sq_signed,
        _sq_multiplied,
        _sq_s,
        _sq_gamma_times,
        _sq_beta_kept,
        _sq_w_divided,
        _sq_rest,
    ),
    pass_line="smoothquant_fold: scales s_j and the fold into γ, β and W correct on 5 layers",
)


# --- Exercise 4: per-token dynamic quantization --------------------------------------------------------


def reference_per_token_quantize(X, bits):
    """Symmetric per-row codes: ``scale_t = max_j |X_tj| / (2^(b−1) − 1)`` (1 for an all-zero row),
    ``q = clip(rint(X / scale_t), −qmax, qmax)`` as int8. Returns ``(q, scale)``, scale float32."""
    r = quantize_per_token(X, bits)
    return r.q, r.scale


def _pt_tuple(a):
    return _tuple(a.got, 2, ("q", "scale"))


def _pt_scale_shape(a):
    X, _ = a.args
    t, d = X.shape
    s = a.got[1]
    if isinstance(s, (float, np.floating)) or (isinstance(s, np.ndarray) and s.size == 1 and t > 1):
        return (
            "scale is one number (per tensor): per-token quantization gives each row (token) "
            f"its own scale, shape ({t},)"
        )
    if isinstance(s, np.ndarray) and s.shape == (d,) and d != t:
        return (
            f"scale has shape ({d},), one per column (channel): take the max over each row instead "
            f"(axis 1), shape ({t},)"
        )
    return _array(s, "scale", (t,), "one scale per row (token)")


def _pt_q_shape(a):
    X, _ = a.args
    return _array(a.got[0], "q", X.shape, "the shape of X")


def _pt_zero_row(a):
    X, _ = a.args
    zero = ~np.any(X != 0, axis=1)
    s = np.asarray(a.got[1], np.float64)
    if zero.any() and not np.allclose(s[zero], 1.0):
        row = int(np.flatnonzero(zero)[0])
        return f"row {row} is all zeros: give it scale 1 (its codes are all 0), not {_num(s[row])}"
    return None


def _pt_divisor(a):
    X, bits = a.args
    amax = np.abs(X).max(axis=1).astype(np.float64)
    s = np.asarray(a.got[1], np.float64)
    live = amax > 0
    qmax = 2 ** (bits - 1) - 1
    for div, why in (
        (2 ** (bits - 1), f"2^(bits−1) = {2 ** (bits - 1)}"),
        (2**bits - 1, f"2^bits − 1 = {2**bits - 1}"),
        (1, "1 (the scale is the size of one integer step)"),
        (127, "127 whatever the bits"),
    ):
        if div != qmax and np.allclose(s[live], amax[live] / div, rtol=1e-5):
            return f"scale = max|x| / {why}; symmetric {bits}-bit codes use ±{qmax}: scale = max|x| / (2^(bits−1) − 1)"
    if np.allclose(s[live], qmax / amax[live], rtol=1e-5):
        return f"scale is inverted: it is real units per integer step, max|x| / {qmax}"
    return None


def _pt_scale(a):
    return compare_arrays(np.asarray(a.got[1]), a.expected[1], "scale", rtol=1e-6, atol=0)


def _pt_q_dtype(a):
    q = a.got[0]
    X, bits = a.args
    if q.dtype.kind == "f" and _close(q, a.expected[0].astype(np.float64) * a.expected[1][:, None]):
        return "you returned q · scale (the dequantized values): return the integer codes q, as int8"
    if q.dtype != np.int8:
        return f"q has dtype {q.dtype}, expected int8 (the codes of a {bits}-bit grid fit in int8)"
    return None


def _pt_near_ties(a):
    """Right too: codes that differ from the reference's by one step only where X / scale lies within 1e-4 of a
    half-integer without being one (float32 and float64 arithmetic round such values either way)."""
    X, _ = a.args
    v = X.astype(np.float64) / a.expected[1].astype(np.float64)[:, None]
    off = np.abs(np.abs(v - np.floor(v)) - 0.5)
    diff = a.got[0].astype(np.int64) - a.expected[0].astype(np.int64)
    near = (off < 1e-4) & (off > 0)
    return _ACCEPT if np.all((diff == 0) | ((np.abs(diff) == 1) & near)) else None


def _pt_rounding(a):
    X, bits = a.args
    qmax = 2 ** (bits - 1) - 1
    v = X.astype(np.float64) / a.expected[1].astype(np.float64)[:, None]
    q = a.got[0].astype(np.int64)
    for codes, hint in (
        (
            np.floor(v + 0.5),
            "you rounded halves up (floor(v + 0.5)): round half to even with np.rint (2.5 → 2, -0.5 → 0)",
        ),
        (np.round(v + 1e-9 * np.sign(v)), "you rounded halves away from 0: round half to even with np.rint (2.5 → 2)"),
        (np.trunc(v), "you truncated toward 0 (astype(int) on floats): round to the nearest integer with np.rint"),
        (np.floor(v), "you rounded down (np.floor): round to the nearest integer with np.rint"),
    ):
        if np.array_equal(q, np.clip(codes, -qmax, qmax)):
            return hint
    return None


def _pt_codes(a):
    return compare_arrays(a.got[0], a.expected[0], "q", exact=True)


_pt_compare = _detectors(
    _pt_tuple,
    _pt_scale_shape,
    _pt_q_shape,
    _equal,
    _pt_zero_row,
    _pt_divisor,
    _pt_scale,
    _pt_q_dtype,
    _pt_near_ties,
    _pt_rounding,
    _pt_codes,
)


def _pt_fixed():
    ties = np.array(
        [
            [127.0, 2.5, -0.5, 1.5, -3.5, 0.7, 100.25],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [-63.5, 12.7, 0.05, -0.25, 31.75, 1.0, -2.5],
        ]
    )  # rows 0 and 2 have scale 1 and 0.5: exact halves
    return [Case((ties, 8), label="exact halves (2.5, -0.5, ...) and an all-zero row, 8 bits")]


def _pt_cases(rng):
    cases = []
    for t, d, bits in [(5, 8, 8), (6, 4, 4), (3, 16, 8)]:
        X = rng.standard_normal((t, d)) * rng.uniform(0.1, 5.0, (t, 1))
        X[:, rng.integers(d)] *= 20.0  # an outlier channel
        cases.append(Case((X, bits), label=f"{t} tokens of {d} features, {bits} bits"))
    return cases


per_token_quantize = Exercise(
    "per_token_quantize",
    reference_per_token_quantize,
    fixed_cases=_pt_fixed(),
    cases=_pt_cases,
    compare=_pt_compare,
    pass_line="per_token_quantize: per-token scales and int8 codes (round half to even) correct on 4 cases",
)


# --- Exercise 5: the fast Walsh–Hadamard transform ---------------------------------------------------


def reference_fast_hadamard(x):
    """``x Hᵀ`` along the last axis with the orthonormal Sylvester–Hadamard matrix (``labkit.quant.fwht``)."""
    return fwht(np.asarray(x, np.float64))


def _butterflies(x, sign=1.0, norm="sqrt"):
    """The unnormalised transform along the last axis, with the butterfly's sign and a normalisation."""
    y = np.asarray(x, np.float64).copy()
    n = y.shape[-1]
    h = 1
    while h < n:
        y = y.reshape(*y.shape[:-1], n // (2 * h), 2, h)
        a, b = y[..., 0, :].copy(), y[..., 1, :].copy()
        y = np.stack([a + b, sign * (a - b)], axis=-2).reshape(*x.shape)
        h *= 2
    return y / {"sqrt": np.sqrt(n), "none": 1.0, "n": float(n)}[norm]


def _fh_shape(a):
    (x,) = a.args
    return _array(a.got, "the result", x.shape, "the shape of x: the transform acts along the last axis")


def _fh_unnormalised(a):
    (x,) = a.args
    if x.shape[-1] > 1 and _close(a.got, _butterflies(x, norm="none")):
        return (
            f"the result is √n = {_num(np.sqrt(x.shape[-1]))} times too large: divide by √n (orthonormal H, norms kept)"
        )
    return None


def _fh_by_n(a):
    (x,) = a.args
    if x.shape[-1] > 1 and _close(a.got, _butterflies(x, norm="n")):
        return "you divided by n; the orthonormal transform divides by √n (then fwht(fwht(x)) = x)"
    return None


def _fh_axis0(a):
    (x,) = a.args
    if x.ndim == 2 and x.shape[0] > 1 and x.shape[0] & (x.shape[0] - 1) == 0:
        if _close(a.got, _butterflies(x.T).T):
            return "you transformed along axis 0 (the rows' index); transform each row, along the last axis"
    return None


def _fh_sign(a):
    (x,) = a.args
    if x.shape[-1] > 1 and _close(a.got, _butterflies(x, sign=-1.0)):
        return "the butterfly is (a, b) → (a + b, a − b); yours gives b − a in the second half"
    return None


def _fh_values(a):
    return compare_arrays(a.got, a.expected, "the result", rtol=1e-6, atol=1e-9)


def _fh_cases(rng):
    return [
        Case((rng.standard_normal((3, 16)),), label="3 rows of 16"),
        Case((rng.standard_normal(64),), label="one vector of 64"),
        Case((rng.standard_normal((4, 32)) + 5.0,), label="4 rows of 32 with mean 5"),
    ]


fast_hadamard = Exercise(
    "fast_hadamard",
    reference_fast_hadamard,
    fixed_cases=[
        Case((np.array([1.0, 0, 0, 0, 0, 0, 0, 0]),), label="the first unit vector of 8 (→ all 1/√8)"),
        Case((np.array([[1.0, 2.0], [3.0, -1.0]]),), label="2 rows of 2"),
        Case((np.arange(16.0).reshape(4, 4),), label="4 rows of 4"),
    ],
    cases=_fh_cases,
    compare=_detectors(_fh_shape, _equal, _fh_unnormalised, _fh_by_n, _fh_axis0, _fh_sign, _fh_values),
    pass_line="fast_hadamard: x Hᵀ (orthonormal, along the last axis) correct on 6 inputs",
)
