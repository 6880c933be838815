"""Quantization: uniform affine/symmetric quantizers, calibration, fake quantization with the STE for
QAT, an integer-only inference engine, k-means weight sharing, and calibrated one-shot methods
(group-wise int4, GPTQ, AWQ).

One idea per file: ``affine`` (qparams, quantize, dequantize, calibration), ``fakequant`` (STE,
observers, QAT callback, FakeQuant layer), ``lsq`` (learned step sizes for QAT), ``integer``
(fixed-point requantization, quantize_model, the integer engine), ``kmeans`` (weight sharing with
codebook fine-tuning), ``groupwise`` (per-group scales, int4 packing), ``gptq`` (the OBS step, OBQ,
GPTQ), ``awq`` (activation-aware scales and their folding). Every public name is importable from ``labkit.quant``.
"""

from ..qarith import (  # the fixed-point arithmetic of the integer engine, at the ground floor
    ROUNDINGS,
    fixed_point_multiply,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    rounding_right_shift,
    saturating_rounding_doubling_high_mul,
)
from .affine import METHODS, QParams, dequantize, fake_quantize, int_range, qparams, quantization_error, quantize
from .awq import AWQResult, activation_scale, awq_quantize, awq_scales, awq_search, fold_awq_scales
from .fakequant import (
    FakeQuant,
    MinMaxObserver,
    MovingAverageObserver,
    QATCallback,
    fake_quantize_backward,
    fake_quantize_weights,
    ste_mask,
)
from .gptq import GPTQResult, gptq_quantize, hessian, layer_output_error, obq_quantize_row, obs_eliminate, obs_update
from .groupwise import dequantize_groupwise, groupwise_params, pack_int4, quantize_groupwise, unpack_int4
from .integer import (
    IntConv2d,
    IntDense,
    IntegerModel,
    int8_engine_bytes,
    integer_dense,
    quantize_model,
    simulate_float64,
)
from .kmeans import CodebookFinetune, codebook_gradient, kmeans_assign, kmeans_quantize, kmeans_quantize_model
from .lsq import lsq_backward, lsq_fake_quantize, lsq_grad_scale, lsq_init_step

__all__ = [
    "METHODS",
    "QParams",
    "int_range",
    "qparams",
    "quantize",
    "dequantize",
    "fake_quantize",
    "quantization_error",
    "ste_mask",
    "fake_quantize_backward",
    "MinMaxObserver",
    "MovingAverageObserver",
    "QATCallback",
    "FakeQuant",
    "fake_quantize_weights",
    "lsq_init_step",
    "lsq_fake_quantize",
    "lsq_backward",
    "lsq_grad_scale",
    "quantize_multiplier",
    "rounding_right_shift",
    "ROUNDINGS",
    "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot",
    "fixed_point_multiply",
    "requantize",
    "integer_dense",
    "IntDense",
    "IntConv2d",
    "IntegerModel",
    "quantize_model",
    "simulate_float64",
    "int8_engine_bytes",
    "kmeans_quantize",
    "kmeans_assign",
    "codebook_gradient",
    "kmeans_quantize_model",
    "CodebookFinetune",
    # lab 09: calibrated one-shot quantization (gptq, awq, groupwise)
    "gptq_quantize",
    "GPTQResult",
    "hessian",
    "obs_update",
    "obs_eliminate",
    "obq_quantize_row",
    "layer_output_error",
    "awq_scales",
    "awq_search",
    "awq_quantize",
    "AWQResult",
    "activation_scale",
    "fold_awq_scales",
    "quantize_groupwise",
    "dequantize_groupwise",
    "groupwise_params",
    "pack_int4",
    "unpack_int4",
]
