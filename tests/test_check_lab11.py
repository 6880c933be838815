"""Lab 11's checks: the references and a learner's right answers pass on many seeds, the stub fails, and each
plausible wrong answer fails with its own hint. The last test proves every hint detector is reached by this
battery (a detector that another one shadows would show up there)."""

import re

import numpy as np
import pytest

from labkit import nn, quant
from labkit.check import lab11

EXERCISES = [
    lab11.causal_attention_head,
    lab11.layernorm_backward,
    lab11.smoothquant_fold,
    lab11.per_token_quantize,
    lab11.fast_hadamard,
]


def stub(*args, **kwargs):
    raise NotImplementedError()


# --- what a learner writes ----------------------------------------------------------------------------


def attention_right(q, k, v):
    t, d = q.shape
    s = q @ k.T / np.sqrt(d)
    s[np.triu_indices(t, 1)] = -np.inf
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    return (p / p.sum(axis=1, keepdims=True)) @ v


def layernorm_right(dy, x, gamma, eps):
    mu = x.mean(axis=-1, keepdims=True)
    r = 1 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    xhat = (x - mu) * r
    g = dy * gamma
    dx = r * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def smoothquant_right(x_absmax, gamma, beta, W, alpha):
    w = np.abs(W).max(axis=0)
    s = np.ones_like(x_absmax)
    live = (x_absmax > 0) & (w > 0)
    s[live] = x_absmax[live] ** alpha / w[live] ** (1 - alpha)
    return s, gamma / s, beta / s, W * s


def per_token_right(X, bits):
    qmax = 2 ** (bits - 1) - 1
    amax = np.abs(X).max(axis=1)
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    q = np.clip(np.rint(X / scale[:, None]), -qmax, qmax).astype(np.int8)
    return q, scale


def per_token_float32(X, bits):
    """Everything in float32: the division rounds differently only next to a tie."""
    qmax = 2 ** (bits - 1) - 1
    X32 = X.astype(np.float32)
    amax = np.abs(X32).max(axis=1)
    scale = np.where(amax > 0, amax / np.float32(qmax), np.float32(1))
    return np.clip(np.rint(X32 / scale[:, None]), -qmax, qmax).astype(np.int8), scale


def hadamard_right(x):
    y = np.array(x, dtype=np.float64)
    n = y.shape[-1]
    h = 1
    while h < n:
        for i in range(0, n, 2 * h):
            a, b = y[..., i : i + h].copy(), y[..., i + h : i + 2 * h].copy()
            y[..., i : i + h], y[..., i + h : i + 2 * h] = a + b, a - b
        h *= 2
    return y / np.sqrt(n)


RIGHT = {
    "causal_attention_head": [attention_right],
    "layernorm_backward": [layernorm_right],
    "smoothquant_fold": [smoothquant_right],
    "per_token_quantize": [per_token_right, per_token_float32],
    "fast_hadamard": [hadamard_right, lambda x: x @ quant.hadamard(x.shape[-1]).T],
}


@pytest.mark.parametrize("ex", EXERCISES, ids=[e.answer_id for e in EXERCISES])
def test_references_and_right_answers_pass_many_seeds_and_the_stub_fails(ex):
    assert ex.passes(ex.reference)
    for fn in RIGHT[ex.answer_id]:
        assert ex.passes(fn), ex.verdict(fn)
    for seed in range(40):
        cases = ex.grading_cases(seed)
        assert ex.evaluate(ex.reference, cases) is None, seed
        for fn in RIGHT[ex.answer_id]:
            assert ex.evaluate(fn, cases) is None, (seed, fn.__name__)
    assert "not implemented" in ex.verdict(stub)
    assert "expected a function" in ex.verdict(None)


def test_references_agree_with_the_library_the_lab_uses():
    rng = np.random.default_rng(0)
    ln = nn.LayerNorm(6, dtype=np.float64)
    ln.gamma = rng.standard_normal(6)
    x, dy = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    ln.forward(x)
    dx = ln.backward(dy)
    np.testing.assert_allclose(lab11.reference_layernorm_backward(dy, x, ln.gamma, 1e-5)[0], dx)
    X = rng.standard_normal((4, 8))
    np.testing.assert_array_equal(lab11.reference_per_token_quantize(X, 8)[0], quant.quantize_per_token(X, 8).q)
    np.testing.assert_allclose(lab11.reference_fast_hadamard(X), X @ quant.hadamard(8).T, atol=1e-12)


# --- the battery: (exercise, wrong answer, a piece of its hint) -----------------------------------------


def _attn(mask="causal", scale=None, axis=1, when="before", stable=True, out="y"):
    def fn(q, k, v):
        t, d = q.shape
        s = q @ k.T / (np.sqrt(d) if scale is None else scale(d))
        future = np.triu(np.ones((t, t), bool), 1)
        hidden = {
            "causal": future,
            "none": np.zeros_like(future),
            "past": future.T,
            "strict": np.triu(np.ones((t, t), bool)),
        }[mask]
        if when == "before":
            s = np.where(hidden, -np.inf, s)
        elif when == "zero":
            s = np.where(hidden, 0.0, s)
        if stable:
            s = s - s.max(axis=axis, keepdims=True)
        with np.errstate(all="ignore"):
            p = np.exp(s)
            p = p / p.sum(axis=axis, keepdims=True)
        if when == "after":
            p = np.where(hidden, 0.0, p)
        return p if out == "p" else p @ v

    return fn


ATTENTION = [
    (_attn(out="p"), "attention probabilities P"),
    (lambda q, k, v: list(attention_right(q, k, v)), "must be a numpy array"),
    (lambda q, k, v: attention_right(q, k, v).T, "has shape"),
    (_attn(mask="strict"), "query 0 has no key"),
    (_attn(stable=False), "exp overflows"),
    (_attn(mask="none"), "also reads later positions"),
    (_attn(mask="past"), "hid the past"),
    (_attn(scale=lambda d: 1.0), "divide the scores by √d"),
    (_attn(scale=lambda d: float(d)), "divided the scores by d"),
    (_attn(axis=0), "over the keys of each query"),
    (_attn(when="after"), "rows no longer sum to 1"),
    (_attn(when="zero"), "exp(0) = 1"),
    (lambda q, k, v: attention_right(q, k, v) * 1.01, "the output is off"),
]


def _ln(**change):
    def fn(dy, x, gamma, eps):
        ddof, eps_out, axis = change.get("ddof", 0), change.get("eps_outside", False), change.get("axis", -1)
        mu = x.mean(axis=axis, keepdims=True)
        sd = x.std(axis=axis, ddof=ddof, keepdims=True)
        r = 1 / (sd + eps) if eps_out else 1 / np.sqrt(sd**2 + eps)
        xhat = (x - mu) * r
        g = dy if change.get("no_gamma") else dy * gamma
        mg, mgx = g.mean(axis=axis, keepdims=True), (g * xhat).mean(axis=axis, keepdims=True)
        kind = change.get("dx", "full")
        dx = {
            "full": r * (g - mg - xhat * mgx),
            "constant": r * g,
            "no_mean": r * (g - xhat * mgx),
            "no_var": r * (g - mg),
        }[kind]
        dgamma = (dy * (x if change.get("dgamma_x") else xhat)).sum(axis=0)
        dbeta = dy.sum(axis=0)
        if change.get("swap"):
            dgamma, dbeta = dbeta, dgamma
        if change.get("no_sum"):
            dgamma = dy * xhat
        if change.get("dgamma_off"):
            dgamma = dgamma * 1.1
        if change.get("dbeta_off"):
            dbeta = dy.mean(axis=0)
        if change.get("dx_off"):
            dx = dx * 1.1
        return dx, dgamma, dbeta

    return fn


LAYERNORM = [
    (lambda dy, x, gamma, eps: layernorm_right(dy, x, gamma, eps)[0], "return a tuple of 3 arrays"),
    (lambda dy, x, gamma, eps: layernorm_right(dy, x, gamma, eps)[:2], "return a tuple of 3 arrays"),
    (_ln(no_sum=True), "sum over the rows"),
    (_ln(swap=True), "swapped"),
    (_ln(ddof=1), "biased variance"),
    (_ln(eps_outside=True), "eps goes inside the square root"),
    (_ln(axis=0), "normalise each row"),
    (_ln(dgamma_x=True), "not the raw x"),
    (_ln(dgamma_off=True), "dgamma is off"),
    (_ln(dbeta_off=True), "dbeta is off"),
    (_ln(dx="constant"), "treats μ and σ as constants"),
    (_ln(dx="no_mean"), "misses the mean's term"),
    (_ln(dx="no_var"), "misses the variance's term"),
    (_ln(no_gamma=True), "multiply by gamma"),
    (_ln(dx_off=True), "dx is off"),
]


def _sq(**change):
    def fn(x_absmax, gamma, beta, W, alpha):
        Wm = W if change.get("signed") else np.abs(W)
        w = Wm.max(axis=1 if change.get("rows") else 0)
        a = x_absmax if not change.get("rows") else np.resize(x_absmax, w.shape)
        ea, ew = (1 - alpha, alpha) if change.get("swap") else (alpha, 1 - alpha)
        with np.errstate(all="ignore"):
            s = a**ea * w**ew if change.get("multiply") else a**ea / w**ew
        if not change.get("no_guard"):
            s = np.where((a > 0) & (np.abs(W).max(axis=1 if change.get("rows") else 0) > 0), s, 1.0)
        if change.get("rows"):
            return s, gamma, beta, W
        if change.get("s_off"):
            s = s * 1.1
        g = gamma * s if change.get("gamma_times") else gamma / s
        b = beta if change.get("beta_kept") else beta / s
        Wn = W / s if change.get("w_divided") else W * s
        if change.get("w_off"):
            Wn = Wn * 1.1
        return s, g, b, Wn

    return fn


SMOOTHQUANT = [
    (lambda *args: smoothquant_right(*args)[:3], "return a tuple of 4 arrays"),
    (_sq(rows=True), "one per output row of W"),
    (lambda *args: (smoothquant_right(*args)[0].tolist(), *smoothquant_right(*args)[1:]), "s must be a numpy array"),
    (_sq(no_guard=True), "give them s_j = 1"),
    (_sq(swap=True), "exponents are swapped"),
    (_sq(signed=True), "take np.abs(W)"),
    (_sq(multiply=True), "divide by max|W_j|^(1−α)"),
    (_sq(s_off=True), "s is off"),
    (_sq(gamma_times=True), "γ ← γ / s"),
    (_sq(beta_kept=True), "β must be divided by s too"),
    (_sq(w_divided=True), "must multiply them"),
    (_sq(w_off=True), "W_new is off"),
]


def _pt(div=None, rounding=np.rint, scale_kind="row", guard=True, dtype=np.int8, out="q"):
    def fn(X, bits):
        qmax = 2 ** (bits - 1) - 1
        d = qmax if div is None else div(bits)
        if scale_kind == "tensor":
            amax = np.abs(X).max()
        elif scale_kind == "channel":
            amax = np.abs(X).max(axis=0)
        else:
            amax = np.abs(X).max(axis=1)
        scale = np.where(amax > 0, amax / d, 1.0) if guard else amax / d
        if scale_kind == "off":
            scale = np.where(amax > 0, scale * 1.001, 1.0)
        if scale_kind == "inverted":
            scale = np.where(amax > 0, qmax / np.where(amax > 0, amax, 1), 1.0)
        sc = scale if scale_kind == "tensor" else (scale[None, :] if scale_kind == "channel" else scale[:, None])
        with np.errstate(all="ignore"):
            q = np.clip(rounding(X / sc), -qmax, qmax)
        if out == "xhat":
            return (q * sc).astype(np.float32), scale
        return np.nan_to_num(q).astype(dtype), scale

    return fn


PER_TOKEN = [
    (lambda X, bits: per_token_right(X, bits)[0], "return a tuple of 2 arrays"),
    (_pt(scale_kind="tensor"), "scale is one number (per tensor)"),
    (_pt(scale_kind="channel"), "one per column (channel)"),
    (lambda X, bits: (per_token_right(X, bits)[0], per_token_right(X, bits)[1][:-1]), "scale has shape"),
    (lambda X, bits: (per_token_right(X, bits)[0][:, :-1], per_token_right(X, bits)[1]), "q has shape"),
    (_pt(guard=False), "is all zeros: give it scale 1"),
    (_pt(div=lambda b: 2 ** (b - 1)), "2^(bits−1) = 128"),
    (_pt(div=lambda b: 2**b - 1), "2^bits − 1 = 255"),
    (_pt(div=lambda b: 1), "the size of one integer step"),
    (_pt(div=lambda b: 127), "127 whatever the bits"),
    (_pt(scale_kind="inverted"), "scale is inverted"),
    (
        lambda X, bits: (per_token_right(X, bits)[0], per_token_right(X, bits)[1] * np.where(X.any(axis=1), 1.001, 1)),
        "scale is off",
    ),
    (_pt(out="xhat"), "return the integer codes q"),
    (_pt(dtype=np.int64), "q has dtype int64"),
    (_pt(rounding=lambda v: np.floor(v + 0.5)), "rounded halves up"),
    (_pt(rounding=lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)), "away from 0"),
    (_pt(rounding=np.trunc), "truncated toward 0"),
    (_pt(rounding=np.floor), "rounded down"),
    (_pt(rounding=lambda v: np.rint(v) + (np.abs(v) > 100)), "q differs in"),
]


def _fh(norm="sqrt", sign=1.0, axis=-1):
    def fn(x):
        x = np.asarray(x, np.float64)
        y = np.moveaxis(x, axis, -1).copy()
        n = y.shape[-1]
        h = 1
        while h < n:
            for i in range(0, n, 2 * h):
                a, b = y[..., i : i + h].copy(), y[..., i + h : i + 2 * h].copy()
                y[..., i : i + h], y[..., i + h : i + 2 * h] = a + b, sign * (a - b)
            h *= 2
        y = y / {"sqrt": np.sqrt(n), "none": 1.0, "n": float(n)}[norm]
        return np.moveaxis(y, -1, axis)

    return fn


HADAMARD = [
    (lambda x: hadamard_right(x).ravel(), "has shape"),
    (lambda x: hadamard_right(x).tolist(), "must be a numpy array"),
    (_fh(norm="none"), "times too large"),
    (_fh(norm="n"), "you divided by n"),
    (_fh(axis=0), "along axis 0"),
    (_fh(sign=-1.0), "the butterfly is (a, b) → (a + b, a − b)"),
    (lambda x: hadamard_right(x)[..., ::-1].copy(), "the result is off"),
]

BATTERY = (
    [(lab11.causal_attention_head, fn, hint) for fn, hint in ATTENTION]
    + [(lab11.layernorm_backward, fn, hint) for fn, hint in LAYERNORM]
    + [(lab11.smoothquant_fold, fn, hint) for fn, hint in SMOOTHQUANT]
    + [(lab11.per_token_quantize, fn, hint) for fn, hint in PER_TOKEN]
    + [(lab11.fast_hadamard, fn, hint) for fn, hint in HADAMARD]
)


@pytest.mark.parametrize("ex, fn, hint", BATTERY, ids=[f"{e.answer_id}-{h[:30]}" for e, _, h in BATTERY])
def test_wrong_answers_get_their_own_hint(ex, fn, hint):
    line = ex.verdict(fn)
    assert line.startswith("FAIL: ") and hint in line, line
    assert not re.search(r"np\.(?:u?int|float|bool)\w*\(", line), line  # numbers print plainly


def _detector_of(ex, fn):
    """The name of the detector that rejects ``fn`` on its first failing case (None if it passes)."""
    for case in ex.cases():
        expected = ex.reference(*case.copy().args, **case.copy().kwargs)
        try:
            with np.errstate(all="ignore"):
                got = fn(*case.copy().args)
        except Exception:  # noqa: BLE001 - a raising answer is not a detector's
            return "raised"
        a = lab11._Answer(got, expected, case)
        for d in ex.compare.detectors:
            with np.errstate(all="ignore"):
                h = d(a)
            if h is lab11._ACCEPT:
                break
            if h is not None:
                return d.__name__
    return None


def test_every_hint_detector_is_reached_by_the_battery():
    reached = {ex.answer_id: set() for ex in EXERCISES}
    for ex, fn, _ in BATTERY:
        reached[ex.answer_id].add(_detector_of(ex, fn))
    for ex in EXERCISES:
        names = {d.__name__ for d in ex.compare.detectors} - {"_equal", "_pt_near_ties"}
        assert names <= reached[ex.answer_id], (ex.answer_id, sorted(names - reached[ex.answer_id]))


def test_exact_halves_are_held_to_half_even_but_near_ties_accept_either_neighbour():
    ex = lab11.per_token_quantize
    X = np.array([[127.0, 2.5, -0.5, 0.0]])
    q, _ = ex.reference(X, 8)
    assert q.tolist() == [[127, 2, 0, 0]]
    near = np.array([[63.5, 1.25 + 1e-6, 0.5, 0.0]])  # scale 0.5; 2.500002 rounds to 3, either neighbour accepted
    q_ref, s = ex.reference(near, 8)
    alt = q_ref.copy()
    alt[0, 1] = 2
    assert ex.compare((alt, s), (q_ref, s), lab11.Case((near, 8))) is None
    far = q_ref.copy()
    far[0, 2] = 2
    assert "q differs" in ex.compare((far, s), (q_ref, s), lab11.Case((near, 8)))
