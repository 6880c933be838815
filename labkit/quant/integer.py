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

import warnings

import numpy as np

from .. import nn
from ..qarith import ROUNDINGS, int_range, quantize_multiplier, requantize, round_clamp
from ..validation import check_bits, check_choice
from .affine import qparams, quantize
from .fakequant import FakeQuant

__all__ = [
    "integer_dense",
    "IntOp",
    "IntDense",
    "IntConv2d",
    "IntMaxPool",
    "IntReshape",
    "IntFlatten",
    "IntReLU",
    "IntLookup",
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
#
# Every layer of the engine is an ``IntOp``: it knows its integer forward pass and the ONNX nodes that
# compute the same thing, so the engine (``IntegerModel``), its float64 oracle (``simulate_float64``)
# and the export (``labkit.export``) walk the layers without asking what kind each is. A new layer type
# (say lab 11's GELU, :class:`IntLookup`) is one class here, and ``quantize_model`` maps a float layer
# onto it.


class IntOp:
    """One layer of the integer engine: integers in, integers out.

    Subclasses implement :meth:`forward` and :meth:`onnx`; a layer with weights also :meth:`forward_f64`
    (its arithmetic redone in float64), :meth:`forward_kernels` (the compiled kernels) and :meth:`arrays`.
    ``onnx(g, x)`` adds the layer's nodes to the graph builder ``g`` (``labkit.export`` passes one: it
    offers ``g.node``, ``g.init``, ``g.qdq``, ``g.scales``, ``g.qtype`` and ``g.weight_type``) reading
    the tensor named ``x``, and returns the name of its output tensor.
    """

    name = ""
    #: the short name of this kind of layer in the engine's summary and in ONNX node names
    kind = "op"

    def forward(self, q):  # pragma: no cover - the protocol
        raise NotImplementedError

    def forward_f64(self, q):
        """The float64 oracle of :meth:`forward` (the same for layers without arithmetic)."""
        return self.forward(q)

    def forward_kernels(self, q):
        """:meth:`forward` through labkit's compiled kernels (the same for layers without weights)."""
        return self.forward(q)

    def arrays(self) -> dict:
        """The layer's parameters by name (what :attr:`IntegerModel.nbytes` counts)."""
        return {}

    def onnx(self, g, x: str) -> str:  # pragma: no cover - the protocol
        raise NotImplementedError

    def summary(self) -> str:
        return f"  {self.kind}"


class IntDense(IntOp):
    """An integer Dense layer. ``bias`` already folds in ``-z_x · sum_k q_W[c, k]`` (Jacob eq. 8).

    ``act_bits``/``act_signed`` give the type of its output activations (8-bit unsigned by default).
    """

    kind = "dense"

    def __init__(self, name, q_W, q_b, M0, n, z_x, z_y, relu, act_bits, act_signed, rounding="single"):
        self.name, self.q_W, self.q_b, self.M0 = name, q_W, q_b, M0
        self.rounding = rounding
        self.shift = n.astype(np.int8)
        self.z_x, self.z_y, self.relu = int(z_x), int(z_y), bool(relu)
        self.act_bits, self.act_signed = act_bits, act_signed
        self.bias = (q_b.astype(np.int64) - self.z_x * q_W.astype(np.int64).sum(axis=1)).astype(np.int32)

    bits = property(lambda self: self.act_bits, doc="Deprecated name of ``act_bits``.")
    signed = property(lambda self: self.act_signed, doc="Deprecated name of ``act_signed``.")

    def accumulate(self, q):
        """int32 accumulators (batch, out): ``q_x @ q_W.T + bias`` (zero point folded into bias)."""
        return q.astype(np.int32) @ self.q_W.T.astype(np.int32) + self.bias

    def accumulate_f64(self, q):
        return (q.astype(np.float64) - self.z_x) @ self.q_W.T.astype(np.float64) + self.q_b.astype(np.float64)

    def forward(self, q):
        return requantize(
            self.accumulate(q),
            self.M0,
            self.shift,
            self.z_y,
            self.act_bits,
            self.act_signed,
            self.relu,
            rounding=self.rounding,
        )

    def forward_f64(self, q):
        return _requantize_f64(self.accumulate_f64(q), self, -1)

    def forward_kernels(self, q):
        """:meth:`forward` by the compiled ``labkit.kernels.gemm_int8_requant``: the same integers, faster."""
        from .. import kernels  # numba is imported only when a kernel is asked for

        if self.rounding != "single":
            raise ValueError(f"the kernels requantize with rounding 'single'; layer {self.name} uses {self.rounding!r}")
        q = np.ascontiguousarray(q)
        return kernels.gemm_int8_requant(
            q,
            self.q_W,
            self.q_b,
            self.M0,
            self.shift,
            self.z_y,
            a_zero_point=self.z_x,
            bits=self.act_bits,
            signed=self.act_signed,
            relu=self.relu,
        )

    def arrays(self):
        zp_dtype = np.int8 if self.act_signed else np.uint8
        return {
            "W": self.q_W,
            "bias": self.bias,
            "M0": self.M0,
            "shift": self.shift,
            "z_x": np.array(self.z_x, zp_dtype),
            "z_y": np.array(self.z_y, zp_dtype),
        }

    def onnx(self, g, x: str) -> str:
        """DequantizeLinear of input, weights (per channel) and bias, the float op, a fused Relu, QuantizeLinear."""
        r, n, c = g.scales(self.name), self.name, self.q_W.shape[0]
        x_f = g.qdq("DequantizeLinear", x, f"{n}.x", r["s_x"], np.array(self.z_x, g.qtype), f"{n}.x")
        q_W, w_zp = np.asarray(self.q_W, np.int8), np.zeros(c, np.int8)
        if g.weight_type == "uint8":  # the same integers shifted by 128: u8 x u8 kernels do not saturate
            q_W, w_zp = (q_W.astype(np.int16) + 128).astype(np.uint8), np.full(c, 128, np.uint8)
        W_f = g.qdq(
            "DequantizeLinear", g.init(f"{n}.W_q", self._onnx_weights(q_W)), f"{n}.W", r["s_w"], w_zp, f"{n}.W", axis=0
        )
        b_scale = (np.float64(r["s_x"]) * r["s_w"].astype(np.float64)).astype(np.float32)
        b_q = g.init(f"{n}.b_q", np.asarray(self.q_b, np.int32))
        b_f = g.qdq("DequantizeLinear", b_q, f"{n}.b", b_scale, np.zeros(c, np.int32), f"{n}.b", axis=0)
        y = self._onnx_op(g, [x_f, W_f, b_f], f"{n}.y")
        if self.relu:
            y = g.node("Relu", [y], f"{n}.relu", name=f"{n}.relu")
        return g.qdq("QuantizeLinear", y, f"{n}.y", r["s_y"], np.array(self.z_y, g.qtype), f"{n}.q")

    def _onnx_weights(self, q_W):
        return q_W

    def _onnx_op(self, g, inputs, out):
        return g.node("Gemm", inputs, out, name=self.name, transB=1)

    def summary(self) -> str:
        w = tuple(self.q_W.shape)
        return f"  {self.name:<7} {self.kind:<5} W {w} relu={self.relu} z_x={self.z_x} z_y={self.z_y}"


class IntConv2d(IntDense):
    """An integer convolution: im2col of the integer input padded with its zero point, then IntDense."""

    kind = "conv"

    def __init__(
        self,
        name,
        q_W,
        q_b,
        M0,
        n,
        z_x,
        z_y,
        relu,
        act_bits,
        act_signed,
        kernel_size,
        stride,
        padding,
        rounding="single",
    ):
        super().__init__(
            name, q_W.reshape(q_W.shape[0], -1), q_b, M0, n, z_x, z_y, relu, act_bits, act_signed, rounding
        )
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def cols(self, q):
        """The input's windows as rows, padded with the zero point (real 0): ``(cols, (n, ho, wo))``."""
        return nn.im2col(q, self.kernel_size, self.stride, self.padding, pad_value=self.z_x)

    def _to_nchw(self, flat, shape):
        n, ho, wo = shape
        return flat.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)

    def forward(self, q):
        cols, shape = self.cols(q)
        return self._to_nchw(super().forward(cols), shape)

    def forward_f64(self, q):
        cols, shape = self.cols(q)
        return _requantize_f64(self._to_nchw(self.accumulate_f64(cols), shape), self, 1)

    def forward_kernels(self, q):
        cols, shape = self.cols(q)
        return self._to_nchw(super().forward_kernels(cols), shape)

    def _onnx_weights(self, q_W):
        return q_W.reshape(q_W.shape[0], -1, self.kernel_size, self.kernel_size)

    def _onnx_op(self, g, inputs, out):
        k, s, p = self.kernel_size, self.stride, self.padding
        return g.node("Conv", inputs, out, name=self.name, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])


class IntMaxPool(IntOp):
    """Max pooling on the integers (it commutes with the monotonic quantization)."""

    kind = "maxpool"

    def __init__(self, kernel_size: int):
        self.kernel_size = kernel_size

    def forward(self, q):
        n, c, h, w = q.shape
        k = self.kernel_size
        return q.reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))

    def onnx(self, g, x):
        k, name = self.kernel_size, g.unique(self.kind)
        return g.node("MaxPool", [x], f"{name}.q", name=name, kernel_shape=[k, k], strides=[k, k])


class IntReshape(IntOp):
    """A reshape of each sample to ``shape``."""

    kind = "reshape"

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, q):
        return q.reshape((q.shape[0], *self.shape))

    def onnx(self, g, x):
        name = g.unique(self.kind)
        shape = g.init(f"{name}.shape", np.array([-1, *self.shape], dtype=np.int64))
        return g.node("Reshape", [x, shape], f"{name}.q", name=name)


class IntFlatten(IntOp):
    """Each sample flattened to one axis."""

    kind = "flatten"

    def forward(self, q):
        return q.reshape(q.shape[0], -1)

    def onnx(self, g, x):
        name = g.unique(self.kind)
        return g.node("Flatten", [x], f"{name}.q", name=name, axis=1)


class IntReLU(IntOp):
    """A ReLU that follows no weight layer: a clamp at the zero point (real 0)."""

    kind = "relu"

    def __init__(self, zero_point: int):
        self.zero_point = int(zero_point)

    def forward(self, q):
        return np.maximum(q, q.dtype.type(self.zero_point))

    def onnx(self, g, x):
        name = g.unique(self.kind)
        floor = g.init(f"{name}.min", np.array(self.zero_point, g.qtype))
        return g.node("Clip", [x, floor], f"{name}.q", name=name)


class IntLookup(IntOp):
    """An elementwise function of 8-bit activations as a table of its 2^bits outputs (lab 11's GELU).

    With at most 256 input codes, ``y = f(s_x (q_x - z_x))`` requantized to ``(s_y, z_y)`` is exact as a
    lookup: ``table[q_x - qmin] = clamp(rint(f(s_x (q_x - z_x)) / s_y) + z_y, qmin, qmax)``. Any
    elementwise float function becomes integer-only this way (in ONNX: ``Gather`` on the codes).

    Parameters
    ----------
    name : str
    table : integer array (2^act_bits,)
        Output code of each input code, input codes in order from ``qmin``.
    in_qp, out_qp : (scale, zero point)
        The real scales of the codes it reads and writes (the export states them in the file).
    act_bits, act_signed : the activation type (of both input and output)

    >>> relu6 = lambda x: np.clip(x, 0, 6)
    >>> lut = IntLookup.of_function("relu6", relu6, in_qp=(0.05, 128), out_qp=(6 / 255, 0))
    >>> lut.forward(np.array([0, 128, 130, 255], np.uint8)).tolist()  # -6.4, 0, 0.1, 6.35 -> 0, 0, 0.1, 6
    [0, 0, 4, 255]
    """

    kind = "lookup"

    def __init__(self, name, table, in_qp, out_qp, act_bits: int = 8, act_signed: bool = False):
        qmin, qmax = int_range(act_bits, act_signed)
        table = np.asarray(table)
        if table.shape != (qmax - qmin + 1,) or table.dtype.kind not in "iu":
            raise ValueError(f"{name}: the table needs one integer per input code, shape ({qmax - qmin + 1},)")
        if table.min() < qmin or table.max() > qmax:
            raise ValueError(f"{name}: table entries must be codes in [{qmin}, {qmax}]")
        self.name, self.act_bits, self.act_signed, self.qmin = name, act_bits, act_signed, qmin
        self.table = table.astype(np.int8 if act_signed else np.uint8)
        self.s_x, self.z_x = np.float32(in_qp[0]), int(in_qp[1])
        self.s_y, self.z_y = np.float32(out_qp[0]), int(out_qp[1])

    @classmethod
    def of_function(cls, name, fn, in_qp, out_qp, act_bits: int = 8, act_signed: bool = False):
        """The table of ``fn`` (float32 in, float32 out) from codes at ``in_qp`` to codes at ``out_qp``."""
        qmin, qmax = int_range(act_bits, act_signed)
        x = (np.float32(in_qp[0]) * (np.arange(qmin, qmax + 1) - int(in_qp[1]))).astype(np.float32)
        table = quantize(np.asarray(fn(x), np.float32), out_qp[0], out_qp[1], act_bits, act_signed)
        return cls(name, table, in_qp, out_qp, act_bits, act_signed)

    def forward(self, q):
        return self.table[np.asarray(q).astype(np.int64) - self.qmin]

    def arrays(self):
        return {"table": self.table}

    def onnx(self, g, x):
        index = g.node("Cast", [x], f"{self.name}.code", name=f"{self.name}.code", to=7)  # to INT64
        if self.qmin:
            qmin = g.init(f"{self.name}.qmin", np.array(self.qmin, np.int64))
            index = g.node("Sub", [index, qmin], f"{self.name}.index", name=f"{self.name}.index")
        table = g.init(f"{self.name}.table", self.table)
        return g.node("Gather", [table, index], f"{self.name}.q", name=self.name, axis=0)

    def summary(self) -> str:
        return f"  {self.name:<7} {self.kind:<5} table of {self.table.size} codes, z_x={self.z_x} z_y={self.z_y}"


class IntegerModel:
    """An integer-only network built by :func:`quantize_model`.

    The float input is quantized once (``input_scale``, ``input_zero_point``); every layer after
    that computes on integers; the output is the quantized logits (``predict_int``), which
    ``predict_logits`` dequantizes and ``predict`` reduces to class indices (argmax of the integer
    logits).

    Attributes
    ----------
    layers : list of IntOp
        The engine's layers in order (:class:`IntDense`, :class:`IntConv2d`, :class:`IntMaxPool`,
        :class:`IntReshape`, :class:`IntFlatten`, :class:`IntReLU`, :class:`IntLookup`).
    input_scale, input_zero_point, output_scale, output_zero_point
    act_bits, act_signed : the activations' type; ``weight_bits`` the weights'.
    """

    def __init__(self, layers, input_qp, output_qp, act_bits, act_signed, weight_bits):
        self.layers = list(layers)
        self.input_scale, self.input_zero_point = np.float32(input_qp[0]), int(input_qp[1])
        self.output_scale, self.output_zero_point = np.float32(output_qp[0]), int(output_qp[1])
        self.act_bits, self.act_signed, self.weight_bits = act_bits, act_signed, weight_bits

    @property
    def ops(self) -> list:
        """Deprecated: ``[(kind, layer)]``; the layers are :attr:`layers`."""
        warnings.warn("IntegerModel.ops is deprecated; use IntegerModel.layers", DeprecationWarning, stacklevel=2)
        return [(op.kind, op) for op in self.layers]

    @property
    def bits(self) -> int:
        """Deprecated name of :attr:`act_bits` (``bits`` is the weights' bits in :func:`quantize_model`)."""
        warnings.warn("IntegerModel.bits is deprecated; use IntegerModel.act_bits", DeprecationWarning, stacklevel=2)
        return self.act_bits

    @property
    def signed(self) -> bool:
        """Deprecated name of :attr:`act_signed`."""
        warnings.warn(
            "IntegerModel.signed is deprecated; use IntegerModel.act_signed", DeprecationWarning, stacklevel=2
        )
        return self.act_signed

    def weight_layers(self) -> list:
        """The layers with weights (:class:`IntDense` and :class:`IntConv2d`), in order."""
        return [op for op in self.layers if isinstance(op, IntDense)]

    def quantize_input(self, X):
        X = np.asarray(X, dtype=np.float32)
        return quantize(X, self.input_scale, self.input_zero_point, self.act_bits, self.act_signed)

    def _run(self, q, backend="numpy"):
        method = {"numpy": "forward", "kernels": "forward_kernels", "float64": "forward_f64"}[backend]
        for op in self.layers:
            q = getattr(op, method)(q)
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
        kinds = {op.rounding for op in self.weight_layers()}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def with_rounding(self, rounding: str) -> IntegerModel:
        """The same engine (same integers, shared arrays) requantizing with ``rounding``."""
        check_choice("rounding", rounding, ROUNDINGS)
        import copy

        layers = []
        for op in self.layers:
            if isinstance(op, IntDense):
                op = copy.copy(op)
                op.rounding = rounding
            layers.append(op)
        return IntegerModel(
            layers,
            (self.input_scale, self.input_zero_point),
            (self.output_scale, self.output_zero_point),
            self.act_bits,
            self.act_signed,
            self.weight_bits,
        )

    def arrays(self) -> dict:
        """Every array the engine needs at run time, by name (what ``nbytes`` counts)."""
        zp_dtype = np.int8 if self.act_signed else np.uint8
        out = {
            "input.scale": np.array(self.input_scale, np.float32),
            "input.zero_point": np.array(self.input_zero_point, zp_dtype),
            "output.scale": np.array(self.output_scale, np.float32),
            "output.zero_point": np.array(self.output_zero_point, zp_dtype),
        }
        for op in self.layers:
            out.update({f"{op.name}.{k}": a for k, a in op.arrays().items()})
        return out

    @property
    def nbytes(self) -> int:
        """Exact bytes of the engine's parameters: int8 weights, int32 biases and multipliers,
        int8 shifts, 8-bit zero points, and the float32 input/output scales."""
        return int(sum(a.nbytes for a in self.arrays().values()))

    def __repr__(self):
        acts = f"{'int' if self.act_signed else 'uint'}{self.act_bits}"
        rows = [
            f"IntegerModel(weights int{self.weight_bits} per-channel symmetric, activations {acts} per-tensor "
            f"affine, {self.nbytes} bytes)"
        ]
        return "\n".join(rows + [op.summary() for op in self.layers])


def _requantize_f64(acc, op, channel_axis):
    """The float64 simulation of requantize: rint(acc · M0 · 2^-(31+n)) + z, clamped (exact here)."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    M = (op.M0.astype(np.float64) * np.exp2(-(31.0 + op.shift.astype(np.float64)))).reshape(shape)
    qmin, qmax = int_range(op.act_bits, op.act_signed)
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

#: float layers that are the identity in the engine (FakeQuant: the engine quantizes activations itself)
DROPPED = (nn.Dropout, FakeQuant)
#: elementwise float layers the engine computes as a table of their 2^act_bits outputs (IntLookup)
LOOKUP = (nn.GELU,)
#: layers without arithmetic on the codes, and the engine layer each becomes
SHAPE_OPS = {
    nn.MaxPool2d: lambda layer: IntMaxPool(layer.kernel_size),
    nn.Reshape: lambda layer: IntReshape(layer.shape),
    nn.Flatten: lambda layer: IntFlatten(),
}


def _weight_op(layer, s_x, z_x, s_y, z_y, relu: bool, spec: dict) -> IntDense:
    """The integer Dense/conv of float ``layer`` between input ``(s_x, z_x)`` and output ``(s_y, z_y)``."""
    bits = spec["bits"]
    s_w, _ = qparams(layer.W, bits, symmetric=True, axis=0 if spec["per_channel"] else None)
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (layer.W.shape[0],))
    q_W = quantize(
        layer.W, s_w.reshape(-1), np.zeros(len(s_w), np.int64), bits, True, axis=0, narrow_range=True
    )  # symmetric weights: never -2^(bits-1)
    acc_scale = np.float64(s_x) * s_w.astype(np.float64)
    q_b = np.rint(layer.b.astype(np.float64) / acc_scale)
    if np.any(np.abs(q_b) >= 2**31 - 2**24):
        raise ValueError(f"{layer.name}: the bias does not fit int32 at scale {acc_scale.min():.3g}")
    M0, n = quantize_multiplier(acc_scale / np.float64(s_y))
    args = (layer.name, q_W, q_b.astype(np.int32), M0, n, z_x, z_y, relu, spec["act_bits"], spec["act_signed"])
    if isinstance(layer, nn.Conv2d):
        return IntConv2d(*args, layer.kernel_size, layer.stride, layer.padding, spec["rounding"])
    return IntDense(*args, spec["rounding"])


def _engine_layers(layers, calib, in_qp, spec: dict) -> tuple[list, tuple]:
    """The engine's layers for the float ``layers`` (a forward pass on ``calib`` calibrates each output
    range), and the output's (scale, zero point)."""
    act = lambda x: qparams(x, spec["act_bits"], method=spec["method"], signed=spec["act_signed"])  # noqa: E731
    ops, x, (s_x, z_x), i = [], calib, in_qp, 0
    while i < len(layers):
        layer = layers[i]
        x = layer.forward(x, training=False)
        if isinstance(layer, (nn.Dense, nn.Conv2d)):
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)  # fused: a clamp at z_y
            if relu:
                i += 1
                x = layers[i].forward(x, training=False)
            s_y, z_y = act(x)
            ops.append(_weight_op(layer, s_x, z_x, s_y, z_y, relu, spec))
            s_x, z_x = s_y, z_y
        elif isinstance(layer, LOOKUP):
            s_y, z_y = act(x)
            fn = type(layer)().forward  # a fresh layer: the table's pass leaves the model's caches alone
            ops.append(
                IntLookup.of_function(layer.name, fn, (s_x, z_x), (s_y, z_y), spec["act_bits"], spec["act_signed"])
            )
            s_x, z_x = s_y, z_y
        elif isinstance(layer, nn.ReLU):
            ops.append(IntReLU(z_x))  # a ReLU on its own: clamp at the zero point
        else:
            ops.append(SHAPE_OPS[type(layer)](layer))
        i += 1
    return ops, (s_x, z_x)


def quantize_model(
    model,
    bits: int = 8,
    *,
    calib,
    act_bits: int = 8,
    act_signed: bool = False,
    method: str = "minmax",
    per_channel: bool = True,
    rounding: str = "single",
):
    """Quantize a float ``labkit.nn.Sequential`` into an integer-only :class:`IntegerModel`.

    Parameters
    ----------
    model : labkit.nn.Sequential of Dense, Conv2d, ReLU, GELU, MaxPool2d, Flatten, Reshape (Dropout and
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
        A ReLU after a weight layer is fused into it (a clamp at the zero point); a GELU becomes a
        table of its 2^act_bits outputs (:class:`IntLookup`).
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
    converted = (nn.Dense, nn.Conv2d, nn.ReLU, *LOOKUP, *SHAPE_OPS, *DROPPED)
    for name, layer in model.named_layers():
        if type(layer) not in converted:
            raise TypeError(f"quantize_model: layer {name} ({type(layer).__name__}) has no integer version")
    layers = [layer for layer in model.layers if not isinstance(layer, DROPPED)]
    if not any(isinstance(layer, (nn.Dense, nn.Conv2d)) for layer in layers):
        raise ValueError("quantize_model: the model has no Dense or Conv2d layer")
    in_qp = qparams(calib, act_bits, method=method, signed=act_signed)
    spec = dict(
        bits=bits, act_bits=act_bits, act_signed=act_signed, method=method, per_channel=per_channel, rounding=rounding
    )
    ops, out_qp = _engine_layers(layers, calib, in_qp, spec)
    return IntegerModel(ops, in_qp, out_qp, act_bits, act_signed, bits)


def int8_engine_bytes(engine) -> int:
    """Bytes of an :class:`IntegerModel` as stored for inference (size format ``"int8_engine"``)."""
    if not isinstance(engine, IntegerModel):
        got = type(engine).__name__
        raise TypeError(f"size format 'int8_engine' measures an IntegerModel from quantize_model, got {got}")
    return engine.nbytes
