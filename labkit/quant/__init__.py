"""Quantization: uniform affine/symmetric quantizers, calibration, fake quantization with the STE for
QAT, an integer-only inference engine, k-means weight sharing, and calibrated one-shot methods
(group-wise int4, GPTQ, AWQ), and what language models add: low-bit number formats, HQQ, and the
methods for activation outliers (SmoothQuant, LLM.int8(), rotations, per-token quantizers).

One idea per file: ``affine`` (qparams, quantize, dequantize, calibration), ``fakequant`` (STE,
observers, QAT callback, FakeQuant layer), ``lsq`` (learned step sizes for QAT), ``integer``
(fixed-point requantization, quantize_model, the integer engine), ``kmeans`` (weight sharing with
codebook fine-tuning), ``groupwise`` (per-group scales, int4 packing), ``gptq`` (the OBS step, OBQ,
GPTQ), ``awq`` (activation-aware scales and their folding), ``minifloat`` (FP8 / FP4 / E8M0 element
rounding), ``formats`` (block formats NF4, MXFP4, NVFP4, FP8, int-gG and their bits per weight),
``hqq`` (half-quadratic quantization), ``smoothquant`` (smoothing scales and their folds),
``llm_int8`` (the outlier decomposition), ``rotation`` (Hadamard transforms and where they fold),
``pertoken`` (activation and KV-cache quantizers), and on a whole GPT: ``outliers`` (activation
statistics of every linear layer's input), ``transformer`` (fake-quantized GPT inference: W8/W4,
static and dynamic activations, LLM.int8()), ``gpt_transforms`` (SmoothQuant, LayerNorm folds and
rotations applied to a GPT, output unchanged). Every public name is importable from ``labkit.quant``.
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
from . import formats
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
from .formats import (
    NF4_CODE,
    BlockQuantized,
    bits_per_weight,
    dequantize_blocks,
    normal_float_code,
    quantize_blocks,
)
from .gpt_transforms import SMOOTHED_PAIRS, amplify_channel, fold_layernorms, rotate_gpt, smooth_gpt, smoothing_scales
from .gptq import GPTQResult, gptq_quantize, hessian, layer_output_error, obq_quantize_row, obs_eliminate, obs_update
from .groupwise import dequantize_groupwise, groupwise_params, pack_int4, quantize_groupwise, unpack_int4
from .hqq import HQQResult, hqq_quantize, shrink_lp
from .integer import (
    IntConv2d,
    IntDense,
    IntegerModel,
    IntFlatten,
    IntLookup,
    IntMaxPool,
    IntOp,
    IntReLU,
    IntReshape,
    int8_engine_bytes,
    integer_dense,
    quantize_model,
    simulate_float64,
)
from .kmeans import CodebookFinetune, codebook_gradient, kmeans_assign, kmeans_quantize, kmeans_quantize_model
from .layerwise import AWQOptions, Compressed, GPTQOptions, RTNOptions, compress_layerwise
from .llm_int8 import Int8DecomposeResult, int8_decompose
from .lsq import lsq_backward, lsq_fake_quantize, lsq_grad_scale, lsq_init_step
from .minifloat import ELEMENT_FORMATS, bits_to_float, float_to_bits, format_grid, format_info, round_to_format
from .outliers import Activation, InputStats, activation_stats, attention_to_first, kurtosis
from .pertoken import ActQuant, quantize_kv, quantize_per_tensor, quantize_per_token
from .rotation import (
    block_diagonal,
    fold_layernorm_affine,
    fold_rotation,
    fwht,
    hadamard,
    mean_preserving_rotation,
    randomized_hadamard,
    rotate_input_side,
    rotate_output_side,
)
from .smoothquant import fold_smoothquant_layernorm, fold_smoothquant_linear, smoothquant_scales
from .transformer import ACT_MODES, QuantDense, float_column_fraction, quantize_gpt, quantized_layers, replace_linear

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
    "kmeans_quantize",
    "kmeans_assign",
    "codebook_gradient",
    "kmeans_quantize_model",
    "CodebookFinetune",
    # lab 09: calibrated one-shot quantization (gptq, awq, groupwise), layer by layer
    "compress_layerwise",
    "Compressed",
    "RTNOptions",
    "GPTQOptions",
    "AWQOptions",
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
    # labs 11-12: number formats of language models (minifloat, formats)
    "formats",
    "ELEMENT_FORMATS",
    "format_info",
    "format_grid",
    "round_to_format",
    "float_to_bits",
    "bits_to_float",
    "NF4_CODE",
    "normal_float_code",
    "BlockQuantized",
    "quantize_blocks",
    "dequantize_blocks",
    "bits_per_weight",
    # lab 12: weight-only quantization without calibration data (hqq)
    "hqq_quantize",
    "HQQResult",
    "shrink_lp",
    # lab 11: activation outliers in transformers (smoothquant, llm_int8, rotation, pertoken)
    "smoothquant_scales",
    "fold_smoothquant_layernorm",
    "fold_smoothquant_linear",
    "int8_decompose",
    "Int8DecomposeResult",
    "hadamard",
    "fwht",
    "randomized_hadamard",
    "mean_preserving_rotation",
    "block_diagonal",
    "rotate_input_side",
    "rotate_output_side",
    "fold_rotation",
    "fold_layernorm_affine",
    "ActQuant",
    "quantize_per_token",
    "quantize_per_tensor",
    "quantize_kv",
    # lab 11: the same methods on a whole GPT (outliers, transformer, gpt_transforms)
    "InputStats",
    "Activation",
    "activation_stats",
    "attention_to_first",
    "kurtosis",
    "ACT_MODES",
    "QuantDense",
    "quantize_gpt",
    "quantized_layers",
    "replace_linear",
    "float_column_fraction",
    "SMOOTHED_PAIRS",
    "smoothing_scales",
    "smooth_gpt",
    "fold_layernorms",
    "rotate_gpt",
    "amplify_channel",
]
