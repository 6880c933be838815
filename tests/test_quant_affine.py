"""labkit.quant.affine: qparams, quantize, dequantize, calibration methods, bad input."""

import numpy as np
import pytest

from labkit.quant import dequantize, fake_quantize, int_range, qparams, quantization_error, quantize


def test_int_range():
    assert int_range(8, True) == (-128, 127)
    assert int_range(8, False) == (0, 255)
    assert int_range(1, False) == (0, 1)
    assert int_range(16, True) == (-32768, 32767)
    assert int_range(4, True) == (-8, 7)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 12, 16])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("lo,hi", [(-1.0, 3.0), (0.5, 2.0), (-7.0, -0.25), (-1e-3, 1e4)])
def test_affine_zero_is_exact_and_range_contains_zero(bits, signed, lo, hi, rng):
    x = rng.uniform(lo, hi, size=500).astype(np.float32)
    s, z = qparams(x, bits, signed=signed)
    assert isinstance(s, np.float32) and s > 0
    assert isinstance(z, int)
    qmin, qmax = int_range(bits, signed)
    assert qmin <= z <= qmax
    assert quantize(np.float32(0.0), s, z, bits, signed) == z  # real 0 -> an exact integer
    assert dequantize(quantize(np.zeros(3, np.float32), s, z, bits, signed), s, z).tolist() == [0.0, 0.0, 0.0]
    # real range covered: [s (qmin - z), s (qmax - z)] contains min(x, 0) and max(x, 0) up to one step
    assert s * (qmin - z) <= min(x.min(), 0) + s and s * (qmax - z) >= max(x.max(), 0) - s


def test_affine_formula_minmax():
    x = np.array([-1.0, 0.0, 2.0, 3.0], np.float32)
    s, z = qparams(x, 8)
    assert s == np.float32(4.0 / 255)
    assert z == int(np.rint(1.0 / np.float64(s)))  # qmin - round(lo / s) = 0 - round(-1 / s)
    q = quantize(x, s, z)
    assert q.dtype == np.uint8 and q[0] == 0 and q[-1] == 255


def test_symmetric_signed_and_unsigned():
    x = np.array([-0.5, 0.1, 2.54], np.float32)
    s, z = qparams(x, 8, symmetric=True)
    assert z == 0 and s == np.float32(2.54 / 127)
    q = quantize(x, s, z, 8, signed=True)
    assert q.dtype == np.int8 and q.tolist() == [-25, 5, 127]
    s2, z2 = qparams(x, 8, symmetric=True, signed=False)
    assert z2 == 128 and s2 == s


def test_round_half_to_even_then_clamp():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 300.0, -300.0, np.inf, -np.inf], np.float32)
    q = quantize(x, 1.0, 0, 8, signed=True)
    assert q.tolist() == [0, 2, 2, 0, -2, -2, 127, -128, 127, -128]
    assert quantize(np.array([0.25, 0.75]), np.float32(0.5), 3, 4).tolist() == [3, 5]  # 0.5 -> 0, 1.5 -> 2


def test_dtypes_by_bits():
    x = np.linspace(-1, 1, 11).astype(np.float32)
    assert quantize(x, 0.1, 0, 4, True).dtype == np.int8
    assert quantize(x, 0.1, 10, 12, False).dtype == np.uint16
    assert quantize(x, 0.1, 0, 16, True).dtype == np.int16


def test_roundtrip_error_at_most_half_step(rng):
    x = rng.standard_normal((64, 32)).astype(np.float32)
    for bits in (2, 4, 8):
        s, z = qparams(x, bits)
        xr = dequantize(quantize(x, s, z, bits), s, z)
        assert xr.dtype == np.float32
        assert np.abs(xr - x).max() <= s / 2 * (1 + 1e-5)


def test_dequantize_formula_exact(rng):
    q = rng.integers(0, 256, 1000).astype(np.uint8)
    s = np.float32(0.0123)
    out = dequantize(q, s, 17)
    expected = (np.float64(s) * (q.astype(np.float64) - 17)).astype(np.float32)
    assert out.dtype == np.float32 and np.array_equal(out, expected)


def test_error_shrinks_with_bits(rng):
    x = rng.standard_normal(10_000).astype(np.float32)
    errs = [quantization_error(x, b) for b in (2, 3, 4, 6, 8)]
    assert all(a > b for a, b in zip(errs, errs[1:]))
    assert errs[-2] / errs[-1] == pytest.approx(16, rel=0.2)  # 2 bits more: step /4, MSE /16


def test_per_channel_shapes_and_values(rng):
    W = rng.standard_normal((5, 7)).astype(np.float32) * np.arange(1, 6, dtype=np.float32)[:, None]
    s, z = qparams(W, 8, symmetric=True, axis=0)
    assert s.shape == (5,) and s.dtype == np.float32 and z.shape == (5,) and np.all(z == 0)
    assert np.allclose(s, np.abs(W).max(axis=1) / 127)
    s1, _ = qparams(W, 8, symmetric=True, axis=-1)
    assert s1.shape == (7,)
    q = quantize(W, s, z, 8, True, axis=0)
    assert np.all(np.abs(q).max(axis=1) == 127)
    Wr = dequantize(q, s, z, axis=0)
    assert np.all(np.abs(Wr - W) <= s[:, None] / 2 * (1 + 1e-5))
    # per-channel never worse than per-tensor on a layer whose rows differ in scale
    assert quantization_error(W, 4, True, 0) < quantization_error(W, 4, True)


def test_per_channel_4d_axis(rng):
    W = rng.standard_normal((3, 2, 5, 5)).astype(np.float32)
    s, z = qparams(W, 8, axis=0)
    q = quantize(W, s, z, 8, False, axis=0)
    for c in range(3):
        sc, zc = qparams(W[c], 8)
        assert sc == s[c] and zc == z[c]
        assert np.array_equal(q[c], quantize(W[c], sc, zc, 8, False))


def test_percentile_and_mse_clip_outliers(rng):
    x = rng.standard_normal(20_000).astype(np.float32)
    x[:5] = 60.0  # a few huge activations
    s_mm, _ = qparams(x, 8)
    s_pc, _ = qparams(x, 8, method="percentile", percentile=99.9)
    s_mse, _ = qparams(x, 8, method="mse")
    assert s_pc < s_mm / 5 and s_mse < s_mm
    e = {m: quantization_error(x, 4, method=m) for m in ("minmax", "percentile", "mse")}
    assert e["mse"] <= e["minmax"] and e["mse"] <= e["percentile"] * (1 + 1e-6)


def test_mse_never_worse_than_minmax(rng):
    for _ in range(5):
        x = rng.laplace(size=(4, 300)).astype(np.float32)
        for bits in (2, 4):
            assert quantization_error(x, bits, method="mse") <= quantization_error(x, bits) * (1 + 1e-9)
            assert quantization_error(x, bits, True, 0, "mse") <= quantization_error(x, bits, True, 0) * (1 + 1e-9)


def test_constant_and_zero_inputs():
    s, z = qparams(np.zeros(10), 8)
    assert s == 1.0 and z == 0
    s, z = qparams(np.full(4, 3.0), 8)
    assert quantize(np.float32(3.0), s, z) == 255 and quantize(np.float32(0.0), s, z) == z == 0


def test_empty_array_quantizes_to_empty():
    q = quantize(np.zeros((0, 3), np.float32), 0.1, 0, 8, True)
    assert q.shape == (0, 3) and q.dtype == np.int8
    assert dequantize(q, 0.1, 0).shape == (0, 3)
    assert fake_quantize(np.array([], np.float32), 0.5, 2).size == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bits": 0}, r"bits must be in \[1, 16\], got 0"),
        ({"bits": 17}, "got 17"),
        ({"bits": 1, "symmetric": True}, r"bits must be in \[2, 16\], got 1"),
        ({"axis": 2}, r"axis must be in \[-2, 2\) for a 2-D array, got 2"),
        ({"method": "entropy"}, "method must be 'minmax', 'percentile' or 'mse'"),
    ],
)
def test_qparams_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        qparams(np.ones((3, 4), np.float32), **kwargs)


def test_qparams_bad_data():
    with pytest.raises(ValueError, match="1 NaN or inf"):
        qparams(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        qparams(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="empty"):
        qparams(np.zeros(0))
    with pytest.raises(TypeError, match="bits must be an int, got float"):
        qparams(np.ones(3), bits=8.0)


@pytest.mark.parametrize("scale", [0.0, -1.0, np.nan, np.inf])
def test_quantize_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be positive and finite"):
        quantize(np.ones(3), scale, 0)


def test_quantize_bad_zero_point_axis_and_nan():
    with pytest.raises(ValueError, match=r"outside the integer range \[-128, 127\]"):
        quantize(np.ones(3), 0.1, 200, 8, signed=True)
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        quantize(np.ones(3), 0.1, -1, 4)
    with pytest.raises(TypeError, match="zero_point must be an integer"):
        quantize(np.ones(3), 0.1, 1.5)
    with pytest.raises(ValueError, match="axis=3 does not exist"):
        quantize(np.ones((2, 3)), np.ones(2), np.zeros(2, int), axis=3)
    with pytest.raises(ValueError, match="need axis="):
        quantize(np.ones((2, 3)), np.ones(2), np.zeros(2, int))
    with pytest.raises(ValueError, match="has 3 channels but scale has 2"):
        quantize(np.ones((2, 3)), np.ones(2), np.zeros(2, int), axis=1)
    with pytest.raises(ValueError, match="NaN"):
        quantize(np.array([np.nan]), 0.1, 0)
    with pytest.raises(TypeError, match="expects integers"):
        dequantize(np.ones(3), 0.1, 0)


# --- narrow range -----------------------------------------------------------------


def test_int_range_narrow():
    assert int_range(8, True, narrow_range=True) == (-127, 127)
    assert int_range(8, False, narrow_range=True) == (1, 255)
    assert int_range(2, True, narrow_range=True) == (-1, 1)
    with pytest.raises(ValueError, match="2..16"):
        int_range(1, True, narrow_range=True)


@pytest.mark.parametrize("axis", [None, 0])
def test_symmetric_8bit_quantizer_never_emits_minus_128(axis, rng):
    # Before the fix, inputs beyond the calibrated range clamped to -128 (the docs promise ±127).
    w = rng.standard_normal((6, 50)).astype(np.float32)
    qp = qparams(w, 8, symmetric=True, axis=axis)
    s, z = qp  # still unpacks as (scale, zero_point)
    assert qp.narrow_range and qp.signed and qp.bits == 8 and qp.qrange == (-127, 127)
    x = np.concatenate([w, -3 * w, 3 * w], axis=1)  # far outside the calibrated range
    q = quantize(x, qp, axis=axis)
    assert q.min() == -127 and q.max() == 127
    assert np.array_equal(quantize(x, s, z, 8, True, axis, narrow_range=True), q)
    assert quantize(x, s, z, 8, True, axis).min() == -128  # the full range stays available, explicitly
    assert np.array_equal(fake_quantize(x, qp, axis=axis), dequantize(q, s, z, axis))
    # unsigned symmetric: zero point 128, narrow range [1, 255]
    qpu = qparams(w, 8, symmetric=True, signed=False, axis=axis)
    assert qpu.qrange == (1, 255) and quantize(x, qpu, axis=axis).min() == 1


def test_qparams_carries_its_range():
    x = np.linspace(-1, 3, 50, dtype=np.float32)
    qa = qparams(x, 8)
    assert (qa.bits, qa.signed, qa.narrow_range) == (8, False, False) and qa.qrange == (0, 255)
    assert qa == (qa.scale, qa.zero_point) and "narrow_range=False" in repr(qa)
    import pickle

    back = pickle.loads(pickle.dumps(qa))
    assert back.qrange == qa.qrange and tuple(back) == tuple(qa)
    assert qparams(x, 4, symmetric=True, narrow_range=False).qrange == (-8, 7)  # explicit choice
    with pytest.raises(TypeError, match="not both"):
        quantize(x, qa, 3)
    with pytest.raises(TypeError, match="zero_point is missing"):
        quantize(x, 0.1)
    # symmetric quantization error uses the narrow range: nothing lands on -2^(b-1)
    sym = qparams(x, 4, symmetric=True)
    assert quantize(x, sym).min() >= -7
