"""ONNX export: the course's float, pruned and int8 models as files that another runtime executes.

A compressed model is only useful once a runtime that is not ours runs it. ONNX is the exchange
format most runtimes read (onnxruntime, TensorRT, OpenVINO, TVM, ...): a graph of standard operators
whose weights travel inside the file as *initializers*. This module writes them with the ``onnx``
package's own helpers (``onnx.helper``, ``onnx.numpy_helper``), checks every file with
``onnx.checker`` and strict shape inference, and writes it atomically.

Opset 13 (:data:`OPSET`), IR version 7: the first opset with per-axis ``QuantizeLinear`` /
``DequantizeLinear``, read by every onnxruntime since 1.6.

* **Float and pruned models** (``to_onnx(model, path)``). ``Dense`` → ``Gemm`` (``transB=1``, so
  ``W`` keeps its (out, in) layout), ``Conv2d`` → ``Conv``, ``MaxPool2d`` → ``MaxPool``, ``ReLU`` →
  ``Relu``, ``Flatten`` → ``Flatten``, ``Reshape`` → ``Reshape``; ``Dropout`` is the identity at
  inference and writes no node. A pruned model keeps its zeros: ONNX initializers are dense
  tensors, so the file is as large as the float32 model (4 bytes per weight, zero or not) — the
  sparsity is only worth bytes after a general-purpose compressor (gzip) or in labkit's own
  sparse and deep-compression formats.
* **Integer models** (``to_onnx(model, path, quantized=engine)`` with ``engine =
  labkit.quant.quantize_model(model, ...)``) in the *QDQ* form that onnxruntime's own quantizer
  writes: the float input goes through ``QuantizeLinear``; every weight layer reads its input
  through ``DequantizeLinear``, its int8 weights through a per-channel ``DequantizeLinear``
  (axis 0) and its int32 bias through a ``DequantizeLinear`` with scale ``s_x · s_W[c]``; its output
  (after a fused ``Relu``) goes through ``QuantizeLinear`` with the engine's output scale and zero
  point. The weights are the engine's int8 integers, stored by default (``weight_type="uint8"``)
  shifted by 128 as uint8 with zero point 128 — the same real values — because onnxruntime's
  uint8 × int8 kernel on x86 CPUs without VNNI (AVX2) adds pairs of products in saturating 16-bit
  arithmetic (``vpmaddubsw``): 255 · 127 · 2 > 32767, and on LeNet-5 that changed 79,665 of the
  100,000 integer logits (by up to 19) and 2.85 % of the predictions on the course's machine.
  Its uint8 × uint8 kernel accumulates exactly. ``weight_type="int8"`` writes plain int8 weights
  (zero point 0), the form onnxruntime's own quantizer writes. ``MaxPool``, ``Reshape`` and
  ``Flatten`` run on the 8-bit tensors directly, and a ReLU that follows no weight layer is a
  ``Clip`` at the zero point. onnxruntime fuses each
  DQ → Gemm/Conv → Q group into an integer kernel (``QGemm``, ``QLinearConv``): int8 products,
  int32 accumulators, and a requantization that multiplies by ``s_x · s_W[c] / s_y`` in **float32**
  and rounds half to even — where labkit's engine uses a 31-bit fixed-point multiplier and a
  rounding shift. The two agree except where ``acc · M`` falls within float32 rounding of a
  half-integer (see :func:`float32_requantize`, which models onnxruntime's epilogue).

The file has two outputs for an integer model: ``logits`` (float32, dequantized) and ``logits_q``
(the integer logits, what ``IntegerModel.predict_int`` returns); one, ``logits``, for a float model.

Scales. The engine stores, per layer, only the products that its integer arithmetic needs: the
multiplier ``M[c] = s_x · s_W[c] / s_y`` as ``(M0, shift)``, the input scale of the first layer and
the output scale of the last. The file needs each scale on its own, so :func:`to_onnx` takes the
float model too: the weight scales are estimated from ``W ≈ s_W[c] · q_W`` (least squares), each
hidden activation scale ``s_y`` follows as the median over channels of ``s_x · s_W[c] / M[c]``, and the
weight scales are then set to ``M[c] · s_y / s_x`` exactly, so the products the runtime computes are
the engine's multipliers to float32 precision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import nn
from .atomic import write_bytes
from .qarith import int_range, requantize
from .quant.fakequant import FakeQuant
from .quant.integer import IntConv2d, IntDense, IntegerModel, IntLookup
from .validation import check_choice, check_int

__all__ = [
    "OPSET",
    "IR_VERSION",
    "SUPPORTED_LAYERS",
    "require_onnx",
    "to_onnx",
    "onnx_session",
    "run_onnx",
    "layer_scales",
    "float32_requantize",
    "emulate_onnxruntime",
]

#: ONNX operator set of the files written here
OPSET = 13
#: ONNX IR version written (7 goes with opset 13; onnxruntime >= 1.6 reads it)
IR_VERSION = 7
#: the float layers :func:`to_onnx` exports, and the ONNX operator each becomes (exact classes)
FLOAT_LAYERS = {
    nn.Dense: "Gemm",
    nn.Conv2d: "Conv",
    nn.MaxPool2d: "MaxPool",
    nn.ReLU: "Relu",
    nn.Flatten: "Flatten",
    nn.Reshape: "Reshape",
    nn.Dropout: "(none: identity at inference)",
}
#: the same by name (documentation and messages)
SUPPORTED_LAYERS = {cls.__name__: op for cls, op in FLOAT_LAYERS.items()}


def require_onnx():
    """Import and return ``(onnx, onnxruntime)``, or raise ImportError saying how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs the packages 'onnx' and 'onnxruntime' ({exc}); install them with "
            "`pip install onnx onnxruntime` (labkit depends on both: `pip install -e .` installs them)"
        ) from exc
    return onnx, onnxruntime


# --- validation ---------------------------------------------------------------------------------


def _check_model(model, integer: bool = False) -> tuple:
    """The model's layers (Dropout dropped) and one sample's input shape; clear errors otherwise.

    For an ``integer`` export the float model only lends its weights' scales: its layers need an
    integer version (``quantize_model`` checked that), not an ONNX float operator.
    """
    if isinstance(model, IntegerModel):
        raise TypeError(
            "to_onnx takes the float labkit.nn.Sequential and the integer model as quantized=: "
            "to_onnx(model, path, quantized=quantize_model(model, ...)); got an IntegerModel as model"
        )
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"to_onnx expects a labkit.nn.Sequential, got {type(model).__name__}")
    if not model.layers:
        raise ValueError("to_onnx: the model has no layers")
    for name, layer in model.named_layers():
        if isinstance(layer, FakeQuant):
            raise TypeError(
                f"layer {name} (FakeQuant) is a training-time simulation: export the integer model instead, "
                "to_onnx(model, path, quantized=labkit.quant.quantize_model(model, calib=...))"
            )
        if not integer and type(layer) not in FLOAT_LAYERS:
            kind = type(layer).__name__
            raise TypeError(f"layer {name} ({kind}) has no ONNX export; supported: {', '.join(SUPPORTED_LAYERS)}")
        for p, a in layer.params().items():
            if not np.all(np.isfinite(a)):
                raise ValueError(f"layer {name}: parameter {p} holds NaN or inf values; expected finite numbers")
    shape = model.input_shape
    if shape is None:
        first = model.layers[0]
        if not isinstance(first, nn.Dense):
            raise ValueError("to_onnx needs the model's input_shape (pass input_shape= to Sequential)")
        shape = (first.in_features,)
    shape = tuple(int(s) for s in shape)
    try:
        model.shapes() if model.input_shape is not None else None
    except Exception as exc:  # noqa: BLE001 - a shape mismatch between layers
        raise ValueError(f"to_onnx: the layers do not chain for input shape {shape}: {exc}") from exc
    return [layer for layer in model.layers if not isinstance(layer, nn.Dropout)], shape


def _check_path(path) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"ONNX files end in .onnx, got {path.name!r}")
    return path


# --- float graphs -------------------------------------------------------------------------------


def _float_nodes(layers, x: str, helper, init):
    """Nodes of a float graph from input tensor ``x``; returns (nodes, name of the last output)."""
    nodes = []
    for layer in layers:
        out = f"{layer.name}.out"
        if isinstance(layer, (nn.Dense, nn.Conv2d)):
            W = init(f"{layer.name}.W", layer.W.astype(np.float32))
            b = init(f"{layer.name}.b", layer.b.astype(np.float32))
            if isinstance(layer, nn.Dense):
                nodes.append(helper.make_node("Gemm", [x, W, b], [out], name=layer.name, transB=1))
            else:
                nodes.append(_conv_node(helper, layer, [x, W, b], out))
        else:
            nodes.append(_shape_node(helper, layer, x, out, init))
        x = out
    return nodes, x


def _conv_node(helper, layer, inputs, out):
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p, p, p, p]}
    return helper.make_node("Conv", inputs, [out], name=layer.name, **attrs)


def _shape_node(helper, layer, x, out, init, relu_floor=None):
    """MaxPool, Flatten, Reshape and ReLU: the same on float and on 8-bit tensors (ReLU: see relu_floor)."""
    if isinstance(layer, nn.MaxPool2d):
        k = layer.kernel_size
        return helper.make_node("MaxPool", [x], [out], name=layer.name, kernel_shape=[k, k], strides=[k, k])
    if isinstance(layer, nn.Flatten):
        return helper.make_node("Flatten", [x], [out], name=layer.name, axis=1)
    if isinstance(layer, nn.Reshape):
        shape = init(f"{layer.name}.shape", np.array([-1, *layer.shape], dtype=np.int64))
        return helper.make_node("Reshape", [x, shape], [out], name=layer.name)
    if isinstance(layer, nn.ReLU):
        if relu_floor is None:
            return helper.make_node("Relu", [x], [out], name=layer.name)
        return helper.make_node("Clip", [x, init(f"{layer.name}.min", relu_floor)], [out], name=layer.name)
    raise TypeError(f"layer {layer.name} ({type(layer).__name__}) has no ONNX export")  # pragma: no cover


# --- integer graphs -----------------------------------------------------------------------------


def layer_scales(model, quantized) -> list:
    """The real scales of an integer model's weight layers, as the ONNX file states them.

    Parameters
    ----------
    model : labkit.nn.Sequential, the float model ``quantized`` was built from
    quantized : labkit.quant.IntegerModel

    Returns
    -------
    list of dict, one per weight layer in order, with ``name``, ``s_x`` (float32, input scale),
    ``s_w`` (float32 (C,), per output channel), ``s_y`` (float32, output scale), ``M`` (float64 (C,),
    the engine's fixed-point multipliers ``M0 · 2^-(31 + shift)``) and ``M_file`` (float64 (C,),
    ``s_x · s_w / s_y`` from the float32 scales written to the file).

    Raises
    ------
    ValueError
        If ``quantized`` was not built from ``model`` (layer names, shapes or weights disagree).
    """
    if not isinstance(quantized, IntegerModel):
        raise TypeError(
            f"quantized must be a labkit.quant.IntegerModel from quantize_model, got {type(quantized).__name__}"
        )
    float_layers = dict(model.weight_layers())
    ops = quantized.weight_layers()
    if [op.name for op in ops] != list(float_layers):
        raise ValueError(
            f"quantized was not built from this model: its weight layers are {[op.name for op in ops]}, "
            f"the model's are {list(float_layers)}"
        )
    after = _scale_after(quantized)
    rows, s_x = [], np.float64(quantized.input_scale)
    for op in ops:
        W = float_layers[op.name].W
        q = np.asarray(op.q_W).reshape(op.q_W.shape[0], -1).astype(np.float64)
        if W.size != q.size or W.shape[0] != q.shape[0]:
            raise ValueError(f"{op.name}: the integer weights have shape {op.q_W.shape}, the float weights {W.shape}")
        Wf = W.reshape(W.shape[0], -1).astype(np.float64)
        M = np.asarray(op.M0, np.float64) * np.exp2(-(31.0 + np.asarray(op.shift, np.float64)))
        M = np.broadcast_to(M, (q.shape[0],)).astype(np.float64)
        if op.name in after:  # the output's scale is known: the model's output, or a lookup's input
            s_y = np.float64(after[op.name][0])
        else:
            s_y = _estimate_output_scale(op, q, Wf, s_x, M)
        s_w = (M * s_y / s_x).astype(np.float32)
        _check_weights_match(op, q, Wf, s_w)
        m_file = np.float64(np.float32(s_x)) * s_w.astype(np.float64) / np.float64(np.float32(s_y))
        row = {"name": op.name, "s_x": np.float32(s_x), "s_w": s_w, "s_y": np.float32(s_y)}
        rows.append({**row, "M": M, "M_file": m_file})
        s_x = np.float64(np.float32(after.get(op.name, (None, s_y))[1]))
    return rows


def _scale_after(quantized) -> dict:
    """``{weight layer: (its output scale, the next weight layer's input scale)}`` where the engine states
    them: before a lookup (its stored input and output scales) and at the model's output."""
    after, last = {}, None
    for op in quantized.layers:
        if isinstance(op, IntDense):
            last = op.name
        elif isinstance(op, IntLookup) and last is not None:
            after[last] = (op.s_x, op.s_y)
            last = None
    if last is not None:
        after[last] = (quantized.output_scale, quantized.output_scale)
    return after


def _estimate_output_scale(op, q, Wf, s_x, M):
    """A hidden activation's scale from the weights: each channel's largest integer weight is the end of
    its range (s_w = |W| / |q| there), and s_y = s_x · s_w / M, the median over the channels."""
    top = np.abs(q).argmax(axis=1)
    q_top = np.abs(q[np.arange(len(q)), top])
    used = q_top > 0
    if not np.any(used):
        raise ValueError(f"{op.name}: every integer weight is 0; the activation scale cannot be recovered")
    s_w_est = np.abs(Wf[np.arange(len(q)), top])[used] / q_top[used]
    return np.float64(np.float32(np.median(s_x * s_w_est / M[used])))


def _check_weights_match(op, q, Wf, s_w) -> None:
    """The file's weights s_w · q_W must be the float weights up to rounding (half a step, and some slack)."""
    inside = np.abs(q) < np.abs(q).max()  # weights clipped at the end of the range may lie further off
    err = np.where(inside, np.abs(Wf - s_w.astype(np.float64)[:, None] * q), 0.0).max(axis=1)
    if np.any(err > 0.75 * s_w + 1e-12):
        c = int(np.argmax(err / (s_w + 1e-30)))
        raise ValueError(
            f"{op.name}: quantized was not built from this model's weights (channel {c}: "
            f"|W - s_w · q_W| reaches {err[c]:.3g}, more than a quantization step {s_w[c]:.3g})"
        )


class _IntegerGraph:
    """What an engine layer needs to write its ONNX nodes (:meth:`labkit.quant.IntOp.onnx`): ``node``,
    ``init``, ``qdq``, the layer ``scales``, the activations' ``qtype`` and the ``weight_type``."""

    def __init__(self, helper, init, qtype, scales: dict, weight_type: str):
        self.helper, self.init, self.qtype, self.weight_type = helper, init, qtype, weight_type
        self._scales, self.nodes = scales, []

    def node(self, op_type, inputs, output: str, name: str, **attrs) -> str:
        """Append one node with one output; returns the output's name."""
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=name, **attrs))
        return output

    def qdq(self, op_type, x, prefix, scale, zero_point, out, **attrs) -> str:
        """A QuantizeLinear or DequantizeLinear node with its scale and zero point as initializers."""
        inputs = [x, self.init(f"{prefix}_scale", scale), self.init(f"{prefix}_zero_point", zero_point)]
        return self.node(op_type, inputs, out, name=f"{op_type}({x})", **attrs)

    def scales(self, name: str) -> dict:
        """The real scales of weight layer ``name`` (:func:`layer_scales`)."""
        return self._scales[name]

    def unique(self, kind: str) -> str:
        """A name for a parameterless layer's node: its kind and the number of nodes so far."""
        return f"{kind}{len(self.nodes)}"


def _int_nodes(model, quantized, x, helper, init, weight_type="uint8"):
    """The QDQ graph of ``quantized``: quantize the input, then each engine layer writes its own nodes."""
    if quantized.act_bits != 8:
        raise ValueError(
            f"ONNX QuantizeLinear saturates to the full 8-bit range: only 8-bit activations export, "
            f"this model has act_bits={quantized.act_bits}"
        )
    qtype = np.int8 if quantized.act_signed else np.uint8
    g = _IntegerGraph(helper, init, qtype, {r["name"]: r for r in layer_scales(model, quantized)}, weight_type)
    x = g.qdq(
        "QuantizeLinear",
        x,
        "input",
        np.float32(quantized.input_scale),
        np.array(quantized.input_zero_point, qtype),
        "input.q",
    )
    for op in quantized.layers:
        x = op.onnx(g, x)
    g.node("Identity", [x], "logits_q", name="integer_logits")
    out_zp = np.array(quantized.output_zero_point, qtype)
    g.qdq("DequantizeLinear", x, "output", np.float32(quantized.output_scale), out_zp, "logits")
    return g.nodes, qtype


# --- the public entry point ---------------------------------------------------------------------


def to_onnx(model, path, *, quantized=None, weight_type: str = "uint8") -> Path:
    """Write ``model`` (or its integer version ``quantized``) as an ONNX file that onnxruntime runs.

    Parameters
    ----------
    model : labkit.nn.Sequential
        A float (or pruned: its zeros are kept) model of Dense, Conv2d, ReLU, MaxPool2d, Flatten,
        Reshape and Dropout layers, taking (batch, *input_shape) float32 inputs.
    path : str or pathlib.Path
        The file to write, ending in ``.onnx``; written atomically (temporary file, then rename).
    quantized : labkit.quant.IntegerModel, optional
        ``quantize_model(model, ...)`` with 8-bit activations: write the integer model instead, in QDQ
        form (int8 weights per channel, int32 biases, 8-bit activations; see the module docstring).
    weight_type : {"uint8", "int8"}
        How an integer model's weights are stored: ``"uint8"`` (default) the int8 integers plus 128
        with zero point 128, which onnxruntime multiplies exactly on every CPU; ``"int8"`` as they
        are, with zero point 0 (onnxruntime's u8s8 kernels may saturate on AVX2 CPUs).

    Returns
    -------
    pathlib.Path
        The file written. Its graph has input ``input`` (float32, (batch, *input_shape)) and output
        ``logits`` (float32, (batch, n_classes)), plus ``logits_q`` (the integer logits, uint8 or
        int8) for an integer model. It has passed ``onnx.checker.check_model(full_check=True)``
        (strict shape inference included).

    Raises
    ------
    TypeError
        A layer with no ONNX form (the message names it), a model that is not a Sequential, an
        IntegerModel passed as ``model``.
    ValueError
        A path not ending in .onnx, non-finite parameters, activations of fewer than 8 bits, an
        integer model not built from ``model``.
    ImportError
        ``onnx`` is not installed (the message says how to install it).
    """
    layers, in_shape = _check_model(model, integer=quantized is not None)
    path = _check_path(path)
    if quantized is not None and not isinstance(quantized, IntegerModel):
        got = type(quantized).__name__
        raise TypeError(f"quantized must be None or an IntegerModel from labkit.quant.quantize_model, got {got}")
    check_choice("weight_type", weight_type, ("uint8", "int8"))
    onnx, _ = require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    initializers = []

    def init(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value), name=name))
        return name

    if quantized is None:
        nodes, last = _float_nodes(layers, "input", helper, init)
        nodes.append(helper.make_node("Identity", [last], ["logits"], name="logits"))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", None])]
        kind = "float32"
    else:
        nodes, qtype = _int_nodes(model, quantized, "input", helper, init, weight_type)
        elem = TensorProto.INT8 if qtype is np.int8 else TensorProto.UINT8
        outputs = [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", None]),
            helper.make_tensor_value_info("logits_q", elem, ["batch", None]),
        ]
        kind = f"int{quantized.weight_bits} weights, {'int8' if quantized.act_signed else 'uint8'} activations (QDQ)"
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *in_shape])]
    graph = helper.make_graph(nodes, "labkit_model", inputs, outputs, initializer=initializers)
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="labkit",
        doc_string=f"labkit model exported by labkit.export.to_onnx: {kind}",
    )
    onnx_model.ir_version = IR_VERSION
    helper.set_model_props(onnx_model, {"labkit.kind": kind, "labkit.layers": " ".join(model.layer_names)})
    onnx.checker.check_model(onnx_model, full_check=True)  # full_check runs strict shape inference
    inferred = onnx.shape_inference.infer_shapes(onnx_model, check_type=True, strict_mode=True)
    out_dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    expected = model.shapes()[-1][2] if model.input_shape is not None else None
    if expected is not None and out_dims[1:] and out_dims[1] and tuple(out_dims[1:]) != tuple(expected):
        raise ValueError(f"shape inference gives output {out_dims}, labkit's model gives (batch, {expected})")
    data = onnx_model.SerializeToString()
    write_bytes(path, data)
    return path


# --- running the files --------------------------------------------------------------------------


def onnx_session(path, threads: int | None = 1):
    """An onnxruntime ``InferenceSession`` on the CPU for ``path``, all graph optimizations on.

    ``threads`` sets ``intra_op_num_threads`` (1 by default, as labkit's kernels are timed; None lets
    onnxruntime choose). onnxruntime's default optimizations fuse the QDQ groups of an integer model
    into its integer kernels.
    """
    _, ort = require_onnx()
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = check_int("threads", threads, lo=1, what=" or None")
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(session, X, output: str = "logits", batch_size: int = 1000) -> np.ndarray:
    """Run an ONNX model (a session or a path) on ``X`` (n, ...) in batches; returns ``output`` for all n."""
    if isinstance(session, (str, Path)):
        session = onnx_session(session)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch (n, features...), got shape {X.shape}")
    names = [o.name for o in session.get_outputs()]
    if output not in names:
        raise ValueError(f"the model has outputs {names}, not {output!r}")
    parts = [session.run([output], {"input": X[i : i + batch_size]})[0] for i in range(0, len(X), batch_size)]
    return np.concatenate(parts)


def float32_requantize(acc, M, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Requantization as onnxruntime's integer kernels do it: in float32, then round half to even.

    ``clamp(rint(float32(acc) · float32(M)) + zero_point, qmin, qmax)``, with the multiplier
    ``M = s_x · s_W[c] / s_y`` rounded to float32 and the product rounded to float32. labkit's engine
    computes ``rint(acc · M)`` exactly (a 31-bit ``M0`` and a 64-bit product): the two differ by
    one step where ``acc · M`` lies within float32 rounding (relative 2^-24) of a half-integer.

    Parameters
    ----------
    acc : int32 array (..., C), accumulators including the bias
    M : float array (C,) or scalar, the multipliers
    zero_point, qmin, qmax : int
    """
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise TypeError(f"acc must be integer accumulators, got dtype {acc.dtype}")
    prod = acc.astype(np.float32) * np.asarray(M, dtype=np.float32)
    return np.clip(np.rint(prod).astype(np.int64) + int(zero_point), qmin, qmax)


def _saturating_products(q, W):
    """``sum_k q[i, k] · W[j, k]`` with each pair (k, k+1) of products added in saturating int16 first."""
    K = q.shape[1]
    if K % 2:
        q, W = np.pad(q, ((0, 0), (0, 1))), np.pad(W, ((0, 0), (0, 1)))
    q, W = q.astype(np.int32), W.astype(np.int32)
    out = np.empty((q.shape[0], W.shape[0]), np.int64)
    for i in range(q.shape[0]):  # one input row at a time keeps the (out, K/2) pair sums small
        pairs = q[i, 0::2] * W[:, 0::2] + q[i, 1::2] * W[:, 1::2]
        out[i] = np.clip(pairs, -32768, 32767).sum(axis=1)
    return out


def emulate_onnxruntime(model, quantized, X, u8s8_saturation: bool = False, layers: bool = False):
    """The integer model computed the way onnxruntime's fused kernels compute its ONNX file, in numpy.

    Exact int32 accumulators, then :func:`float32_requantize` with the multipliers the file states
    (``s_x · s_W[c] / s_y`` in float32). With ``u8s8_saturation`` the Dense layers also add each pair of
    uint8 × int8 products in saturating 16-bit arithmetic, as onnxruntime's AVX2 u8s8 kernel does for
    a file written with ``weight_type="int8"`` (Dense only: the pairing inside a convolution follows
    onnxruntime's NHWC layout, not modelled here).

    Parameters
    ----------
    model, quantized : as for :func:`to_onnx`
    X : float array (n, features)
    layers : bool
        Also return, per weight layer, ``(name, acc, M_file, q_ort, q_engine)``: the accumulators,
        the float32 multipliers, and the layer's output requantized both ways from the same
        accumulators (to see where and by how much the two roundings differ).

    Returns
    -------
    int64 array (n, n_classes): the integer logits; with ``layers``, ``(logits, per_layer)``.
    """
    scales = {r["name"]: r for r in layer_scales(model, quantized)}
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch of flat inputs (n, features), got shape {X.shape}")
    qmin, qmax = int_range(8, bool(quantized.act_signed))
    q = quantized.quantize_input(X).astype(np.int64)
    per_layer = []
    for op in quantized.layers:
        if not isinstance(op, IntDense):
            q = np.asarray(op.forward(q), np.int64)  # no arithmetic: the same in onnxruntime
            continue
        out, acc, m_file = _ort_layer(op, q, scales[op.name], qmin, qmax, u8s8_saturation)
        if layers:
            exact = requantize(acc, op.M0, op.shift, op.z_y, op.act_bits, op.act_signed, op.relu).astype(np.int64)
            per_layer.append((op.name, acc, m_file, out, exact))
        q = out
    q = q.astype(np.int64)
    return (q, per_layer) if layers else q


def _ort_layer(op, q, r, qmin, qmax, u8s8_saturation):
    """One weight layer as onnxruntime's fused kernel computes it: (output, int32 accumulators, multipliers)."""
    conv = isinstance(op, IntConv2d)
    cols, shape = op.cols(q) if conv else (q, None)
    W = np.asarray(op.q_W, np.int64).reshape(op.q_W.shape[0], -1)
    if u8s8_saturation and conv:
        raise ValueError(f"{op.name}: u8s8_saturation is modelled for Dense layers only")
    if u8s8_saturation:
        acc = _saturating_products(cols, W) - op.z_x * W.sum(axis=1) + np.asarray(op.q_b, np.int64)
    else:
        # float64 matmul (BLAS) is exact here: every partial sum is an integer far below 2^53
        acc = np.rint((cols - op.z_x).astype(np.float64) @ W.T.astype(np.float64)).astype(np.int64)
        acc += np.asarray(op.q_b, np.int64)
    acc = np.clip(acc, -(2**31), 2**31 - 1).astype(np.int32)
    m_file = (np.float32(r["s_x"]) * r["s_w"]) / np.float32(r["s_y"])  # float32, as onnxruntime
    lo = max(qmin, op.z_y) if op.relu else qmin
    out = float32_requantize(acc, m_file, op.z_y, lo, qmax)
    if conv:
        n, ho, wo = shape
        out = out.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
    return out, acc, m_file
