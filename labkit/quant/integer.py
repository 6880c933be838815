"""Integer-only inference (Jacob et al. 2018): int8 weights, 8-bit activations, int32 accumulators.

A layer ``y = W x + b`` with real values written through their quantized forms
``x = s_x (q_x - z_x)``, ``W = s_W q_W`` (symmetric, per output channel c), ``y = s_y (q_y - z_y)``
becomes, per output channel c (Jacob et al. 2018, eq. 4–9):

    acc_c = sum_k (q_x[k] - z_x) q_W[c, k] + q_b[c]              (int32; q_b = round(b / (s_x s_W[c])))
    q_y[c] = clamp(z_y + round(M_c · acc_c), qmin, qmax),        M_c = s_x s_W[c] / s_y

The real multiplier ``M_c`` is the only non-integer; it is stored as ``M_c = 2^(-n) · M0`` with
``M0 ∈ [0.5, 1)`` held as the int32 ``round(M0 · 2^31)``. Two integer forms of ``round(M_c · acc)``
are offered, named by ``rounding=``; the arithmetic itself lives in :mod:`labkit.qarith`
(:func:`~labkit.qarith.quantize_multiplier`, :func:`~labkit.qarith.requantize`), shared with the kernels:

* ``"single"`` (the default): the 64-bit product ``acc · M0_int`` followed by one rounding right
  shift by ``31 + n`` bits, ties to even like every other rounding in labkit. This is the exact
  nearest integer to ``acc · M0_int / 2^(31+n)``.
* ``"gemmlowp"``: the reference arithmetic of Jacob et al. 2018 (gemmlowp, and TFLite's
  ``MultiplyByQuantizedMultiplier``): a *saturating rounding doubling high multiply*
  ``SRDHM(acc, M0_int)`` = the int32 nearest to ``acc · M0_int / 2^31`` (ties toward +∞, as the
  nudge ``2^30`` or ``1 - 2^30`` makes them; the one overflow, ``INT32_MIN · INT32_MIN``, saturates
  to ``INT32_MAX``), then a *rounding divide by a power of two* by ``n`` bits, ties away from
  zero. It rounds twice, so it can differ from ``"single"`` by one step — at ties, and where the
  first rounding pushes a value over a half. A ReLU that follows the layer is fused as a clamp at the
zero point (real 0). Max pooling commutes with the monotonic quantization and runs on the
integers as is; convolution pads with the zero point, which is real 0.

``quantize_model`` calibrates the activation ranges on training data with the float model and
returns an ``IntegerModel``; ``simulate_float64`` recomputes the same integer arithmetic in float64
(exact for these sizes) and is the oracle the engine must match bit for bit.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..qarith import ROUNDINGS, int_range, quantize_multiplier, requantize, round_clamp
from ..validation import check_bits, check_choice
from .affine import qparams, quantize

__all__ = [
    "integer_dense",
    "IntDense",
    "IntConv2d",
    "IntegerModel",
    "quantize_model",
    "simulate_float64",
    "int8_engine_bytes",
]


def integer_dense(q_x, z_x: int, q_W, q_b, M0, n, z_y: int, relu: bool = False, bits: int = 8, signed: bool = False):
    """One integer-only Dense layer (Jacob et al. 2018, eq. 7–9).

    Parameters
    ----------
    q_x : uint8/int8 array (batch, in)
    z_x : int, input zero point
    q_W : int8 array (out, in), symmetric per-channel weights (zero point 0)
    q_b : int32 array (out,), bias in units of ``s_x · s_W[c]``
    M0, n : int32 arrays (out,), the fixed-point multipliers ``s_x s_W[c] / s_y``
    z_y : int, output zero point; ``bits``/``signed`` give the output type
    relu : bool, fused ReLU

    Returns
    -------
    q_y : uint8/int8 array (batch, out)
    """
    acc = (q_x.astype(np.int32) - np.int32(z_x)) @ q_W.T.astype(np.int32) + q_b.astype(np.int32)
    return requantize(acc, M0, n, z_y, bits, signed, relu)


# --- the engine's layers ---------------------------------------------------------------------------
class IntDense:
    """An integer Dense layer. ``bias`` already folds in ``-z_x · sum_k q_W[c, k]`` (Jacob eq. 8)."""

    def __init__(self, name, q_W, q_b, M0, n, z_x, z_y, relu, bits, signed, rounding="single"):
        self.name, self.q_W, self.q_b, self.M0 = name, q_W, q_b, M0
        self.rounding = rounding
        self.shift = n.astype(np.int8)
        self.z_x, self.z_y, self.relu, self.bits, self.signed = int(z_x), int(z_y), bool(relu), bits, signed
        self.bias = (q_b.astype(np.int64) - self.z_x * q_W.astype(np.int64).sum(axis=1)).astype(np.int32)

    def accumulate(self, q):
        """int32 accumulators (batch, out): ``q_x @ q_W.T + bias`` (zero point folded into bias)."""
        return q.astype(np.int32) @ self.q_W.T.astype(np.int32) + self.bias

    def accumulate_f64(self, q):
        return (q.astype(np.float64) - self.z_x) @ self.q_W.T.astype(np.float64) + self.q_b.astype(np.float64)

    def forward(self, q):
        return requantize(self.accumulate(q), self.M0, self.shift, self.z_y, self.bits, self.signed, self.relu,
                          rounding=self.rounding)  # fmt: skip

    def forward_kernels(self, q):
        """:meth:`forward` by the compiled ``labkit.kernels.gemm_int8_requant``: the same integers, faster."""
        from .. import kernels  # numba is imported only when a kernel is asked for

        if self.rounding != "single":
            raise ValueError(f"the kernels requantize with rounding 'single'; layer {self.name} uses {self.rounding!r}")
        q = np.ascontiguousarray(q)
        return kernels.gemm_int8_requant(
            q, self.q_W, self.q_b, self.M0, self.shift, self.z_y, a_zero_point=self.z_x, bits=self.bits,
            signed=self.signed, relu=self.relu,
        )  # fmt: skip

    def arrays(self):
        zp_dtype = np.int8 if self.signed else np.uint8
        return {"W": self.q_W, "bias": self.bias, "M0": self.M0, "shift": self.shift,
                "z_x": np.array(self.z_x, zp_dtype), "z_y": np.array(self.z_y, zp_dtype)}  # fmt: skip


class IntConv2d(IntDense):
    """An integer convolution: im2col of the integer input padded with its zero point, then IntDense."""

    def __init__(self, name, q_W, q_b, M0, n, z_x, z_y, relu, bits, signed, kernel_size, stride, padding,
                 rounding="single"):  # fmt: skip
        super().__init__(name, q_W.reshape(q_W.shape[0], -1), q_b, M0, n, z_x, z_y, relu, bits, signed, rounding)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def _cols(self, q):
        k, s, p = self.kernel_size, self.stride, self.padding
        if p:
            q = np.pad(q, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.z_x)  # pad with real 0
        n, c, h, w = q.shape
        ho, wo = (h - k) // s + 1, (w - k) // s + 1
        win = np.lib.stride_tricks.sliding_window_view(q, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k), (n, ho, wo)

    def _to_nchw(self, flat, shape):
        n, ho, wo = shape
        return flat.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)

    def forward(self, q):
        cols, shape = self._cols(q)
        return self._to_nchw(super().forward(cols), shape)

    def forward_kernels(self, q):
        cols, shape = self._cols(q)
        return self._to_nchw(super().forward_kernels(cols), shape)

    def accumulate_f64_nchw(self, q):
        cols, shape = self._cols(q)
        return self._to_nchw(self.accumulate_f64(cols), shape)


def _max_pool(q, k):
    n, c, h, w = q.shape
    return q.reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))


class IntegerModel:
    """An integer-only network built by :func:`quantize_model`.

    The float input is quantized once (``input_scale``, ``input_zero_point``); every layer after
    that computes on integers; the output is the quantized logits (``predict_int``), which
    ``predict_logits`` dequantizes and ``predict`` reduces to class indices (argmax of the integer
    logits).

    Attributes
    ----------
    ops : list of (kind, object) with kind in {"dense", "conv", "maxpool", "reshape", "flatten", "relu"}
    input_scale, input_zero_point, output_scale, output_zero_point
    bits, signed : activation type
    """

    def __init__(self, ops, input_qp, output_qp, bits, signed, weight_bits):
        self.ops = ops
        self.input_scale, self.input_zero_point = np.float32(input_qp[0]), int(input_qp[1])
        self.output_scale, self.output_zero_point = np.float32(output_qp[0]), int(output_qp[1])
        self.bits, self.signed, self.weight_bits = bits, signed, weight_bits

    def quantize_input(self, X):
        X = np.asarray(X, dtype=np.float32)
        return quantize(X, self.input_scale, self.input_zero_point, self.bits, self.signed)

    def _run(self, q, backend="numpy"):
        for kind, op in self.ops:
            if kind in ("dense", "conv"):
                if backend == "float64":
                    acc = op.accumulate_f64_nchw(q) if kind == "conv" else op.accumulate_f64(q)
                    q = _requantize_f64(acc, op, 1 if kind == "conv" else -1)
                elif backend == "kernels":
                    q = op.forward_kernels(q)
                else:
                    q = op.forward(q)
            elif kind == "maxpool":
                q = _max_pool(q, op)
            elif kind == "reshape":
                q = q.reshape((q.shape[0], *op))
            elif kind == "flatten":
                q = q.reshape(q.shape[0], -1)
            elif kind == "relu":
                q = np.maximum(q, q.dtype.type(op))
        return q

    def predict_int(self, X, batch_size: int = 256, backend: str = "numpy"):
        """Quantized logits, shape (n, n_classes), int8/uint8; integer arithmetic only after the input.

        ``backend="numpy"`` runs each Dense/conv layer as readable numpy (int32 matrix products, no
        BLAS: slow); ``"kernels"`` runs the same arithmetic through the compiled
        ``labkit.kernels.gemm_int8_requant`` (rounding "single" only) and gives the same integers.
        """
        backend = check_choice("backend", backend, ("numpy", "kernels"))
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"expected a non-empty batch of flat inputs (n, features), got shape {X.shape}")
        batches = (X[i : i + batch_size] for i in range(0, len(X), batch_size))
        return np.concatenate([self._run(self.quantize_input(xb), backend) for xb in batches])

    def predict_logits(self, X, batch_size: int = 256):
        """Dequantized logits, float32 (n, n_classes)."""
        q = self.predict_int(X, batch_size).astype(np.int32)
        return (self.output_scale * (q - self.output_zero_point)).astype(np.float32)

    def predict(self, X, batch_size: int = 256):
        """Class indices: argmax of the integer logits (the first of equal maxima)."""
        return self.predict_int(X, batch_size).argmax(axis=1)

    @property
    def rounding(self) -> str:
        """The requantization rounding of every layer: "single" or "gemmlowp" (see :func:`requantize`)."""
        kinds = {op.rounding for kind, op in self.ops if kind in ("dense", "conv")}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def with_rounding(self, rounding: str) -> IntegerModel:
        """The same engine (same integers, shared arrays) requantizing with ``rounding``."""
        check_choice("rounding", rounding, ROUNDINGS)
        import copy

        ops = []
        for kind, op in self.ops:
            if kind in ("dense", "conv"):
                op = copy.copy(op)
                op.rounding = rounding
            ops.append((kind, op))
        return IntegerModel(ops, (self.input_scale, self.input_zero_point), (self.output_scale, self.output_zero_point),
                            self.bits, self.signed, self.weight_bits)  # fmt: skip

    def arrays(self) -> dict:
        """Every array the engine needs at run time, by name (what ``nbytes`` counts)."""
        zp_dtype = np.int8 if self.signed else np.uint8
        out = {
            "input.scale": np.array(self.input_scale, np.float32),
            "input.zero_point": np.array(self.input_zero_point, zp_dtype),
            "output.scale": np.array(self.output_scale, np.float32),
            "output.zero_point": np.array(self.output_zero_point, zp_dtype),
        }
        for kind, op in self.ops:
            if kind in ("dense", "conv"):
                out.update({f"{op.name}.{k}": a for k, a in op.arrays().items()})
        return out

    @property
    def nbytes(self) -> int:
        """Exact bytes of the engine's parameters: int8 weights, int32 biases and multipliers,
        int8 shifts, 8-bit zero points, and the float32 input/output scales."""
        return int(sum(a.nbytes for a in self.arrays().values()))

    def __repr__(self):
        rows = [f"IntegerModel(weights int{self.weight_bits} per-channel symmetric, activations "
                f"{'int' if self.signed else 'uint'}{self.bits} per-tensor affine, {self.nbytes} bytes)"]  # fmt: skip
        for kind, op in self.ops:
            if kind in ("dense", "conv"):
                w = tuple(op.q_W.shape)
                rows.append(f"  {op.name:<7} {kind:<5} W {w} relu={op.relu} z_x={op.z_x} z_y={op.z_y}")
            else:
                rows.append(f"  {kind}")
        return "\n".join(rows)


def _requantize_f64(acc, op, channel_axis):
    """The float64 simulation of requantize: rint(acc · M0 · 2^-(31+n)) + z, clamped (exact here)."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    M = (op.M0.astype(np.float64) * np.exp2(-(31.0 + op.shift.astype(np.float64)))).reshape(shape)
    qmin, qmax = int_range(op.bits, op.signed)
    lo = max(qmin, op.z_y) if op.relu else qmin
    return round_clamp(acc * M, lo, qmax, op.z_y)


def simulate_float64(engine: IntegerModel, X, batch_size: int = 1000):
    """The engine's integer arithmetic redone in float64: accumulators by float64 matmul (exact, every
    partial sum is an integer below 2^53) and requantization as ``rint(acc · M) + z`` with the
    same ``M = M0 · 2^-(31+n)``. Returns the quantized logits as int64, (n, n_classes).

    It simulates ``rounding="single"`` (one rounding, ties to even); an engine built with
    ``rounding="gemmlowp"`` may differ from it by one step where the two roundings differ."""
    if not isinstance(engine, IntegerModel):
        raise TypeError(f"expected an IntegerModel from quantize_model, got {type(engine).__name__}")
    X = np.asarray(X)
    outs = []
    for i in range(0, len(X), batch_size):
        q = engine.quantize_input(X[i : i + batch_size]).astype(np.float64)
        outs.append(engine._run(q, backend="float64"))
    return np.concatenate(outs).astype(np.int64)


# --- building the engine from a float model ---------------------------------------------------------
def _calibrate(layers, X):
    """Float forward pass on calibration data; the output of each weight layer (after a fused ReLU)."""
    points, x = [], X
    for i, layer in enumerate(layers):
        x = layer.forward(x, training=False)
        weighted = isinstance(layer, (nn.Dense, nn.Conv2d))
        fused_next = weighted and i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
        if weighted and not fused_next:
            points.append(x)
        elif isinstance(layer, nn.ReLU) and i > 0 and isinstance(layers[i - 1], (nn.Dense, nn.Conv2d)):
            points.append(x)
    return points


def quantize_model(model, bits: int = 8, *, calib, act_bits: int = 8, act_signed: bool = False, method: str = "minmax",
                   per_channel: bool = True, rounding: str = "single"):  # fmt: skip
    """Quantize a float ``labkit.nn.Sequential`` into an integer-only :class:`IntegerModel`.

    Parameters
    ----------
    model : labkit.nn.Sequential of Dense, Conv2d, ReLU, MaxPool2d, Flatten, Reshape (Dropout and
        FakeQuant are the identity at inference)
    bits : int, 2..8
        Weight bits: symmetric, per output channel (``per_channel``) or per tensor, zero point 0,
        narrow range ``±(2^(bits-1) - 1)`` (int8 weights in [-127, 127], as in TFLite).
    calib : ndarray (n, features), float
        Calibration inputs (training data, never the test set) for the activation ranges.
    act_bits : int, 2..8; act_signed : bool
        Activations: per-tensor affine, unsigned (uint8) by default or signed (int8).
    method : {"minmax", "percentile", "mse"}
        Activation range calibration.
    rounding : {"single", "gemmlowp"}
        Requantization arithmetic (see :func:`requantize`); ``"gemmlowp"`` is Jacob et al.'s.

    Returns
    -------
    IntegerModel
    """
    check_choice("rounding", rounding, ROUNDINGS)
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"quantize_model expects a labkit.nn.Sequential, got {type(model).__name__}")
    bits = check_bits(bits, lo=2)
    act_bits = check_bits(act_bits, name="act_bits")
    if bits > 8 or act_bits > 8:
        raise ValueError(
            f"the integer engine holds 8-bit values: bits and act_bits must be <= 8, got {bits}, {act_bits}"
        )
    calib = np.asarray(calib, dtype=np.float32)
    if calib.ndim != 2 or calib.shape[0] == 0:
        raise ValueError(f"calib must be a non-empty (n, features) array of training inputs, got shape {calib.shape}")
    supported = (nn.Dense, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Reshape, nn.Dropout)
    for name, layer in model.named_layers():
        if not isinstance(layer, supported) and type(layer).__name__ != "FakeQuant":
            raise TypeError(f"quantize_model: layer {name} ({type(layer).__name__}) has no integer version")
    identity = lambda layer: isinstance(layer, nn.Dropout) or type(layer).__name__ == "FakeQuant"
    layers = [layer for layer in model.layers if not identity(layer)]
    in_qp = qparams(calib, act_bits, method=method, signed=act_signed)
    point_qps = [qparams(p, act_bits, method=method, signed=act_signed) for p in _calibrate(layers, calib)]

    ops, s_x, z_x, k = [], in_qp[0], in_qp[1], 0
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.Dense, nn.Conv2d)):
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            s_y, z_y = point_qps[k]
            k += 1
            s_w, _ = qparams(layer.W, bits, symmetric=True, per_channel_axis=0 if per_channel else None)
            s_w = np.broadcast_to(np.asarray(s_w, np.float32), (layer.W.shape[0],))
            q_W = quantize(
                layer.W, s_w.reshape(-1), np.zeros(len(s_w), np.int64), bits, True, axis=0, narrow_range=True
            )  # symmetric weights: never -2^(bits-1)
            acc_scale = np.float64(s_x) * s_w.astype(np.float64)
            q_b = np.rint(layer.b.astype(np.float64) / acc_scale)
            if np.any(np.abs(q_b) >= 2**31 - 2**24):
                raise ValueError(f"{layer.name}: the bias does not fit int32 at scale {acc_scale.min():.3g}")
            M0, n = quantize_multiplier(acc_scale / np.float64(s_y))
            args = (layer.name, q_W, q_b.astype(np.int32), M0, n, z_x, z_y,
                    relu, act_bits, act_signed)  # fmt: skip
            if isinstance(layer, nn.Conv2d):
                ops.append(("conv", IntConv2d(*args, layer.kernel_size, layer.stride, layer.padding, rounding)))
            else:
                ops.append(("dense", IntDense(*args, rounding)))
            s_x, z_x = s_y, z_y
        elif isinstance(layer, nn.ReLU):
            if not (i > 0 and isinstance(layers[i - 1], (nn.Dense, nn.Conv2d))):
                ops.append(("relu", z_x))  # a ReLU on its own: clamp at the zero point
        elif isinstance(layer, nn.MaxPool2d):
            ops.append(("maxpool", layer.kernel_size))
        elif isinstance(layer, nn.Reshape):
            ops.append(("reshape", layer.shape))
        elif isinstance(layer, nn.Flatten):
            ops.append(("flatten", None))
    if k == 0:
        raise ValueError("quantize_model: the model has no Dense or Conv2d layer")
    return IntegerModel(ops, in_qp, (s_x, z_x), act_bits, act_signed, bits)


def int8_engine_bytes(engine) -> int:
    """Bytes of an :class:`IntegerModel` as stored for inference (size format ``"int8_engine"``)."""
    if not isinstance(engine, IntegerModel):
        got = type(engine).__name__
        raise TypeError(f"size format 'int8_engine' measures an IntegerModel from quantize_model, got {got}")
    return engine.nbytes
