"""labkit.quant.integer: fixed-point requantization and the integer-only engine (Jacob et al. 2018)."""

import numpy as np
import pytest

from labkit import metrics, models, nn, train
from labkit.quant import (
    IntegerModel,
    IntLookup,
    dequantize,
    integer_dense,
    qparams,
    quantize,
    quantize_model,
    quantize_multiplier,
    requantize,
    rounding_right_shift,
    simulate_float64,
)


def test_quantize_multiplier(rng):
    M = np.concatenate([rng.uniform(1e-6, 0.999, 1000), [0.5, 0.25, 1.0, 3.7, 1 - 2.0**-40]])
    M0, n = quantize_multiplier(M)
    assert M0.dtype == np.int32 and n.dtype == np.int32
    assert np.all(M0 >= 2**30) and np.all(M0.astype(np.int64) < 2**31)
    approx = M0.astype(np.float64) * np.exp2(-(31.0 + n))
    assert np.all(np.abs(approx - M) <= M * 2.0**-31)
    assert quantize_multiplier(0.5) == (2**30, 0)
    assert quantize_multiplier(1 - 2.0**-40) == (2**30, -1)  # mantissa rounds up to 1: carried into the shift
    for bad in (0.0, -1.0, np.nan, 2.0**31):
        with pytest.raises(ValueError, match="multiplier must be finite"):
            quantize_multiplier(bad)


def test_rounding_right_shift_is_round_half_even(rng):
    x = np.concatenate([rng.integers(-(2**40), 2**40, 5000), np.arange(-40, 41)])
    for s in (1, 2, 3, 17, 31):
        assert np.array_equal(rounding_right_shift(x, s), np.rint(x / 2.0**s).astype(np.int64))
    assert rounding_right_shift(np.array([2, 6, -2, -6, 3, -3]), 2).tolist() == [0, 2, 0, -2, 1, -1]
    assert rounding_right_shift(np.array([5, -5]), 0).tolist() == [5, -5]  # a shift of 0 leaves x as it is
    with pytest.raises(ValueError, match="shift must be in 0..62"):
        rounding_right_shift(np.array([1]), -1)


def test_requantize_matches_real_multiplier(rng):
    acc = rng.integers(-(2**20), 2**20, (200, 6)).astype(np.int32)
    M = rng.uniform(1e-5, 1e-3, 6)
    M0, n = quantize_multiplier(M)
    got = requantize(acc, M0, n, 10, bits=8, signed=False)
    exact = np.clip(np.rint(acc * (M0 * np.exp2(-(31.0 + n)))) + 10, 0, 255)
    assert got.dtype == np.uint8 and np.array_equal(got, exact)
    relu = requantize(acc, M0, n, 10, relu=True)
    assert relu.min() == 10 and np.array_equal(relu, np.maximum(got, 10))
    assert requantize(acc, M0, n, -5, bits=8, signed=True).dtype == np.int8


def test_integer_dense_approximates_float_layer(rng):
    x = rng.uniform(0, 1, (32, 20)).astype(np.float32)
    W = rng.standard_normal((7, 20)).astype(np.float32) * 0.3
    b = rng.standard_normal(7).astype(np.float32) * 0.1
    y = x @ W.T + b
    s_x, z_x = qparams(x, 8)
    s_w, _ = qparams(W, 8, symmetric=True, axis=0)
    s_y, z_y = qparams(y, 8)
    q_W = quantize(W, s_w, np.zeros(7, int), 8, True, axis=0)
    q_b = np.rint(b / (np.float64(s_x) * s_w)).astype(np.int32)
    M0, n = quantize_multiplier(np.float64(s_x) * s_w / np.float64(s_y))
    q_y = integer_dense(quantize(x, s_x, z_x), z_x, q_W, q_b, M0, n, z_y)
    assert q_y.dtype == np.uint8 and q_y.shape == (32, 7)
    assert np.abs(dequantize(q_y, s_y, z_y) - y).max() < 3 * s_y
    q_relu = integer_dense(quantize(x, s_x, z_x), z_x, q_W, q_b, M0, n, z_y, relu=True)
    assert np.array_equal(q_relu, np.maximum(q_y, z_y))


def test_engine_on_hand_checked_network():
    """One Dense layer on hand-picked values: input scale 2.55 / 255 = 0.01, zero point 0."""
    net = nn.Sequential([nn.Dense(2, 2)], input_shape=(2,))
    net["fc1"].W = np.array([[1.0, -1.0], [0.5, 0.25]], np.float32)
    net["fc1"].b = np.array([0.0, 1.0], np.float32)
    calib = np.array([[0.0, 0.0], [2.55, 2.55]], np.float32)
    eng = quantize_model(net, calib=calib)
    assert eng.input_scale == np.float32(0.01) and eng.input_zero_point == 0
    x = np.array([[1.0, 0.5]], np.float32)
    y = net.forward(x)
    assert np.allclose(eng.predict_logits(x), y, atol=eng.output_scale)
    assert np.array_equal(eng.predict_int(x), simulate_float64(eng, x))


@pytest.fixture(scope="module")
def lenet300(fashion):
    model = models.pretrained("lenet_300_100")
    return model, quantize_model(model, calib=fashion.X_train[:2000])


def test_lenet_300_100_bit_exact_and_accurate(lenet300, fashion):
    model, eng = lenet300
    X, y = fashion.X_test, fashion.y_test
    q = eng.predict_int(X)
    assert q.dtype == np.uint8
    assert np.array_equal(q.astype(np.int64), simulate_float64(eng, X))  # bit for bit
    float_pred = model.predict(X)
    agreement = (q.argmax(axis=1) == float_pred).mean()
    assert agreement >= 0.99
    assert (float_pred == y).mean() - (q.argmax(axis=1) == y).mean() <= 0.003  # within 0.3 pp
    assert np.array_equal(eng.predict(X[:50]), q[:50].argmax(axis=1))


def test_engine_bytes(lenet300):
    model, eng = lenet300
    W = sum(layer.W.size for _, layer in model.weight_layers())
    channels = sum(layer.W.shape[0] for _, layer in model.weight_layers())
    # int8 W; per channel int32 bias + int32 M0 + int8 shift; per layer two uint8 zero points;
    # float32 scale + uint8 zero point for the input and for the output
    assert eng.nbytes == W + 9 * channels + 2 * 3 + 2 * 5
    assert metrics.size_bytes(eng, "int8_engine") == eng.nbytes
    assert metrics.size_bytes(model) / eng.nbytes >= 3.9
    with pytest.raises(TypeError, match="IntegerModel"):
        metrics.size_bytes(model, "int8_engine")


def test_engine_structure(lenet300):
    model, eng = lenet300
    kinds = [op.kind for op in eng.layers]
    assert kinds == ["dense", "dense", "dense"]
    for op in eng.layers:
        assert op.q_W.dtype == np.int8 and op.bias.dtype == np.int32 and op.M0.dtype == np.int32
        assert np.all(np.abs(op.q_W).max(axis=1) == 127)  # symmetric per channel: each row uses its full range
        assert np.all(op.M0.astype(np.int64) >= 2**30)
    assert [op.relu for op in eng.layers] == [True, True, False]
    assert "IntegerModel" in repr(eng)


@pytest.mark.slow
def test_lenet5_bit_exact_and_accurate(fashion):
    model = models.pretrained("lenet5")
    eng = quantize_model(model, calib=fashion.X_train[:2000])
    assert [op.kind for op in eng.layers] == [
        "reshape",
        "conv",
        "maxpool",
        "conv",
        "maxpool",
        "flatten",
        "dense",
        "dense",
        "dense",
    ]
    X = fashion.X_test
    q = eng.predict_int(X)
    assert np.array_equal(q[:2000].astype(np.int64), simulate_float64(eng, X[:2000]))  # the notebook checks all 10k
    float_pred = model.predict(X)
    assert (q.argmax(axis=1) == float_pred).mean() >= 0.99
    assert (float_pred == fashion.y_test).mean() - (q.argmax(axis=1) == fashion.y_test).mean() <= 0.003


def test_signed_activations_dropout_and_low_bits(digits):
    model = models.mlp([64, 32, 10], seed=0, dropout=0.2)
    train.fit(model, digits, epochs=5, lr=3e-3, seed=0, progress=False)
    names = list(model.layer_names)
    for kw in ({"act_signed": True}, {"bits": 4, "act_bits": 6}, {"method": "percentile"}, {"per_channel": False}):
        eng = quantize_model(model, calib=digits.X_train, **kw)
        q = eng.predict_int(digits.X_test)
        assert np.array_equal(q.astype(np.int64), simulate_float64(eng, digits.X_test))
        assert (q.argmax(axis=1) == model.predict(digits.X_test)).mean() > 0.85
    assert model.layer_names == names  # quantize_model does not rename the float model's layers
    assert isinstance(eng, IntegerModel)


def test_quantize_model_bad_input(digits):
    model = models.mlp([64, 10])
    with pytest.raises(TypeError, match="calib"):
        quantize_model(model)
    with pytest.raises(ValueError, match="non-empty"):
        quantize_model(model, calib=np.zeros((0, 64)))
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_model(model, calib=np.full((2, 64), np.nan))
    with pytest.raises(ValueError, match="must be <= 8"):
        quantize_model(model, 9, calib=digits.X_train)
    with pytest.raises(TypeError, match="Sequential"):
        quantize_model("model", calib=digits.X_train)
    with pytest.raises(ValueError, match="non-empty batch"):
        quantize_model(model, calib=digits.X_train).predict_int(np.zeros((0, 64)))
    with pytest.raises(TypeError, match="IntegerModel"):
        simulate_float64(model, digits.X_test)


# --- gemmlowp requantization -----------------------------------------------------
from labkit.quant import (  # noqa: E402
    fixed_point_multiply,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (I32_MIN, I32_MIN, I32_MAX),  # 2^62 / 2^31 = 2^31 does not fit int32: saturates
        (I32_MIN, I32_MAX, -(2**31) + 1),  # -2^31·(2^31-1)/2^31 = -(2^31 - 1), exact
        (I32_MAX, I32_MAX, I32_MAX - 1),  # (2^31-1)^2 / 2^31 = 2^31 - 2 + 2^-31 -> 2^31 - 2
        (2**30, 2**30, 2**29),  # exact
        (3, 2**30, 2),  # 1.5: tie, nudge 2^30 -> (3·2^30 + 2^30) / 2^31 = 2
        (-3, 2**30, -1),  # -1.5: tie, nudge 1 - 2^30 -> (-2^32 + 1) / 2^31 truncates to -1
        (-5, 2**30, -2),  # -2.5 -> -2 (ties toward +inf)
        (5, 2**30, 3),  # 2.5 -> 3
        (-7, 2**29, -2),  # -1.75 -> -2 (not a tie)
        (1, 1, 0),  # 2^-31 -> 0
        (-1, 1, 0),
    ],
)
def test_saturating_rounding_doubling_high_mul_hand_cases(a, b, expected):
    got = saturating_rounding_doubling_high_mul(np.int64(a), np.int64(b))
    assert got.dtype == np.int32 and int(got) == expected


@pytest.mark.parametrize(
    "x, e, expected",
    [
        (3, 1, 2),  # 1.5 -> 2 (away from zero)
        (-3, 1, -2),  # -1.5 -> -2 (away from zero)
        (5, 1, 3),  # 2.5 -> 3 (not to even)
        (-5, 1, -3),
        (-5, 2, -1),  # -1.25 -> -1
        (-6, 2, -2),  # -1.5 -> -2
        (-2, 2, -1),  # -0.5 -> -1
        (2, 2, 1),  # 0.5 -> 1
        (7, 0, 7),  # exponent 0: unchanged
        (I32_MIN, 31, -1),
        (I32_MAX, 31, 1),
    ],
)
def test_rounding_divide_by_pot_hand_cases(x, e, expected):
    assert int(rounding_divide_by_pot(np.int64(x), e)) == expected


def _gemmlowp_python(acc, M0, n):
    """The C definitions with Python ints: an independent oracle."""

    def srdhm(a, b):
        if a == b == I32_MIN:
            return I32_MAX
        ab = a * b
        s = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
        return s // 2**31 if s >= 0 else -((-s) // 2**31)

    def rdbpot(x, e):
        mask = (1 << e) - 1
        return (x >> e) + ((x & mask) > (mask >> 1) + (x < 0))

    left, right = max(-n, 0), max(n, 0)
    return rdbpot(srdhm(acc << left, M0), right)


def test_gemmlowp_matches_the_c_definitions_and_single_is_exact_nearest(rng):
    from fractions import Fraction

    acc = rng.integers(-(2**31), 2**31, 400)
    acc[:4] = [I32_MIN, I32_MAX, 0, -1]
    M0 = rng.integers(2**30, 2**31, 400)
    n = rng.integers(0, 20, 400)
    g = fixed_point_multiply(acc, M0, n, "gemmlowp")
    s = fixed_point_multiply(acc, M0, n, "single")
    for a, m, k, gi, si in zip(acc.tolist(), M0.tolist(), n.tolist(), g.tolist(), s.tolist()):
        assert gi == _gemmlowp_python(a, m, k)
        exact = Fraction(a * m, 2 ** (31 + k))
        assert si == round(exact)  # Python rounds half to even, exactly
        assert abs(gi - si) <= 1
    with pytest.raises(ValueError, match="rounding"):
        fixed_point_multiply(acc, M0, n, "nearest")
    with pytest.raises(ValueError, match="int32"):
        fixed_point_multiply(np.array([2**31]), 2**30, 0, "gemmlowp")


@pytest.mark.parametrize(
    "acc, M0, n, single, gemmlowp",
    [
        (5, 2**30, 1, 1, 2),  # 1.25: gemmlowp rounds twice (2.5 -> 3, then 1.5 -> 2)
        (1, 2**30, 0, 0, 1),  # a tie 0.5: to even (0) vs toward +inf (1)
        (-3, 2**30, 0, -2, -1),  # a negative tie -1.5: to even (-2) vs toward +inf (-1)
        (-6, 2**30, 1, -2, -2),  # -1.5 after an exact first step: both -2
        (3, 2**30, 1, 1, 1),  # 0.75
    ],
)
def test_where_single_and_gemmlowp_rounding_differ(acc, M0, n, single, gemmlowp):
    assert int(fixed_point_multiply(np.array(acc), M0, n, "single")) == single
    assert int(fixed_point_multiply(np.array(acc), M0, n, "gemmlowp")) == gemmlowp
    assert int(requantize(np.array([acc]), M0, n, 10, rounding="gemmlowp")[0]) == 10 + gemmlowp
    assert int(requantize(np.array([acc]), M0, n, 10)[0]) == 10 + single


def test_engine_with_gemmlowp_rounding(lenet300, fashion):
    model, eng = lenet300
    X = fashion.X_test[:500]
    g = quantize_model(model, calib=fashion.X_train[:2000], rounding="gemmlowp")
    assert g.rounding == "gemmlowp" and eng.rounding == "single"
    a, b = eng.predict_int(X), g.predict_int(X)
    np.testing.assert_array_equal(b, eng.with_rounding("gemmlowp").predict_int(X))
    assert 0 < np.count_nonzero(a != b) and np.abs(a.astype(int) - b).max() <= 2
    with pytest.raises(ValueError, match="rounding"):
        quantize_model(model, calib=fashion.X_train[:100], rounding="tflite")


def test_kernels_backend_gives_the_engines_integers(lenet300, fashion, digits):
    """predict_int(backend="kernels") runs each layer through labkit.kernels.gemm_int8_requant: same integers."""
    _, eng = lenet300
    X = fashion.X_val[:300]
    np.testing.assert_array_equal(eng.predict_int(X, backend="kernels"), eng.predict_int(X))
    conv = quantize_model(models.pretrained("lenet5"), calib=fashion.X_train[:500])
    np.testing.assert_array_equal(conv.predict_int(X, backend="kernels"), conv.predict_int(X))
    model = models.mlp([64, 16, 10], seed=0)
    signed = quantize_model(model, calib=digits.X_train, act_signed=True, bits=4, act_bits=6)
    Xd = digits.X_test
    np.testing.assert_array_equal(signed.predict_int(Xd, backend="kernels"), signed.predict_int(Xd))
    with pytest.raises(ValueError, match="rounding 'single'"):
        eng.with_rounding("gemmlowp").predict_int(X, backend="kernels")
    with pytest.raises(ValueError, match="backend"):
        eng.predict_int(X, backend="torch")


# --- the layer protocol: a GELU as a lookup table (lab 11), the deprecated names ------------------------------


def _gelu_mlp(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential([nn.Dense(12, 16, rng=rng), nn.GELU(), nn.Dense(16, 5, rng=rng)], input_shape=(12,))


@pytest.mark.parametrize("act_signed", [False, True])
def test_gelu_becomes_a_table_of_its_codes(act_signed):
    model = _gelu_mlp()
    X = np.random.default_rng(1).standard_normal((300, 12)).astype(np.float32)
    eng = quantize_model(model, calib=X[:200], act_signed=act_signed)
    assert [op.kind for op in eng.layers] == ["dense", "lookup", "dense"]
    lut = eng.layers[1]
    assert isinstance(lut, IntLookup) and lut.table.size == 256 and lut.arrays()["table"].nbytes == 256
    qmin, qmax = (-128, 127) if act_signed else (0, 255)
    codes = np.arange(qmin, qmax + 1)
    real = np.float32(lut.s_x) * (codes - lut.z_x).astype(np.float32)  # the input codes' real values
    want = quantize(nn.GELU().forward(real), lut.s_y, lut.z_y, 8, act_signed)
    assert np.array_equal(lut.table, want)
    # integer all the way, the float64 oracle and the compiled kernels agree
    q = eng.predict_int(X)
    assert np.array_equal(q.astype(np.int64), simulate_float64(eng, X))
    assert np.array_equal(q, eng.predict_int(X, backend="kernels"))
    # and the integer model still computes the float one
    logits = eng.predict_logits(X)
    assert np.mean(np.argmax(logits, 1) == np.argmax(model.predict_logits(X), 1)) > 0.9


def test_a_lookup_table_is_checked():
    with pytest.raises(ValueError, match="one integer per input code"):
        IntLookup("f", np.zeros(255, np.uint8), (1.0, 0), (1.0, 0))
    with pytest.raises(ValueError, match=r"codes in \[-128, 127\]"):
        IntLookup("f", np.full(256, 200), (1.0, 0), (1.0, 0), act_signed=True)


def test_engine_names_kept_as_deprecated_aliases(lenet300):
    _, eng = lenet300
    with pytest.warns(DeprecationWarning, match="IntegerModel.layers"):
        assert [k for k, _ in eng.ops] == [op.kind for op in eng.layers]
    with pytest.warns(DeprecationWarning, match="IntegerModel.act_bits"):
        assert eng.bits == eng.act_bits == 8
    with pytest.warns(DeprecationWarning, match="IntegerModel.act_signed"):
        assert eng.signed is eng.act_signed is False
