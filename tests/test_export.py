"""labkit.export: ONNX files of float, pruned and int8 models, run by onnxruntime with the same answers.

onnx and onnxruntime are dependencies of labkit; an environment that lacks them anyway (installed
with ``--no-deps``) skips these tests with a reason, and fails them in CI (``LABKIT_REQUIRE_ONNX``, set by
``.ci/run``).
"""

import numpy as np
import pytest
from conftest import skip_or_fail

from labkit import export, models, nn, prune, quant
from labkit.quant import FakeQuant


@pytest.fixture(scope="module")
def ox():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        skip_or_fail("LABKIT_REQUIRE_ONNX", "onnx or onnxruntime is not installed (`pip install -e .` installs them)")
    return onnx, onnxruntime


def _mlp(seed=0, dropout=0.0):
    return models.mlp([20, 16, 12, 5], seed=seed, dropout=dropout)


def _convnet(seed=0):
    rng = np.random.default_rng(seed)
    layers = [
        nn.Reshape((1, 8, 8)),
        nn.Conv2d(1, 3, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3, stride=1, rng=rng),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dense(16, 6, rng=rng),
    ]
    return nn.Sequential(layers, input_shape=(64,))


def _data(n, d, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (n, d)).astype(np.float32)


# --- float and pruned models --------------------------------------------------------------------------


@pytest.mark.parametrize("build", [_mlp, _convnet, lambda: _mlp(dropout=0.3)], ids=["mlp", "conv", "dropout"])
def test_float_model_matches_onnxruntime(ox, tmp_path, build):
    onnx, _ = ox
    model = build()
    X = _data(300, model.input_shape[0])
    path = export.to_onnx(model, tmp_path / "m.onnx")
    got = export.run_onnx(path, X, batch_size=128)
    assert got.shape == (300, model.layers[-1].out_features) and got.dtype == np.float32
    assert np.abs(got - model.predict_logits(X)).max() <= 1e-4
    m = onnx.load(str(path))
    assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [export.OPSET]
    ops = {n.op_type for n in m.graph.node}
    assert "Dropout" not in ops and ("Conv" in ops) == (build is _convnet)


def test_pruned_model_keeps_its_zeros_and_its_bytes(ox, tmp_path):
    onnx, _ = ox
    model = _mlp()
    prune.global_magnitude_prune(model, 0.9)
    X = _data(100, 20)
    path = export.to_onnx(model, tmp_path / "p.onnx")
    assert np.abs(export.run_onnx(path, X) - model.predict_logits(X)).max() <= 1e-4
    W = onnx.numpy_helper.to_array(next(t for t in onnx.load(str(path)).graph.initializer if t.name == "fc1.W"))
    assert np.array_equal(W, model["fc1"].W)  # the zeros are stored: dense float32
    n_params = sum(a.size for a in model.parameters().values())
    assert path.stat().st_size >= 4 * n_params  # no byte saved by the zeros


def test_export_is_atomic_and_leaves_nothing_on_failure(ox, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    bad = _mlp()
    bad["fc2"].W[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        export.to_onnx(bad, path)
    assert path.read_bytes() == b"old"
    export.to_onnx(_mlp(), path)
    assert path.read_bytes() != b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


class _Tanh(nn.Layer):
    def forward(self, x, training=False):
        return np.tanh(x)


def test_clear_errors(ox, tmp_path):
    model = _mlp()
    with pytest.raises(ValueError, match=r"end in \.onnx"):
        export.to_onnx(model, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="Sequential"):
        export.to_onnx({"W": 1}, tmp_path / "m.onnx")
    with pytest.raises(TypeError, match=r"layer _tanh1 \(_Tanh\) has no ONNX export; supported: Dense"):
        export.to_onnx(nn.Sequential([nn.Dense(4, 3), _Tanh()], input_shape=(4,)), tmp_path / "m.onnx")
    qat = nn.Sequential([nn.Dense(4, 3), FakeQuant(8)], input_shape=(4,))
    with pytest.raises(TypeError, match="FakeQuant.*quantized=labkit.quant.quantize_model"):
        export.to_onnx(qat, tmp_path / "m.onnx")
    engine = quant.quantize_model(model, calib=_data(50, 20))
    with pytest.raises(TypeError, match="got an IntegerModel as model"):
        export.to_onnx(engine, tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="quantized must be"):
        export.to_onnx(model, tmp_path / "m.onnx", quantized="int8")
    with pytest.raises(ValueError, match="weight_type"):
        export.to_onnx(model, tmp_path / "m.onnx", quantized=engine, weight_type="int4")
    other = quant.quantize_model(_mlp(seed=5), calib=_data(50, 20))
    with pytest.raises(ValueError, match="not built from this model's weights"):
        export.to_onnx(model, tmp_path / "m.onnx", quantized=other)
    wider = quant.quantize_model(models.mlp([20, 16, 5]), calib=_data(50, 20))
    with pytest.raises(ValueError, match="weight layers are"):
        export.to_onnx(model, tmp_path / "m.onnx", quantized=wider)
    four_bit = quant.quantize_model(model, calib=_data(50, 20), act_bits=4)
    with pytest.raises(ValueError, match="act_bits=4"):
        export.to_onnx(model, tmp_path / "m.onnx", quantized=four_bit)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="non-empty"):
        export.run_onnx(export.to_onnx(model, tmp_path / "m.onnx"), np.zeros((0, 20)))
    with pytest.raises(ValueError, match="not 'logits_q'"):
        export.run_onnx(tmp_path / "m.onnx", _data(3, 20), output="logits_q")


# --- integer models -------------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["uint8", "int8"])
@pytest.mark.parametrize("build", [_mlp, _convnet], ids=["mlp", "conv"])
def test_integer_model_matches_the_engine_and_the_emulation(ox, tmp_path, build, signed):
    onnx, _ = ox
    model = build()
    d = model.input_shape[0]
    engine = quant.quantize_model(model, calib=_data(200, d, seed=2), act_signed=signed)
    X = _data(400, d, seed=3)
    path = export.to_onnx(model, tmp_path / "q.onnx", quantized=engine)
    sess = export.onnx_session(path)
    q_ort = export.run_onnx(sess, X, "logits_q").astype(np.int64)
    assert export.run_onnx(sess, X, "logits_q").dtype == (np.int8 if signed else np.uint8)
    q_lab = engine.predict_int(X).astype(np.int64)
    # onnxruntime = exact int32 accumulators + float32 requantization, bit for bit
    assert np.array_equal(q_ort, export.emulate_onnxruntime(model, engine, X))
    assert np.abs(q_ort - q_lab).max() <= 1 and np.mean(q_ort != q_lab) < 0.01
    f = export.run_onnx(sess, X, "logits")
    assert np.allclose(f, engine.output_scale * (q_ort - engine.output_zero_point), rtol=1e-6, atol=1e-6)
    m = onnx.load(str(path))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    first = model.weight_layers()[0][0]
    assert inits[f"{first}.W_q"].dtype == np.uint8 and np.all(inits[f"{first}.W_zero_point"] == 128)
    assert inits[f"{first}.b_q"].dtype == np.int32
    ops = [n.op_type for n in m.graph.node]
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(ops) and "MatMulInteger" not in ops


@pytest.mark.parametrize("act_signed", [False, True])
def test_a_gelu_lookup_exports_and_onnxruntime_gives_the_same_integers(ox, tmp_path, act_signed):
    """lab 11's GELU is one engine layer (quant.IntLookup): in the file a Gather on the codes."""
    onnx, _ = ox
    rng = np.random.default_rng(0)
    model = nn.Sequential([nn.Dense(12, 16, rng=rng), nn.GELU(), nn.Dense(16, 5, rng=rng)], input_shape=(12,))
    X = rng.standard_normal((400, 12)).astype(np.float32)
    engine = quant.quantize_model(model, calib=X[:200], act_signed=act_signed)
    path = export.to_onnx(model, tmp_path / "gelu.onnx", quantized=engine)
    assert "Gather" in {n.op_type for n in onnx.load(str(path)).graph.node}
    q = export.run_onnx(path, X, "logits_q").astype(np.int64)
    assert np.array_equal(q, export.emulate_onnxruntime(model, engine, X))
    assert np.mean(q == engine.predict_int(X)) > 0.99  # float32 against fixed-point requantization
    with pytest.raises(TypeError, match="GELU.*no ONNX export"):
        export.to_onnx(model, tmp_path / "float.onnx")  # opset 13 has no float GELU


def test_int8_weights_are_the_engines_integers(ox, tmp_path):
    onnx, _ = ox
    model = _mlp()
    engine = quant.quantize_model(model, calib=_data(100, 20))
    path = export.to_onnx(model, tmp_path / "q.onnx", quantized=engine, weight_type="int8")
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    for op, row in zip(engine.weight_layers(), export.layer_scales(model, engine)):
        assert np.array_equal(inits[f"{op.name}.W_q"], op.q_W) and inits[f"{op.name}.W_q"].dtype == np.int8
        assert np.array_equal(inits[f"{op.name}.W_scale"], row["s_w"]) and row["s_w"].dtype == np.float32
        assert np.allclose(row["M_file"], row["M"], rtol=1e-6)  # the file's products are the engine's multipliers
    X = _data(200, 20, seed=4)
    # onnxruntime's u8s8 kernel: exact where the CPU has int8 dot products (VNNI, Arm), saturating pairs on AVX2
    q = export.run_onnx(path, X, "logits_q").astype(np.int64)
    exact = export.emulate_onnxruntime(model, engine, X)
    saturated = export.emulate_onnxruntime(model, engine, X, u8s8_saturation=True)
    assert np.array_equal(q, exact) or np.array_equal(q, saturated)


def test_layer_scales_recover_the_true_scales(ox):
    model = _mlp()
    X = _data(200, 20)
    engine = quant.quantize_model(model, calib=X)
    rows = export.layer_scales(model, engine)
    s_w, _ = quant.qparams(model["fc1"].W, 8, symmetric=True, axis=0)
    assert np.allclose(rows[0]["s_w"], s_w, rtol=1e-6)
    h = np.maximum(model["fc1"].forward(X), 0)
    assert rows[0]["s_y"] == pytest.approx(quant.qparams(h, 8)[0], rel=1e-6)  # the hidden scale, recovered
    assert rows[0]["s_x"] == engine.input_scale and rows[-1]["s_y"] == engine.output_scale


def test_float32_requantize_rounds_the_float32_product():
    acc = np.array([5, 7, 9, -5, 1000], np.int32)
    # M = 0.5: exact ties go to even; the clamp applies after the zero point
    assert export.float32_requantize(acc, 0.5, 10, 0, 255).tolist() == [12, 14, 14, 8, 255]
    # a product that is a tie in exact arithmetic but not in float32
    # 95 · 0.3 = 28.5 rounds to even (28); float32(0.3) > 0.3 makes the float32 product 28.500002 → 29
    assert export.float32_requantize(np.array([95], np.int32), 0.3, 0, 0, 255).tolist() == [29]
    assert int(np.rint(95 * 0.3)) == 28
    with pytest.raises(TypeError, match="integer"):
        export.float32_requantize(np.ones(2), 0.5, 0, 0, 255)


def test_u8s8_saturation_model_explains_int8_weight_differences(ox):
    # hand-made: pairs of products 255 * 127 * 2 = 64770 overflow int16 in onnxruntime's AVX2 kernel
    model = nn.Sequential([nn.Dense(4, 2)], input_shape=(4,))
    model["fc1"].W[:] = np.array([[1, 1, 1, 1], [1, -1, 1, -1]], np.float32)
    model["fc1"].b[:] = 0
    X = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0]], np.float32)
    engine = quant.quantize_model(model, calib=X)
    exact = export.emulate_onnxruntime(model, engine, X)
    sat = export.emulate_onnxruntime(model, engine, X, u8s8_saturation=True)
    assert np.abs(exact - engine.predict_int(X).astype(np.int64)).max() <= 1  # (row 3 is a tie: 127.5)
    assert not np.array_equal(sat, exact)  # the all-ones row saturates: 2 * 255 * 127 > 32767


# --- the course's models on the 10,000 test images -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", models.PRETRAINED)
def test_course_models_run_in_onnxruntime_with_the_same_answers(ox, tmp_path, fashion, name):
    model = models.pretrained(name)
    X = fashion.X_test
    assert X.shape[0] == 10_000
    path = export.to_onnx(model, tmp_path / f"{name}.onnx")
    sess = export.onnx_session(path, threads=None)
    assert np.abs(export.run_onnx(sess, X) - model.predict_logits(X)).max() <= 1e-4
    engine = quant.quantize_model(model, calib=fashion.X_train[:2000])
    qpath = export.to_onnx(model, tmp_path / f"{name}_int8.onnx", quantized=engine)
    if name == "teacher":  # labkit's numpy integer engine needs minutes for 10,000 images through 1200x1200
        X = X[:2000]
    q_ort = export.run_onnx(export.onnx_session(qpath, threads=None), X, "logits_q").astype(np.int64)
    q_lab = engine.predict_int(X).astype(np.int64)
    agreement = np.mean(q_ort.argmax(axis=1) == q_lab.argmax(axis=1))
    assert agreement >= 0.995, f"{name}: predictions agree on {agreement:.2%}"
    assert np.abs(q_ort - q_lab).max() <= 1  # one rounding step: float32 vs fixed-point requantization
