"""Checks for lab 10 (ONNX export): the initializers of a quantized Dense layer in QDQ form.

The learner writes ``qdq_initializers(W, b, s_x)``: the arrays that the ``DequantizeLinear`` nodes
of one Dense layer read — int8 weights with one float32 scale and one int8 zero point per output
channel (axis 0), and the int32 bias with scale ``s_x · s_W[c]`` and int32 zero points.
"""

import numpy as np

from ..quant import qparams as _qparams
from ..quant import quantize as _quantize
from .exercise import Case, Exercise

KEYS = ("W_q", "W_scale", "W_zero_point", "b_q", "b_scale", "b_zero_point")
DTYPES = {"W_q": np.int8, "W_scale": np.float32, "W_zero_point": np.int8, "b_q": np.int32,
          "b_scale": np.float32, "b_zero_point": np.int32}  # fmt: skip


def _qdq_initializers(W, b, s_x):
    """Symmetric per-output-channel int8 weights (range ±127) and the int32 bias in units of s_x · s_W."""
    s_w, _ = _qparams(W, 8, symmetric=True, per_channel_axis=0)
    c = W.shape[0]
    q_W = _quantize(W, s_w, np.zeros(c, np.int64), 8, signed=True, axis=0)
    b_scale = (np.float64(np.float32(s_x)) * s_w.astype(np.float64)).astype(np.float32)
    q_b = np.rint(b.astype(np.float64) / b_scale.astype(np.float64)).astype(np.int32)
    return {"W_q": q_W, "W_scale": s_w.astype(np.float32), "W_zero_point": np.zeros(c, np.int8), "b_q": q_b,
            "b_scale": b_scale, "b_zero_point": np.zeros(c, np.int32)}  # fmt: skip


def _close(a, b, rtol=1e-6):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=0)


def _compare(got, expected, case):
    W, b, s_x = case.args
    if not isinstance(got, dict):
        return f"return a dict with the keys {', '.join(KEYS)}; got {type(got).__name__}"
    missing = [k for k in KEYS if k not in got]
    if missing:
        return f"the dict lacks {', '.join(missing)} (expected keys: {', '.join(KEYS)})"
    arrays = {}
    for k in KEYS:
        v = got[k]
        if not isinstance(v, (np.ndarray, np.generic)):
            return f"{k} must be a numpy array (ONNX initializers are typed tensors), got {type(v).__name__}"
        arrays[k] = np.asarray(v)
    c, n_in = W.shape
    s_w, e = expected["W_scale"], expected
    g = arrays
    # shapes: per channel means one value per output channel, axis 0 of W (out, in)
    if g["W_scale"].shape != (c,):
        if g["W_scale"].size == 1:
            return (f"W_scale is one number (per-tensor); give one scale per output channel: shape ({c},), "
                    "the DequantizeLinear node's axis=0")  # fmt: skip
        if g["W_scale"].shape == (n_in,):
            return (f"W_scale has shape ({n_in},), one per input: the channels are the outputs, axis 0 of "
                    f"W ({c}, {n_in}); reduce over axis 1")  # fmt: skip
        return f"W_scale has shape {g['W_scale'].shape}, expected ({c},): one scale per output channel"
    for k in ("W_zero_point", "b_scale", "b_zero_point", "b_q"):
        if g[k].shape != (c,):
            return f"{k} has shape {g[k].shape}, expected ({c},): one per output channel"
    if g["W_q"].shape != W.shape:
        return f"W_q has shape {g['W_q'].shape}, expected {W.shape} (the shape of W)"
    # dtypes: ONNX takes the quantized type from the zero point, and the bias must be int32
    for k in KEYS:
        if g[k].dtype != DTYPES[k]:
            why = {
                "W_zero_point": "ONNX reads the type from the zero point: int8 weights need an int8 zero point",
                "b_zero_point": "the bias is int32, so its zero point is int32 too",
                "W_q": "the weights are int8 (symmetric, range ±127)",
                "b_q": "the bias is added to the int32 accumulator: store it as int32 (int8 would overflow)",
                "W_scale": "scales are float32 tensors",
                "b_scale": "scales are float32 tensors",
            }[k]
            return f"{k} has dtype {g[k].dtype}, expected {np.dtype(DTYPES[k])}: {why}"
    if np.any(g["W_zero_point"] != 0) or np.any(g["b_zero_point"] != 0):
        return "symmetric quantization has zero points 0 (real 0 is the integer 0)"
    # values
    amax = np.abs(W).max(axis=1).astype(np.float64)
    if _close(g["W_scale"], 1.0 / s_w.astype(np.float64), 1e-4):
        return "W_scale is inverted: the scale is real units per integer step, max|W[c]| / 127, not 127 / max|W[c]|"
    for d in (128, 255, 127.5):
        if _close(g["W_scale"], amax / d, 1e-5):
            return f"W_scale = max|W[c]| / {d}; symmetric int8 uses ±127: s_W[c] = max|W[c]| / 127"
    if _close(g["W_scale"], np.full(c, np.abs(W).max() / 127), 1e-5) and not _close(s_w, np.full(c, s_w.max())):
        return "W_scale uses the largest |W| of the whole matrix for every channel; use each row's own max|W[c]|"
    if not _close(g["W_scale"], s_w, 1e-6):
        return f"W_scale differs (got {g['W_scale'][:3]}..., expected {s_w[:3]}...): s_W[c] = max|W[c]| / 127"
    if not np.array_equal(g["W_q"], e["W_q"]):
        trunc = np.clip(np.trunc(W / s_w[:, None]), -127, 127).astype(np.int8)
        if np.array_equal(g["W_q"], trunc):
            return "W_q truncates W / s_W; round half to even instead (np.rint)"
        f32 = np.clip(np.rint(W / s_w[:, None]), -127, 127).astype(np.int8)  # float32 quotients
        if np.array_equal(g["W_q"], f32):
            return "W_q is off by one step at a near-tie: divide in float64 (W.astype(np.float64) / s_W[c])"
        bad = int((g["W_q"] != e["W_q"]).sum())
        return f"W_q differs in {bad} of {W.size} entries: W_q = clamp(rint(W / s_W[c]), -127, 127), per row c"
    if _close(g["b_scale"], s_w, 1e-6):
        return "b_scale = s_W[c] forgets the input scale: the accumulator counts units of s_x · s_W[c]"
    if not _close(g["b_scale"], e["b_scale"], 1e-6):
        return f"b_scale differs: it is s_x · s_W[c] (s_x = {float(s_x)!r})"
    if not np.array_equal(g["b_q"], e["b_q"]):
        if np.array_equal(g["b_q"], np.rint(b / s_w).astype(np.int32)):
            return "b_q = rint(b / s_W[c]) forgets s_x: divide by the bias scale s_x · s_W[c]"
        if np.array_equal(g["b_q"], np.rint(b / e["b_scale"]).astype(np.int32)):
            return "b_q divides by the float32 bias scale; divide by the float64 product s_x · s_W[c]"
        bad = int((g["b_q"] != e["b_q"]).sum())
        return f"b_q differs in {bad} of {c} entries: b_q = rint(b / (s_x · s_W[c])) as int32"
    return None


def _cases(rng):
    cases = []
    for n_out, n_in in ((6, 9), (12, 5)):
        W = (rng.standard_normal((n_out, n_in)) * rng.uniform(0.05, 1.0, (n_out, 1))).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.1).astype(np.float32)
        s_x = np.float32(rng.uniform(0.002, 0.02))
        cases.append(Case((W, b, s_x), label=f"W {n_out}×{n_in}, rows of different ranges"))
    return cases


def _fixed():
    W = np.array([[0.5, -1.27, 0.025, 0.25], [0.02, 0.01, -0.005, 0.0], [2.54, 1.0, -0.3, 0.01]], np.float32)
    b = np.array([0.1, -0.002, 0.75], np.float32)
    return [Case((W, b, np.float32(1 / 255)), label="W 3×4 with row ranges 1.27, 0.02, 2.54; s_x = 1/255")]


qdq_initializers = Exercise(
    "qdq_initializers",
    _qdq_initializers,
    fixed_cases=_fixed(),
    cases=_cases,
    compare=_compare,
    pass_line="qdq_initializers: correct on 3 layers (int8 weights, per-channel float32 scales, int32 bias at s_x·s_W)",
)
