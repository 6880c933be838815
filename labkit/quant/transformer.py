"""Fake-quantized inference of a GPT: int weights, int activations at every linear layer's input.

:func:`quantize_gpt` returns a copy of a :class:`labkit.nn.GPT` whose linear layers are
:class:`QuantDense`. Each computes ``y = Q_a(x) Q_w(W)ᵀ + b`` in float32 on values that lie on the
integer grids (fake quantization: the numbers an integer kernel would produce, up to the float sum's
rounding), so the model's perplexity measures what the quantization costs. The choices:

* **Weights** (``weight_bits``): symmetric per-output-channel, ``s_W[o] = max_j |W[o, j]| / (2^(b−1) − 1)``,
  round half to even, narrow range (int8 ±127, int4 ±7); ``None`` keeps float weights.
* **Activations** (``act``):

  - ``None``: float inputs (weight-only quantization);
  - ``"per_tensor"``: *static*, one symmetric scale per layer fixed beforehand from the largest
    ``|x|`` seen on calibration windows (min-max); at run time values beyond it clamp;
  - ``"per_token"``: *dynamic*, each token (row of ``X``) gets the scale of its own ``max |x|``;
  - ``"llm_int8"``: LLM.int8() (Dettmers et al. 2022): input columns in which some ``|x|`` reaches
    ``threshold`` are multiplied in float, the rest in vector-wise int8 (per token × per output
    channel); ``weight_bits`` is then 8 by construction (:func:`labkit.quant.int8_decompose`).

* **Which layers** (``include_head``): the four linear layers of every block; the LM head stays in
  float unless asked (SmoothQuant and QuaRot leave it, and the embeddings, unquantized). The
  attention's own products (``q kᵀ``, ``P v``) stay in float: the KV cache is another topic.

A :class:`QuantDense` may also rotate its input online, ``x ↦ fwht(x)``, with ``Hᵀ`` folded into its
weights (``input_hadamard``; QuaRot's Hadamard before the MLP's down-projection, set up by
:func:`labkit.quant.rotate_gpt`). Quantization then acts on the rotated input, as it would in a
kernel.

The returned model is for evaluation (``forward``); it has no backward pass.
"""

from __future__ import annotations

import numpy as np

from ..nn import Dense
from ..validation import check_bool, check_int, check_real
from .affine import fake_quantize, qparams
from .fakequant import MinMaxObserver
from .llm_int8 import int8_decompose
from .pertoken import quantize_per_tensor, quantize_per_token
from .rotation import fwht

__all__ = ["ACT_MODES", "QuantDense", "quantize_gpt", "quantized_layers", "replace_linear", "float_column_fraction"]

ACT_MODES = (None, "per_tensor", "per_token", "llm_int8")


class QuantDense(Dense):
    """A linear layer ``y = Q_a(x) Q_w(W)ᵀ + b`` evaluated on fake-quantized values.

    Build it from a :class:`~labkit.nn.Dense` (``QuantDense.from_dense``); :func:`quantize_gpt` sets
    the quantizers. Attributes (read them, don't set them by hand):

    W, b : the float weights (out, in) and bias (out,), as in ``Dense``
    input_hadamard : bool
        The input is rotated online before anything else, ``x ↦ fwht(x · d)`` (``d`` =
        ``input_signs``, all +1 if None): the orthogonal ``Q = H diag(d)``, with ``W`` already holding
        ``W Qᵀ``; ``in`` must be a power of two.
    input_signs : ndarray of ±1 (in,), or None
    weight_bits : int or None
        Bits of the symmetric per-channel weight grid; ``W_hat`` the fake-quantized weights used in
        ``forward`` (None: ``W`` itself).
    act, act_bits : one of :data:`ACT_MODES`, int
    act_qparams : QParams or None
        The calibrated per-tensor scale of ``act="per_tensor"``.
    threshold : float
        LLM.int8()'s outlier threshold (``act="llm_int8"``).
    float_columns : list of (int, int)
        With ``act="llm_int8"``: per forward call, (columns kept in float, columns).
    """

    def __init__(self, in_features: int, out_features: int, rng=None, dtype=np.float32):
        super().__init__(in_features, out_features, rng=rng, dtype=dtype)
        self.input_hadamard = False
        self.input_signs = None
        self.weight_bits = None
        self.W_hat = None
        self.act, self.act_bits, self.act_qparams, self.threshold = None, 8, None, 6.0
        self.float_columns = []
        self._observer = None

    @classmethod
    def from_dense(cls, dense: Dense) -> QuantDense:
        """A float QuantDense computing what ``dense`` computes (copies of its W, b and online rotation)."""
        if not isinstance(dense, Dense):
            raise TypeError(f"expected a labkit.nn.Dense, got {type(dense).__name__}")
        layer = cls(dense.in_features, dense.out_features, dtype=dense.W.dtype)
        layer.W, layer.b = dense.W.copy(), dense.b.copy()
        layer.name = dense.name
        if isinstance(dense, QuantDense) and dense.input_hadamard:
            layer.rotate_input_online(dense.input_signs)
        return layer

    def rotate_input_online(self, signs=None) -> None:
        """Rotate the input at run time by ``Q = H diag(signs)`` (the caller folds ``Qᵀ`` into ``W``)."""
        n = self.in_features
        if n & (n - 1):
            raise ValueError(f"an online Hadamard needs a power-of-two input width, got {n}")
        if signs is not None:
            signs = np.asarray(signs)
            if signs.shape != (n,) or not np.all(np.abs(signs) == 1):
                raise ValueError(f"signs must be {n} values of +1 or -1, got shape {signs.shape}")
            signs = signs.astype(self.W.dtype)
        self.input_hadamard, self.input_signs = True, signs

    def transform_input(self, x: np.ndarray) -> np.ndarray:
        """The input the matrix product sees: ``fwht(x · d)`` with ``input_hadamard``, else ``x``."""
        if not self.input_hadamard:
            return x
        return fwht(x if self.input_signs is None else x * self.input_signs).astype(x.dtype)

    def forward(self, x, training=False):
        if training:
            raise ValueError(f"{self.name or 'QuantDense'} is for evaluation only (training=True was asked)")
        super().forward(x)  # the input check
        x = self.transform_input(x)
        if self._observer is not None:
            self._observer.observe(x)
        if self.act == "llm_int8":
            r = int8_decompose(x, self.W, self.threshold)
            self.float_columns.append((int(r.outlier_columns.size), self.in_features))
            return r.Y + self.b
        if self.act == "per_tensor":
            x = quantize_per_tensor(x, self.act_qparams).X_hat
        elif self.act == "per_token":
            x = quantize_per_token(x, self.act_bits).X_hat
        W = self.W if self.W_hat is None else self.W_hat
        return x @ W.T + self.b

    def backward(self, grad_out):
        raise NotImplementedError("QuantDense is for evaluating a quantized model; train the float model")

    def config(self):
        return {**super().config(), "weight_bits": self.weight_bits, "act": self.act, "act_bits": self.act_bits,
                "input_hadamard": self.input_hadamard}  # fmt: skip


def _parent_slots(model):
    """``{name: (parent, attribute)}`` for every linear layer of a GPT."""
    slots = {}
    for i, block in enumerate(model.blocks):
        slots[f"h{i}.attn.qkv"] = (block.attn, "qkv")
        slots[f"h{i}.attn.proj"] = (block.attn, "proj")
        slots[f"h{i}.mlp.fc1"] = (block.mlp, "fc1")
        slots[f"h{i}.mlp.fc2"] = (block.mlp, "fc2")
    slots["head"] = (model, "head")
    return slots


def replace_linear(model, name: str, layer: Dense) -> None:
    """Put ``layer`` in place of the GPT's linear layer ``name`` (attribute and ``children`` entry)."""
    slots = _parent_slots(model)
    if name not in slots:
        raise KeyError(f"no linear layer named {name!r}; linear layers: {', '.join(slots)}")
    parent, attr = slots[name]
    setattr(parent, attr, layer)
    parent.children = tuple((local, layer if local == attr else child) for local, child in parent.children)
    layer.name = name


def quantized_layers(model) -> list:
    """``[(name, QuantDense)]``: the GPT's linear layers that are QuantDense, in forward order."""
    return [(name, layer) for name, layer in model.weight_layers() if isinstance(layer, QuantDense)]


def _check_gpt(model):
    if not (hasattr(model, "blocks") and hasattr(model, "weight_layers") and hasattr(model, "copy")):
        raise TypeError(f"expected a labkit.nn.GPT (models.gpt, models.pretrained), got {type(model).__name__}")


def _check_calibration(calibration):
    if calibration is None:
        raise ValueError("act='per_tensor' needs calibration windows (windows, T) of training tokens")
    if not isinstance(calibration, np.ndarray) or calibration.ndim != 2 or calibration.dtype.kind not in "iu":
        got = (f"{calibration.dtype} of shape {calibration.shape}" if isinstance(calibration, np.ndarray)
               else type(calibration).__name__)  # fmt: skip
        raise TypeError(f"calibration must be a 2-D integer array of token windows (windows, T), got {got}")


def _calibrate_static(qmodel, layers, calibration, act_bits, batch_size):
    """Fix every layer's per-tensor activation range from the calibration windows' (float) inputs."""
    layers = list(layers)
    for layer in layers:
        layer._observer = MinMaxObserver()
    for i in range(0, len(calibration), batch_size):
        qmodel.forward(calibration[i : i + batch_size])
    for layer in layers:
        layer.act_qparams = layer._observer.qparams(act_bits, symmetric=True)
        layer._observer = None


def quantize_gpt(
    model,
    weight_bits: int | None = 8,
    act: str | None = None,
    act_bits: int = 8,
    calibration: np.ndarray | None = None,
    threshold: float = 6.0,
    include_head: bool = False,
    batch_size: int = 32,
):
    """A fake-quantized copy of a GPT (the model itself is left unchanged).

    Parameters
    ----------
    model : labkit.nn.GPT
        Float, or transformed by :func:`~labkit.quant.smooth_gpt` / :func:`~labkit.quant.rotate_gpt`.
    weight_bits : int in 2..8, or None
        Symmetric per-output-channel weight bits; None keeps the float weights.
    act : None, "per_tensor", "per_token" or "llm_int8"
        How each linear layer's input is quantized (see the module docstring).
    act_bits : int in 2..8
        Bits of the activation grid for "per_tensor" and "per_token" (symmetric, narrow range).
    calibration : ndarray of int, shape (windows, T), optional
        Token windows (from the training split) that fix the static scales; required for
        ``act="per_tensor"``, not used otherwise. Each layer's range is observed on the float model's
        (transformed) input.
    threshold : float > 0
        LLM.int8()'s outlier threshold (6.0 in the paper).
    include_head : bool
        Quantize the LM head too (default: it stays in float).
    batch_size : int
        Windows per calibration forward pass.

    Returns
    -------
    labkit.nn.GPT
        A copy whose quantized linear layers are :class:`QuantDense`.

    Raises
    ------
    TypeError, ValueError
        A model that is not a GPT, an unknown ``act``, bits out of range, ``act="per_tensor"``
        without calibration windows, ``act="llm_int8"`` with ``weight_bits`` other than 8.
    """
    _check_gpt(model)
    if weight_bits is not None:
        weight_bits = check_int("weight_bits", weight_bits, lo=2, hi=8)
    if act not in ACT_MODES:
        raise ValueError(f"act must be one of {', '.join(map(repr, ACT_MODES))}, got {act!r}")
    act_bits = check_int("act_bits", act_bits, lo=2, hi=8)
    threshold = check_real("threshold", threshold, 0.0, lo_open=True)
    include_head = check_bool("include_head", include_head)
    batch_size = check_int("batch_size", batch_size, lo=1)
    if act == "llm_int8" and weight_bits != 8:
        raise ValueError(f"act='llm_int8' multiplies int8 weights (vector-wise): use weight_bits=8, got {weight_bits}")
    if act == "per_tensor":
        _check_calibration(calibration)

    qmodel = model.copy()
    names = [n for n, _ in qmodel.weight_layers() if include_head or n != "head"]
    layers = {}
    for name in names:
        layers[name] = QuantDense.from_dense(qmodel[name])
        replace_linear(qmodel, name, layers[name])

    if act == "per_tensor":
        _calibrate_static(qmodel, layers.values(), calibration, act_bits, batch_size)

    for layer in layers.values():
        layer.act, layer.act_bits, layer.threshold = act, act_bits, threshold
        if weight_bits is not None and act != "llm_int8":
            layer.weight_bits = weight_bits
            layer.W_hat = fake_quantize(layer.W, qparams(layer.W, weight_bits, symmetric=True, axis=0),
                                        axis=0).astype(layer.W.dtype)  # fmt: skip
    return qmodel


def float_column_fraction(model) -> dict:
    """With ``act="llm_int8"``: per layer, the fraction of input columns kept in float, over the forward calls so far.

    Returns
    -------
    dict
        ``{name: fraction}`` (columns in float summed over calls / columns summed over calls), for
        every QuantDense that ran LLM.int8(); ``{"all": ...}`` pools the layers.
    """
    _check_gpt(model)
    out, tot_f, tot_n = {}, 0, 0
    for name, layer in quantized_layers(model):
        if layer.act == "llm_int8" and layer.float_columns:
            f = sum(c for c, _ in layer.float_columns)
            n = sum(n for _, n in layer.float_columns)
            out[name] = f / n
            tot_f, tot_n = tot_f + f, tot_n + n
    if tot_n:
        out["all"] = tot_f / tot_n
    return out
