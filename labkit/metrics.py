"""Counting what a model costs: parameters, non-zeros, sparsity, MACs and bytes; and how well it scores.

Sizes are exact byte counts of a storage format, not estimates from parameter counts. The basic
formats are computed here; the formats of the compressed file (``labkit.codec``) and of the integer
engine (``labkit.quant``) are computed by the modules that define them. :data:`PROVIDED_FORMATS`
names each of those with its module and function, and :func:`size_bytes` imports the module the
first time such a format is asked for: no module registers anything when it is imported, and
this module imports nothing above it at import time. ``register_size_format`` adds a format of
your own.

For a classifier the score is :func:`accuracy`; for a language model it is the perplexity
(:func:`perplexity`), computed from the mean negative log-likelihood of each held-out window
(:func:`window_nll`), which is also what a bootstrap over windows resamples.
"""

from __future__ import annotations

import importlib

import numpy as np

from .data import lm_windows
from .softmax import log_softmax
from .validation import check_array, check_int

__all__ = [
    "count_params",
    "count_nonzero",
    "sparsity",
    "layer_sparsity",
    "macs",
    "size_bytes",
    "register_size_format",
    "int4_group_bytes",
    "SIZE_FORMATS",
    "PROVIDED_FORMATS",
    "size_formats",
    "accuracy",
    "window_nll",
    "perplexity",
]


def count_params(model, weights_only: bool = False) -> int:
    """Number of parameters (weights and biases; only weights if ``weights_only``)."""
    return int(sum(a.size for k, a in model.parameters().items() if not weights_only or k.endswith(".W")))


def count_nonzero(model, weights_only: bool = False) -> int:
    """Number of parameters that are not exactly zero."""
    return int(sum(np.count_nonzero(a) for k, a in model.parameters().items() if not weights_only or k.endswith(".W")))


def sparsity(model, weights_only: bool = True) -> float:
    """Fraction of (weight) parameters that are exactly zero, in [0, 1]."""
    total = count_params(model, weights_only)
    return 1.0 - count_nonzero(model, weights_only) / total if total else 0.0


def layer_sparsity(model) -> dict:
    """``{layer_name: fraction of zero weights}`` for every weight layer."""
    return {name: 1.0 - np.count_nonzero(layer.W) / layer.W.size for name, layer in model.weight_layers()}


def macs(model, input_shape=None, skip_zeros: bool = False) -> int:
    """Multiply-accumulates per sample of a forward pass.

    With ``skip_zeros``, a weight that is exactly zero costs nothing (the ideal for a sparse kernel).
    """
    shape = tuple(input_shape or model.input_shape or ())
    if not shape:
        raise ValueError("macs needs an input_shape (the model has none)")
    total = 0
    for layer in model.layers:
        m = layer.macs(shape)
        if skip_zeros and m and "W" in layer.param_names:
            m = int(round(m * np.count_nonzero(layer.W) / layer.W.size))
        total += m
        shape = layer.output_shape(shape)
    return int(total)


def _dense_fp32(model) -> int:
    return 4 * count_params(model)


def _csr_fp32(model) -> int:
    """CSR per weight matrix (rows = output units): float32 values, int32 column indices,
    int32 row pointers (rows + 1); biases dense float32."""
    total = 0
    for _, layer in model.weight_layers():
        rows = layer.W.shape[0]
        nnz = int(np.count_nonzero(layer.W))
        total += 4 * nnz + 4 * nnz + 4 * (rows + 1) + 4 * layer.b.size
    return total


def _int8(model) -> int:
    """int8 weights with one float32 scale per output channel (symmetric, zero point 0),
    int32 biases: what ``labkit.quant.quantize_model`` stores for weights."""
    total = 0
    for _, layer in model.weight_layers():
        total += layer.W.size + 4 * layer.W.shape[0] + 4 * layer.b.size
    return total


def _is_2_4(W2: np.ndarray) -> bool:
    return W2.shape[1] % 4 == 0 and bool(np.all(np.count_nonzero(W2.reshape(W2.shape[0], -1, 4), axis=2) <= 2))


def _nm_2_4(model) -> int:
    """2:4 storage (``labkit.kernels.NM24``) for each weight matrix (rows = output units, a Conv2d's
    in_c·k·k columns) that is 2:4 sparse: float32 values (in/2 per row) + 2-bit positions (4 bits per
    group of 4, ``ceil(in/8)`` bytes per row); a layer that is not 2:4 (or whose in is not a multiple
    of 4) stays dense float32. Biases dense float32."""
    total = 0
    for _, layer in model.weight_layers():
        W2 = layer.W.reshape(layer.W.shape[0], -1)
        rows, cols = W2.shape
        total += (4 * rows * (cols // 2) + rows * -(-cols // 8)) if _is_2_4(W2) else 4 * W2.size
        total += 4 * layer.b.size
    return total


def int4_group_bytes(model, group_size=None) -> int:
    """Bytes of every weight matrix (out, in) as group-wise int4 (``labkit.quant.quantize_groupwise``
    with bits=4, ``labkit.kernels.gemv_int4`` layout): two weights per byte (``ceil(in/2)`` per row),
    per row and group one float32 scale and one 4-bit zero point (``ceil(G/2)`` bytes per row,
    ``G = ceil(in / group_size)``, one group per row if None); biases float32."""
    total = 0
    for _, layer in model.weight_layers():
        rows, cols = layer.W.shape[0], int(np.prod(layer.W.shape[1:]))
        g = cols if group_size is None else min(int(group_size), cols)
        groups = -(-cols // g)
        total += rows * (-(-cols // 2)) + rows * groups * 4 + rows * (-(-groups // 2)) + 4 * layer.b.size
    return total


#: name → function(model) -> int: the formats computed here, and those added with :func:`register_size_format`.
SIZE_FORMATS = {
    "dense_fp32": _dense_fp32,
    "csr": _csr_fp32,
    "int8": _int8,
    "2:4": _nm_2_4,
    "int4": lambda model: int4_group_bytes(model, None),
    "int4_g32": lambda model: int4_group_bytes(model, 32),
    "int4_g64": lambda model: int4_group_bytes(model, 64),
    "int4_g128": lambda model: int4_group_bytes(model, 128),
}

#: name → (module, function, keyword arguments): formats computed by the modules above this one,
#: imported by name when first asked for.
PROVIDED_FORMATS = {
    "kmeans": ("labkit.codec.modelfile", "compressed_size", {"huffman": False}),
    "deep_compression": ("labkit.codec.modelfile", "compressed_size", {"huffman": True}),
    "zip_fp32": ("labkit.codec.modelfile", "zipped_size", {}),
    "int8_engine": ("labkit.quant.integer", "int8_engine_bytes", {}),
}


def register_size_format(name: str, fn) -> None:
    """Make ``size_bytes(model, name)`` call ``fn(model)``."""
    if not isinstance(name, str):
        raise TypeError(f"a size format's name must be a str, got {type(name).__name__}")
    if not callable(fn):
        raise TypeError(f"a size format needs a function fn(model) -> int, got {type(fn).__name__}")
    SIZE_FORMATS[name] = fn


def size_formats() -> list:
    """The names :func:`size_bytes` accepts, sorted."""
    return sorted(set(SIZE_FORMATS) | set(PROVIDED_FORMATS))


def _format_function(fmt: str):
    if fmt in SIZE_FORMATS:
        return SIZE_FORMATS[fmt]
    if fmt in PROVIDED_FORMATS:
        module, name, kwargs = PROVIDED_FORMATS[fmt]
        fn = getattr(importlib.import_module(module), name)
        return lambda model: fn(model, **kwargs)
    raise ValueError(f"unknown size format {fmt!r}; known: {', '.join(size_formats())}")


def size_bytes(model, fmt: str = "dense_fp32") -> int:
    """Exact size in bytes of ``model`` stored in format ``fmt``.

    Formats: ``dense_fp32`` (every parameter as float32), ``csr`` (float32 values, int32 indices),
    ``int8`` (int8 weights + per-channel float32 scales + int32 biases), ``2:4`` (float32 values +
    2-bit positions), ``int4``/``int4_g32``/``int4_g64``/``int4_g128`` (packed int4 weights + float32
    scale and 4-bit zero point per row or group, see :func:`int4_group_bytes`); ``kmeans``,
    ``deep_compression`` and ``zip_fp32`` (the compressed file of ``labkit.codec``); ``int8_engine``
    (an ``IntegerModel`` of ``labkit.quant.quantize_model``); and those added with
    :func:`register_size_format`.
    """
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a str naming a size format, got {type(fmt).__name__}")
    return int(_format_function(fmt)(model))


def accuracy(y_true, y_pred) -> float:
    """Fraction of equal entries."""
    y_true = check_array(y_true, "y_true", non_empty=True)
    y_pred = check_array(y_pred, "y_pred", non_empty=True)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"accuracy needs two non-empty arrays of one shape, got {y_true.shape} and {y_pred.shape}")
    return float((y_true == y_pred).mean())


def window_nll(model, tokens, context: int | None = None, batch_size: int = 64) -> np.ndarray:
    """Mean negative log-likelihood of the next token (nats per token) in each held-out window.

    ``tokens`` is cut into non-overlapping windows of ``context`` tokens (:func:`labkit.data.lm_windows`);
    the model reads each window after a BOS token (``model.bos``) and predicts every one of its tokens,
    so window i scores tokens ``[i·context, (i+1)·context)``, each with only its own window's earlier
    tokens as history. The last ``len(tokens) % context`` tokens (fewer than one window) are not
    scored. Windows run through the model in batches of ``batch_size``, in the model's own dtype
    (float32 for the shipped model).

    Parameters
    ----------
    model : labkit.nn.GPT (anything with ``forward(ids) -> logits``, ``context`` and ``bos``)
    tokens : ndarray of int, shape (n,), n >= context
    context : int, optional
        Window length, at most ``model.context`` (default: ``model.context``).
    batch_size : int

    Returns
    -------
    ndarray of float64, shape (n // context,)
        One mean NLL per window, in window order. All windows have the same number of tokens, so
        their mean is the mean NLL per token, and resampling windows (``labkit.stats``) gives an
        interval that respects the dependence between neighbouring tokens.
    """
    context = model.context if context is None else check_int("context", context, lo=1, hi=model.context)
    batch_size = check_int("batch_size", batch_size, lo=1)
    inputs, targets = lm_windows(tokens, context, model.bos)
    out = np.empty(len(inputs), dtype=np.float64)
    for i in range(0, len(inputs), batch_size):
        logp = log_softmax(model.forward(inputs[i : i + batch_size]))
        picked = np.take_along_axis(logp, targets[i : i + batch_size, :, None], axis=-1)[..., 0]
        out[i : i + batch_size] = -picked.mean(axis=1, dtype=np.float64)
    return out


def perplexity(model, tokens, context: int | None = None, batch_size: int = 64) -> float:
    """Perplexity ``exp(mean NLL per token)`` of a language model on held-out tokens.

    The windows and the scored tokens are those of :func:`window_nll` (non-overlapping windows of
    ``context`` tokens, each opened by BOS; a last stretch shorter than a window is not scored), and
    the result is ``exp(window_nll(...).mean())``. A model that gives every one of V tokens the same
    probability has perplexity V; lower is better.
    """
    return float(np.exp(window_nll(model, tokens, context, batch_size).mean()))
