"""labkit.quant.formats: NF4 (double quantization), MXFP4, NVFP4, FP8 and integer block formats, and their bits."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.quant import dequantize_groupwise, quantize_groupwise
from labkit.quant.formats import (
    NF4_CODE,
    BlockQuantized,
    bits_per_weight,
    dequantize_blocks,
    normal_float_code,
    quantize_blocks,
)

# QLoRA (Dettmers et al. 2023), the appendix listing the NormalFloat 4-bit data type: its 16 values as printed.
NF4_PAPER = [
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
]

ALL = [
    ("int4_g128", {}),
    ("int4_g64", {}),
    ("int3_g128", {}),
    ("int8", {}),
    ("int8", {"symmetric": True}),
    ("int4_g64", {"symmetric": True}),
    ("int8", {"block": "tensor"}),
    ("fp8_e4m3", {}),
    ("fp8_e4m3", {"block": "tensor"}),
    ("fp8_e4m3", {"block": 128}),
    ("mxfp4", {}),
    ("nvfp4", {}),
    ("nf4", {}),
    ("nf4", {"double_quant": False}),
]


def heavy(rng, shape=(48, 320), scale=0.05):
    return (rng.standard_t(4, shape) * scale).astype(np.float32)


def test_bits_per_weight_of_the_usual_formats():
    assert bits_per_weight("int4_g128") == 4.25  # 4 + (16 + 16) / 128
    assert bits_per_weight("int4_g64") == 4.5
    assert bits_per_weight("int4_g128", symmetric=True) == 4.125
    assert bits_per_weight("mxfp4") == 4.25  # 4 + 8 / 32
    assert bits_per_weight("nvfp4") == 4.5  # 4 + 8 / 16, + 32 bits per tensor
    assert bits_per_weight("nf4") == 4 + 8 / 64 + 32 / (64 * 256)  # QLoRA's 4.127
    assert round(bits_per_weight("nf4"), 3) == 4.127
    assert bits_per_weight("nf4", double_quant=False) == 4.5
    assert bits_per_weight("fp8_e4m3", 128) == 8.25
    assert bits_per_weight("int8", shape=(10, 64)) == 8 + 32 / 64
    assert bits_per_weight("int8", shape=(10, 64), symmetric=True) == 8 + 16 / 64
    assert bits_per_weight("nvfp4", shape=(4, 64)) == 4.5 + 32 / 256
    # a large matrix approaches the per-weight cost
    assert abs(bits_per_weight("nf4", shape=(4096, 4096)) - bits_per_weight("nf4")) < 1e-5


@pytest.mark.parametrize(("fmt", "kw"), ALL)
@pytest.mark.parametrize("shape", [(48, 320), (5, 77), (1, 16)])
def test_stored_bits_are_what_bits_per_weight_counts(rng, fmt, kw, shape):
    W = heavy(rng, shape)
    q = quantize_blocks(W, fmt, **kw)
    assert q.shape == shape and q.codes.shape == shape
    assert q.bits_per_weight == bits_per_weight(fmt, shape=shape, **kw)
    W_hat = q.dequantize()
    assert W_hat.dtype == np.float32 and W_hat.shape == shape
    np.testing.assert_array_equal(dequantize_blocks(q), W_hat)
    assert np.all(np.isfinite(W_hat))


@pytest.mark.parametrize(
    ("fmt", "kw", "max_rel_mse"),
    [
        ("int8", {}, 1e-3),
        ("fp8_e4m3", {}, 3e-3),
        ("int4_g64", {}, 0.03),
        ("int4_g128", {}, 0.04),
        ("mxfp4", {}, 0.04),
        ("nvfp4", {}, 0.02),
        ("nf4", {}, 0.02),
        ("int3_g128", {}, 0.15),
    ],
)
def test_errors_are_small_and_ordered_by_bits(rng, fmt, kw, max_rel_mse):
    W = heavy(rng, (64, 512))
    err = np.mean((quantize_blocks(W, fmt, **kw).dequantize().astype(np.float64) - W) ** 2) / np.mean(W**2.0)
    assert err < max_rel_mse


def test_nf4_code_table_is_the_papers():
    np.testing.assert_array_equal(NF4_CODE, np.array(NF4_PAPER, np.float32))
    # and it is what the definition (quantiles of N(0, 1), offset 1 - (1/30 + 1/32)/2) gives
    np.testing.assert_allclose(normal_float_code(4), NF4_PAPER, rtol=0, atol=2.5e-7)
    assert normal_float_code(4)[7] == 0.0 and normal_float_code(3).shape == (8,)


def test_nf4_codes_are_the_nearest_value(rng):
    W = heavy(rng, (8, 128))
    q = quantize_blocks(W, "nf4", double_quant=False)
    absmax = np.abs(W.astype(np.float64)).reshape(8, 2, 64).max(axis=2)
    np.testing.assert_array_equal(q.storage["absmax"][0], absmax.astype(np.float32))
    v = W.reshape(8, 2, 64) / absmax[:, :, None]
    chosen = NF4_CODE.astype(np.float64)[q.codes.reshape(8, 2, 64)]
    best = np.min(np.abs(v[..., None] - NF4_CODE.astype(np.float64)), axis=-1)
    np.testing.assert_allclose(np.abs(v - chosen), best, rtol=0, atol=1e-12)
    # each block's largest |w| is stored exactly (code ±1)
    top = np.abs(W.reshape(8, 2, 64)).argmax(axis=2)
    rows, blocks = np.indices(top.shape)
    assert np.all(np.abs(chosen[rows, blocks, top]) == 1.0)
    # a tie between two NF4 values goes to the lower one (bitsandbytes: x > midpoint goes up)
    code = NF4_CODE.astype(np.float64)
    Wt = np.array([[1.0, (code[8] + code[9]) / 2, (code[5] + code[6]) / 2] + [0.0] * 61])  # float64: exact ties
    assert quantize_blocks(Wt, "nf4", double_quant=False).codes[0, :3].tolist() == [15, 8, 5]


def test_nf4_double_quantization_of_the_absmax(rng):
    W = heavy(rng, (64, 1024))  # 1024 absmax constants: 4 second-level blocks of 256
    q = quantize_blocks(W, "nf4")
    s = q.storage
    assert s["absmax_e4m3"][0].shape == (64, 16) and s["absmax_e4m3"][0].dtype == np.uint8
    assert s["absmax_scale"][0].shape == (4,) and s["absmax_offset"][0].shape == (1,)
    absmax = np.abs(W.astype(np.float64)).reshape(64, 16, 64).max(axis=2)
    assert s["absmax_offset"][0][0] == np.float32(absmax.astype(np.float32).mean())
    dq = q.scale()
    centred = (absmax - s["absmax_offset"][0][0]).ravel().reshape(4, 256)
    bound = np.abs(centred).max(axis=1, keepdims=True) / 16  # E4M3: 3 mantissa bits, half a step <= 1/16
    assert np.all(np.abs(dq.ravel().reshape(4, 256) - absmax.ravel().reshape(4, 256)) <= bound + 1e-12)
    # the E4M3 codes are ml_dtypes' of the centred absmax over its block scale
    ratio = centred / s["absmax_scale"][0].astype(np.float64)[:, None]
    np.testing.assert_array_equal(
        s["absmax_e4m3"][0].ravel(), ratio.astype(np.float32).ravel().astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    )
    # decoding uses the double-quantized absmax: same codes as without, scales a little off
    plain = quantize_blocks(W, "nf4", double_quant=False)
    np.testing.assert_array_equal(q.codes, plain.codes)
    rel = np.mean((q.dequantize() - plain.dequantize()) ** 2.0) / np.mean(W**2.0)
    assert 0 < rel < 1e-3


@pytest.mark.parametrize(
    ("amax", "code", "x"),
    [
        (6.0, 127, 1.0),  # floor(log2 6) = 2, minus emax_elem 2: X = 2^0
        (8.0, 128, 2.0),  # 3 - 2 = 1
        (7.0, 127, 1.0),  # 2 - 2 = 0: 7 / 1 = 7 saturates to 6
        (0.3, 123, 2.0**-4),  # floor(log2 0.3) = -2: X = 2^-4, 0.3 · 16 = 4.8 -> 4 (e2m1)
        (1.0, 125, 0.25),
        (0.0, 0, 2.0**-127),  # an all-zero block: the smallest scale
    ],
)
def test_mx_shared_exponent_hand_cases(amax, code, x):
    W = np.zeros((1, 32), np.float32)
    W[0, 5] = amax
    W[0, 6] = -amax / 2
    q = quantize_blocks(W, "mxfp4")
    assert q.storage["scale_e8m0"][0].tolist() == [[code]]
    assert q.scale()[0, 0] == x
    W_hat = q.dequantize()
    elem = np.clip(np.array([amax, -amax / 2]) / x, -6, 6).astype(np.float32).astype(ml_dtypes.float4_e2m1fn)
    np.testing.assert_array_equal(W_hat[0, 5:7], elem.astype(np.float32) * np.float32(x))
    expected = {6.0: 6.0, 8.0: 8.0, 7.0: 6.0, 0.3: 0.25, 1.0: 1.0, 0.0: 0.0}[amax]
    assert W_hat[0, 5] == np.float32(expected)


def test_mxfp4_against_ml_dtypes(rng):
    W = heavy(rng, (16, 96), scale=3.0)
    q = quantize_blocks(W, "mxfp4")
    blocks = W.astype(np.float64).reshape(16, 3, 32)
    amax = np.abs(blocks).max(axis=2)
    shared = np.floor(np.log2(amax)) - 2
    np.testing.assert_array_equal(q.storage["scale_e8m0"][0], (shared + 127).astype(np.uint8))
    scaled = np.clip(blocks / 2.0 ** shared[..., None], -6, 6).astype(np.float32)
    ref = scaled.astype(ml_dtypes.float4_e2m1fn).view(np.uint8).reshape(16, 96)
    np.testing.assert_array_equal(q.codes, ref)


def test_nvfp4_two_level_scales(rng):
    W = heavy(rng, (8, 64))
    q = quantize_blocks(W, "nvfp4")
    amax = float(np.abs(W).max())
    t = q.storage["tensor_scale"][0][0]
    assert t == np.float32(amax / (448 * 6))
    block_amax = np.abs(W.astype(np.float64)).reshape(8, 4, 16).max(axis=2)
    s_ref = np.clip(block_amax / 6 / float(t), 2.0**-6, 448).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(q.storage["scale_e4m3"][0], s_ref.view(np.uint8))
    total = s_ref.astype(np.float64) * float(t)
    e = np.clip(W.reshape(8, 4, 16) / total[..., None], -6, 6).astype(np.float32).astype(ml_dtypes.float4_e2m1fn)
    np.testing.assert_array_equal(q.codes, e.view(np.uint8).reshape(8, 64))
    # the largest weight of the tensor sits in a block whose scale is 448 · t = amax / 6: it comes back
    i = np.unravel_index(np.abs(W).argmax(), W.shape)
    np.testing.assert_allclose(q.dequantize()[i], W[i], rtol=1e-6)


def test_fp8_per_row_scale_against_ml_dtypes(rng):
    W = heavy(rng, (6, 40))
    q = quantize_blocks(W, "fp8_e4m3")
    scale = (np.abs(W).max(axis=1, keepdims=True).astype(np.float64) / 448).astype(np.float32)
    np.testing.assert_array_equal(q.storage["scale"][0], scale)
    ref = (W / scale.astype(np.float64)).astype(np.float32).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    np.testing.assert_array_equal(q.codes, ref)
    np.testing.assert_allclose(np.abs(q.dequantize()).max(axis=1), np.abs(W).max(axis=1), rtol=1e-6)


def test_int_formats_are_groupwise_rtn_with_an_fp16_scale(rng):
    # groups holding both -8 and 7 steps of 2^-5: the scale 2^-5 is exact in float16, so the codes
    # are exactly those of labkit's group-wise quantizer
    ints = rng.integers(-8, 8, (4, 256))
    ints[:, ::64] = -8
    ints[:, 1::64] = 7
    W = (ints * 2.0**-5).astype(np.float32)
    q = quantize_blocks(W, "int4_g64")
    codes, scale, zp = quantize_groupwise(W, 4, 64)
    np.testing.assert_array_equal(q.codes, codes)
    np.testing.assert_array_equal(q.storage["scale"][0], scale.astype(np.float16))
    np.testing.assert_array_equal(q.storage["zero_point"][0], zp)
    np.testing.assert_array_equal(q.dequantize(), dequantize_groupwise(codes, scale, zp, 64))
    np.testing.assert_array_equal(q.dequantize(), W)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    bits=st.integers(2, 8),
    group=st.sampled_from([None, 16, 32, 48]),
    symmetric=st.booleans(),
)
def test_int_formats_error_within_half_a_step(seed, bits, group, symmetric):
    W = heavy(np.random.default_rng(seed), (5, 96))
    fmt = f"int{bits}" if group is None else f"int{bits}_g{group}"
    q = quantize_blocks(W, fmt, symmetric=symmetric)
    gi = np.zeros(96, int) if group is None else np.arange(96) // group
    step = q.storage["scale"][0].astype(np.float64)[:, gi]
    err = np.abs(q.dequantize().astype(np.float64) - W)
    assert np.all(err <= step / 2 + 1e-6 * np.abs(W) + 1e-9)  # min/max range: no clipping
    assert q.codes.dtype == (np.int8 if symmetric else np.uint8)


def test_constant_and_zero_matrices():
    for fmt in ["int4_g64", "fp8_e4m3", "mxfp4", "nvfp4", "nf4"]:
        Z = np.zeros((3, 64), np.float32)
        np.testing.assert_array_equal(quantize_blocks(Z, fmt).dequantize(), Z)
    C = np.full((2, 64), 0.75, np.float32)
    for fmt in ["int4_g64", "fp8_e4m3", "mxfp4", "nvfp4", "nf4"]:
        np.testing.assert_allclose(quantize_blocks(C, fmt, double_quant=False).dequantize(), C, rtol=1e-3)


def test_bad_input(rng):
    W = heavy(rng, (4, 64))
    with pytest.raises(ValueError, match="fmt must be"):
        quantize_blocks(W, "fp4")
    with pytest.raises(TypeError, match="fmt must be a format name"):
        quantize_blocks(W, 4)
    with pytest.raises(ValueError, match="fixes block=128"):
        quantize_blocks(W, "int4_g128", block=64)
    with pytest.raises(ValueError, match="block='tensor'"):
        quantize_blocks(W, "mxfp4", block="tensor")
    with pytest.raises(ValueError, match="block must be >= 1"):
        quantize_blocks(W, "nf4", block=0)
    with pytest.raises(TypeError, match="block must be an int"):
        quantize_blocks(W, "nf4", block=16.0)
    with pytest.raises(ValueError, match="2-D array"):
        quantize_blocks(W[0], "nf4")
    with pytest.raises(ValueError, match="finite"):
        quantize_blocks(np.full((2, 64), np.nan, np.float32), "nf4")
    with pytest.raises(TypeError, match="numpy array"):
        quantize_blocks(W.tolist(), "nf4")
    with pytest.raises(TypeError, match="symmetric must be True or False"):
        quantize_blocks(W, "int4", symmetric=1)
    with pytest.raises(ValueError, match="pass shape"):
        bits_per_weight("int8")
    with pytest.raises(ValueError, match="shape must be"):
        bits_per_weight("nf4", shape=(4,))
    with pytest.raises(TypeError, match="BlockQuantized"):
        dequantize_blocks(W)
    with pytest.raises(ValueError, match="float16 scale"):
        quantize_blocks(np.array([[0.0, 1e9]], np.float32), "int4")
    assert isinstance(quantize_blocks(W, "int5"), BlockQuantized)
