"""Checks for lab 10 (ONNX export): the initializers of a quantized Dense layer in QDQ form.

The learner writes ``qdq_initializers(W, b, s_x)``: the arrays that the ``DequantizeLinear`` nodes
of one Dense layer read — int8 weights with one float32 scale and one int8 zero point per output
channel (axis 0), and the int32 bias with scale ``s_x · s_W[c]`` and int32 zero points.
"""

import numpy as np

from ..quant import qparams as _qparams
from ..quant import quantize as _quantize
from .answers import array_problem
from .exercise import Case, Exercise
from .hints import Hints

KEYS = ("W_q", "W_scale", "W_zero_point", "b_q", "b_scale", "b_zero_point")
DTYPES = {
    "W_q": np.int8,
    "W_scale": np.float32,
    "W_zero_point": np.int8,
    "b_q": np.int32,
    "b_scale": np.float32,
    "b_zero_point": np.int32,
}


def _qdq_initializers(W, b, s_x):
    """Symmetric per-output-channel int8 weights (range ±127) and the int32 bias in units of s_x · s_W[c].

    As ``labkit.quant.quantize_model`` builds them: W_q from the float32 scale s_W (the one stored in the
    model), divided in float64; the bias divided by the float64 product of the float32 s_x and s_W.
    """
    s_w, _ = _qparams(W, 8, symmetric=True, axis=0)
    c = W.shape[0]
    q_W = _quantize(W, s_w, np.zeros(c, np.int64), 8, signed=True, axis=0)
    acc_scale = np.float64(np.float32(s_x)) * s_w.astype(np.float64)
    q_b = np.rint(b.astype(np.float64) / acc_scale).astype(np.int32)
    return {
        "W_q": q_W,
        "W_scale": s_w.astype(np.float32),
        "W_zero_point": np.zeros(c, np.int8),
        "b_q": q_b,
        "b_scale": acc_scale.astype(np.float32),
        "b_zero_point": np.zeros(c, np.int32),
    }


def _close(a, b, rtol=1e-6):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=0)


def _not_a_dict(a):
    return (
        None
        if isinstance(a.got, dict)
        else f"return a dict with the keys {', '.join(KEYS)}; got {type(a.got).__name__}"
    )


def _missing_keys(a):
    missing = [k for k in KEYS if k not in a.got]
    return f"the dict lacks {', '.join(missing)} (expected keys: {', '.join(KEYS)})" if missing else None


def _not_arrays(a):
    problems = ((k, array_problem(a.got[k], k, scalars=True)) for k in KEYS)
    k, problem = next(((k, p) for k, p in problems if p), (None, None))
    return f"{problem} (ONNX initializers are typed tensors)" if problem else None


def _g(a, key):
    """The answer's entry ``key`` as an array."""
    return np.asarray(a.got[key])


def _per_tensor_scale(a):
    c = a.args[0].shape[0]
    if _g(a, "W_scale").shape != (c,) and _g(a, "W_scale").size == 1:
        return (
            f"W_scale is one number (per-tensor); give one scale per output channel: shape ({c},), "
            "the DequantizeLinear node's axis=0"
        )
    return None


def _scale_per_input(a):
    c, n_in = a.args[0].shape
    if c != n_in and _g(a, "W_scale").shape == (n_in,):
        return (
            f"W_scale has shape ({n_in},), one per input: the channels are the outputs, axis 0 of "
            f"W ({c}, {n_in}); reduce over axis 1"
        )
    return None


def _per_channel_shapes(a):
    c = a.args[0].shape[0]
    for k in ("W_scale", "W_zero_point", "b_scale", "b_zero_point", "b_q"):
        if _g(a, k).shape != (c,):
            return f"{k} has shape {_g(a, k).shape}, expected ({c},): one per output channel"
    return None


def _weights_shape(a):
    W = a.args[0]
    if _g(a, "W_q").shape != W.shape:
        return f"W_q has shape {_g(a, 'W_q').shape}, expected {W.shape} (the shape of W)"
    return None


#: why each entry has its dtype (the hint when it has another)
WHY_DTYPE = {
    "W_zero_point": "ONNX reads the type from the zero point: int8 weights need an int8 zero point",
    "b_zero_point": "the bias is int32, so its zero point is int32 too",
    "W_q": "the weights are int8 (symmetric, range ±127)",
    "b_q": "the bias is added to the int32 accumulator: store it as int32 (int8 would overflow)",
    "W_scale": "scales are float32 tensors",
    "b_scale": "scales are float32 tensors",
}


def _dtypes(a):
    problems = (array_problem(_g(a, k), k, dtype=DTYPES[k], dtype_note=WHY_DTYPE[k]) for k in KEYS)
    return next((p for p in problems if p), None)


def _zero_points(a):
    if np.any(_g(a, "W_zero_point") != 0) or np.any(_g(a, "b_zero_point") != 0):
        return "symmetric quantization has zero points 0 (real 0 is the integer 0)"
    return None


def _row_max(a):
    return np.abs(a.args[0]).max(axis=1).astype(np.float64)


def _inverted_scale(a):
    if _close(_g(a, "W_scale"), 1.0 / a.expected["W_scale"].astype(np.float64), 1e-4):
        return "W_scale is inverted: the scale is real units per integer step, max|W[c]| / 127, not 127 / max|W[c]|"
    return None


def _wrong_divisor(a):
    for d in (128, 255, 127.5):
        if _close(_g(a, "W_scale"), a.memo(_row_max) / d, 1e-5):
            return f"W_scale = max|W[c]| / {d}; symmetric int8 uses ±127: s_W[c] = max|W[c]| / 127"
    return None


def _matrix_max(a):
    W, s_w = a.args[0], a.expected["W_scale"]
    if _close(_g(a, "W_scale"), np.full(len(s_w), np.abs(W).max() / 127), 1e-5) and not _close(
        s_w, np.full(len(s_w), s_w.max())
    ):
        return "W_scale uses the largest |W| of the whole matrix for every channel; use each row's own max|W[c]|"
    return None


def _wrong_scale(a):
    s_w = a.expected["W_scale"]
    if not _close(_g(a, "W_scale"), s_w, 1e-6):
        return f"W_scale differs (got {_g(a, 'W_scale')[:3]}..., expected {s_w[:3]}...): s_W[c] = max|W[c]| / 127"
    return None


def _weights_from(a, W, s_w, rounding=np.rint) -> bool:
    """W_q equals clamp(rounding(W / s_w[c]), -127, 127) (the division in the dtypes given)."""
    return np.array_equal(_g(a, "W_q"), np.clip(rounding(W / s_w[:, None]), -127, 127).astype(np.int8))


def _weights_differ(detector):
    """``detector``, asked only when W_q differs from the reference's."""

    def wrapped(a):
        return None if np.array_equal(_g(a, "W_q"), a.expected["W_q"]) else detector(a)

    wrapped.__name__ = wrapped.__qualname__ = detector.__name__
    return wrapped


@_weights_differ
def _truncated_weights(a):
    if _weights_from(a, a.args[0], a.expected["W_scale"], np.trunc):
        return "W_q truncates W / s_W; round half to even instead (np.rint)"
    return None


@_weights_differ
def _float32_division(a):
    if _weights_from(a, a.args[0], a.expected["W_scale"]):  # float32 quotients
        return "W_q is off by one step at a near-tie: divide in float64 (W.astype(np.float64) / s_W[c])"
    return None


@_weights_differ
def _unrounded_scale(a):
    """The scale kept in float64, never rounded to the float32 the model stores."""
    W64 = a.args[0].astype(np.float64)
    if _weights_from(a, W64, np.abs(W64).max(axis=1) / 127):
        return (
            "W_q is off by one step at a near-tie: divide by the stored float32 scale, s_W[c] = "
            "float32(max|W[c]| / 127) (the W_scale you return), not by the float64 value before rounding; "
            "do the division itself in float64: W.astype(np.float64) / W_scale.astype(np.float64)[:, None]"
        )
    return None


@_weights_differ
def _wrong_weights(a):
    bad = int((_g(a, "W_q") != a.expected["W_q"]).sum())
    return f"W_q differs in {bad} of {a.args[0].size} entries: W_q = clamp(rint(W / s_W[c]), -127, 127), per row c"


def _bias_scale_without_s_x(a):
    if _close(_g(a, "b_scale"), a.expected["W_scale"], 1e-6):
        return "b_scale = s_W[c] forgets the input scale: the accumulator counts units of s_x · s_W[c]"
    return None


def _wrong_bias_scale(a):
    if not _close(_g(a, "b_scale"), a.expected["b_scale"], 1e-6):
        return f"b_scale differs: it is s_x · s_W[c] (s_x = {float(a.args[2])!r})"
    return None


def _bias_differs(detector):
    """``detector``, asked only when b_q differs from the reference's."""

    def wrapped(a):
        return None if np.array_equal(_g(a, "b_q"), a.expected["b_q"]) else detector(a)

    wrapped.__name__ = wrapped.__qualname__ = detector.__name__
    return wrapped


@_bias_differs
def _bias_without_s_x(a):
    b = a.args[1]
    if np.array_equal(_g(a, "b_q"), np.rint(b / a.expected["W_scale"]).astype(np.int32)):
        return "b_q = rint(b / s_W[c]) forgets s_x: divide by the bias scale s_x · s_W[c]"
    return None


@_bias_differs
def _bias_float32_scale(a):
    b, b_scale = a.args[1], a.expected["b_scale"]
    divided = (np.rint(b / b_scale), np.rint(b.astype(np.float64) / b_scale.astype(np.float64)))
    if any(np.array_equal(_g(a, "b_q"), q.astype(np.int32)) for q in divided):
        return "b_q divides by the float32 bias scale; divide by the float64 product s_x · s_W[c]"
    return None


@_bias_differs
def _wrong_bias(a):
    bad, c = int((_g(a, "b_q") != a.expected["b_q"]).sum()), a.args[0].shape[0]
    return f"b_q differs in {bad} of {c} entries: b_q = rint(b / (s_x · s_W[c])) as int32"


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
    # b[2] / (s_x · s_W[2]) = 6569.4999..., a near-tie: divided by the float32-rounded b_scale it gives 6570
    b = np.array([0.1, -0.002, 0.5152549147605896], np.float32)
    return [Case((W, b, np.float32(1 / 255)), label="W 3×4 with row ranges 1.27, 0.02, 2.54; s_x = 1/255")]


qdq_initializers = Exercise(
    "qdq_initializers",
    _qdq_initializers,
    fixed_cases=_fixed(),
    cases=_cases,
    compare=Hints(
        _not_a_dict,
        _missing_keys,
        _not_arrays,
        _per_tensor_scale,
        _scale_per_input,
        _per_channel_shapes,
        _weights_shape,
        _dtypes,
        _zero_points,
        _inverted_scale,
        _wrong_divisor,
        _matrix_max,
        _wrong_scale,
        _truncated_weights,
        _float32_division,
        _unrounded_scale,
        _wrong_weights,
        _bias_scale_without_s_x,
        _wrong_bias_scale,
        _bias_without_s_x,
        _bias_float32_scale,
        _wrong_bias,
    ),
    pass_line="qdq_initializers: correct on 3 layers (int8 weights, per-channel float32 scales, int32 bias at s_x·s_W)",
)
