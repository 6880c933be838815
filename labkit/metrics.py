"""Counting what a model costs: parameters, non-zeros, sparsity, MACs and bytes.

Sizes are exact byte counts of a storage format, not estimates from parameter counts. Formats
beyond the basic ones are registered by the modules that define them (``register_size_format``),
so this module never imports the layers above it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "count_params",
    "count_nonzero",
    "sparsity",
    "layer_sparsity",
    "macs",
    "size_bytes",
    "register_size_format",
    "SIZE_FORMATS",
    "accuracy",
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


#: name → function(model) -> int. Other modules add theirs with :func:`register_size_format`.
SIZE_FORMATS = {"dense_fp32": _dense_fp32, "csr": _csr_fp32, "int8": _int8}


def register_size_format(name: str, fn) -> None:
    """Make ``size_bytes(model, name)`` call ``fn(model)``."""
    SIZE_FORMATS[name] = fn


def size_bytes(model, fmt: str = "dense_fp32") -> int:
    """Exact size in bytes of ``model`` stored in format ``fmt``.

    Formats: ``dense_fp32`` (every parameter as float32), ``csr`` (float32 values, int32 indices),
    ``int8`` (int8 weights + per-channel float32 scales + int32 biases), and those registered by
    other modules (``labkit.codec`` adds the compressed formats).
    """
    if fmt not in SIZE_FORMATS:
        raise ValueError(f"unknown size format {fmt!r}; known: {', '.join(sorted(SIZE_FORMATS))}")
    return int(SIZE_FORMATS[fmt](model))


def accuracy(y_true, y_pred) -> float:
    """Fraction of equal entries."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"accuracy needs two non-empty arrays of one shape, got {y_true.shape} and {y_pred.shape}")
    return float((y_true == y_pred).mean())
