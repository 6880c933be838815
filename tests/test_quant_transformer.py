"""The GPT-level quantization glue: activation statistics, fake-quantized inference, output-preserving folds.

The folds (SmoothQuant, LayerNorm γ/β, rotations, the amplified channel) must leave the float logits
unchanged; the quantizers must put every linear layer's weights and inputs on the integer grid they
claim, with LLM.int8() exact where it keeps columns in float; the statistics must be what numpy
computes from the recorded inputs.
"""

import numpy as np
import pytest

from labkit import models, nn, quant
from labkit.quant import (
    QuantDense,
    activation_stats,
    amplify_channel,
    attention_to_first,
    float_column_fraction,
    fold_layernorms,
    kurtosis,
    quantize_gpt,
    rotate_gpt,
    smooth_gpt,
    smoothing_scales,
)

D, T, V = 32, 16, 20


@pytest.fixture(scope="module")
def gpt():
    """A 2-block GPT with non-trivial LayerNorms and biases (an untrained one has γ = 1, β = 0, b = 0)."""
    rng = np.random.default_rng(0)
    m = models.gpt(V, T, 2, 4, D, seed=0)
    for block in m.blocks:
        for ln in (block.ln1, block.ln2):
            ln.gamma = (1 + 0.3 * rng.standard_normal(D)).astype(np.float32)
            ln.beta = (0.2 * rng.standard_normal(D)).astype(np.float32)
    m.ln_f.gamma = (1 + 0.3 * rng.standard_normal(D)).astype(np.float32)
    for _, layer in m.weight_layers():
        layer.W = (layer.W * 10).astype(np.float32)
        layer.b = (0.1 * rng.standard_normal(layer.b.shape)).astype(np.float32)
    return m


@pytest.fixture(scope="module")
def ids():
    rng = np.random.default_rng(1)
    x = rng.integers(1, V, (6, T))
    x[:, 0] = 0
    return x


def logits64(model, ids):
    return model.forward(ids).astype(np.float64)


# --- activation statistics -------------------------------------------------------------------------


def test_kurtosis_matches_the_formula_and_is_3_for_gaussians():
    x = np.random.default_rng(0).standard_normal(200_000)
    assert abs(kurtosis(x) - 3.0) < 0.05
    y = np.array([0.0, 0.0, 0.0, 10.0])
    c = y - y.mean()
    assert kurtosis(y) == pytest.approx(np.mean(c**4) / np.mean(c**2) ** 2)
    with pytest.raises(ValueError, match="constant"):
        kurtosis(np.ones(5))
    with pytest.raises(ValueError, match="empty"):
        kurtosis([])


def test_activation_stats_agree_with_the_recorded_inputs(gpt, ids):
    stats = activation_stats(gpt, ids, top=4, batch_size=4)  # two batches: the running sums must merge
    with nn.record_inputs(gpt) as rec:
        gpt.forward(ids)
    assert list(stats) == [n for n, _ in gpt.weight_layers()]
    for name, s in stats.items():
        X = rec[name].astype(np.float64)
        np.testing.assert_allclose(s.absmax, np.abs(X).max(axis=0), rtol=1e-6)
        assert s.kurtosis == pytest.approx(kurtosis(X), rel=1e-6)
        assert s.std == pytest.approx(X.std(), rel=1e-6)
        assert s.tokens == ids.size
        np.testing.assert_allclose(s.position_absmax, np.abs(X).reshape(len(ids), T, -1).max(axis=(0, 2)), rtol=1e-6)
        assert len(s.largest) == 4
        top = s.largest[0]
        assert abs(top.value) == pytest.approx(np.abs(X).max(), rel=1e-6)
        assert X[top.window * T + top.position, top.channel] == pytest.approx(top.value, rel=1e-6)
        assert top.token == ids[top.window, top.position]
        assert [abs(a.value) for a in s.largest] == sorted((abs(a.value) for a in s.largest), reverse=True)


def test_attention_to_first_is_the_mean_probability_on_position_0(gpt, ids):
    share = attention_to_first(gpt, ids, batch_size=5)
    assert share.shape == (2, 4)
    gpt.forward(ids)
    np.testing.assert_allclose(share[1], gpt.blocks[1].attn.probs[:, :, 1:, 0].mean(axis=(0, 2)), rtol=1e-6)
    assert np.all((share > 0) & (share < 1))


def test_statistics_reject_bad_input(gpt, ids):
    with pytest.raises(TypeError, match="2-D integer array"):
        activation_stats(gpt, ids.astype(float))
    with pytest.raises(ValueError, match="positions per window"):
        activation_stats(gpt, np.zeros((2, T + 1), int))
    with pytest.raises(KeyError, match="valid names"):
        activation_stats(gpt, ids, names=["h9.mlp.fc1"])
    with pytest.raises(ValueError, match="at least 2 positions"):
        attention_to_first(gpt, ids[:, :1])


# --- transforms that keep the output ----------------------------------------------------------------


def test_layernorm_fold_keeps_the_logits_and_leaves_plain_normalisation(gpt, ids):
    folded = fold_layernorms(gpt)
    np.testing.assert_allclose(logits64(folded, ids), logits64(gpt, ids), atol=1e-4)
    for block in folded.blocks:
        assert np.all(block.ln1.gamma == 1) and np.all(block.ln2.beta == 0)
    assert not np.all(gpt.blocks[0].ln1.gamma == 1)  # the original is left alone


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.85, 1.0])
def test_smoothquant_keeps_the_logits_and_divides_the_inputs_by_s(gpt, ids, alpha):
    stats = activation_stats(gpt, ids)
    smoothed = smooth_gpt(gpt, stats, alpha)
    np.testing.assert_allclose(logits64(smoothed, ids), logits64(gpt, ids), atol=1e-4)
    scales = smoothing_scales(gpt, {k: v.absmax for k, v in stats.items()}, alpha)
    after = activation_stats(smoothed, ids, names=list(scales))
    for name, s in scales.items():
        np.testing.assert_allclose(after[name].absmax, stats[name].absmax / s, rtol=1e-4)
        W = gpt[name].W
        expect = stats[name].absmax ** alpha / np.abs(W).max(axis=0) ** (1 - alpha)
        np.testing.assert_allclose(s, expect, rtol=1e-5)
    if alpha == 0.5:  # the two maxima are balanced channel by channel
        W_s = smoothed["h0.mlp.fc1"].W
        np.testing.assert_allclose(after["h0.mlp.fc1"].absmax, np.abs(W_s).max(axis=0), rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"residual": False}, {"heads": False}, {"online_fc2": False}, {"online_signs": False}, {"seed": 3}],
)
def test_rotations_keep_the_logits(gpt, ids, kwargs):
    rotated = rotate_gpt(gpt, **kwargs)
    np.testing.assert_allclose(logits64(rotated, ids), logits64(gpt, ids), atol=1e-4)
    fc2 = rotated["h0.mlp.fc2"]
    assert isinstance(fc2, QuantDense) == kwargs.get("online_fc2", True)


def test_the_residual_rotation_spreads_an_outlier_channel(gpt, ids):
    loud = amplify_channel(fold_layernorms(gpt), 5, 30.0)  # γ = 1 after the fold: an outlier the fold keeps
    before = activation_stats(loud, ids)["h1.attn.qkv"]
    after = activation_stats(rotate_gpt(loud, residual=True, heads=False, online_fc2=False), ids)["h1.attn.qkv"]
    assert before.absmax.argmax() == 5 and before.kurtosis > 10
    assert after.kurtosis < 4 and after.absmax.max() < before.absmax.max() / 4


def test_random_signs_keep_the_gelu_mean_out_of_channel_0(gpt, ids):
    plain = activation_stats(rotate_gpt(gpt, online_signs=False), ids)["h0.mlp.fc2"]
    signed = activation_stats(rotate_gpt(gpt, online_signs=True), ids)["h0.mlp.fc2"]
    assert plain.absmax.argmax() == 0  # fwht puts √n · mean(x) in channel 0
    assert signed.absmax.max() < plain.absmax.max()


def test_amplified_channel_keeps_the_logits_and_is_factor_times_larger(gpt, ids):
    loud = amplify_channel(gpt, 7, 20.0)
    np.testing.assert_allclose(logits64(loud, ids), logits64(gpt, ids), atol=1e-4)
    a, b = activation_stats(gpt, ids), activation_stats(loud, ids)
    for name in ("h0.attn.qkv", "h1.mlp.fc1"):
        assert b[name].absmax[7] == pytest.approx(20.0 * a[name].absmax[7], rel=1e-5)
        np.testing.assert_allclose(np.delete(b[name].absmax, 7), np.delete(a[name].absmax, 7), rtol=1e-6)
    np.testing.assert_allclose(b["h0.attn.proj"].absmax, a["h0.attn.proj"].absmax, rtol=1e-5)  # unchanged
    only_ln1 = activation_stats(amplify_channel(gpt, 7, 20.0, layernorms=("ln1",)), ids)
    assert only_ln1["h0.mlp.fc1"].absmax[7] == pytest.approx(a["h0.mlp.fc1"].absmax[7], rel=1e-6)


def test_transforms_reject_bad_input(gpt, ids):
    stats = activation_stats(gpt, ids)
    with pytest.raises(TypeError, match="labkit.nn.GPT"):
        fold_layernorms(nn.Sequential([nn.Dense(3, 2)]))
    with pytest.raises(ValueError, match="alpha"):
        smooth_gpt(gpt, stats, 1.5)
    with pytest.raises(KeyError, match="h0.attn.qkv"):
        smooth_gpt(gpt, {}, 0.5)
    with pytest.raises(ValueError, match=r"shape \(32,\)"):
        smooth_gpt(gpt, {k: v.absmax[:3] for k, v in stats.items()}, 0.5)
    with pytest.raises(TypeError, match="dict"):
        smooth_gpt(gpt, [1, 2], 0.5)
    with pytest.raises(ValueError, match="channel"):
        amplify_channel(gpt, D, 2.0)
    with pytest.raises(ValueError, match="factor"):
        amplify_channel(gpt, 0, 0.0)
    with pytest.raises(ValueError, match="layernorms"):
        amplify_channel(gpt, 0, 2.0, layernorms="ln1")
    with pytest.raises(ValueError, match="power of two"):
        rotate_gpt(models.gpt(V, T, 1, 2, 24, seed=0))


# --- fake-quantized inference -----------------------------------------------------------------------


def test_weights_sit_on_the_per_channel_grid_and_the_head_stays_float(gpt, ids):
    q = quantize_gpt(gpt, weight_bits=4)
    names = [n for n, _ in quant.quantized_layers(q)]
    assert names == [n for n, _ in gpt.weight_layers() if n != "head"]
    assert type(q["head"]) is nn.Dense
    for name in names:
        layer = q[name]
        s = np.abs(gpt[name].W).max(axis=1, keepdims=True) / 7
        codes = layer.W_hat / s
        np.testing.assert_allclose(codes, np.rint(codes), atol=1e-3)
        assert np.abs(np.rint(codes)).max() == 7
        np.testing.assert_array_equal(layer.W, gpt[name].W)
    assert isinstance(quantize_gpt(gpt, include_head=True)["head"], QuantDense)
    assert type(gpt["h0.attn.qkv"]) is nn.Dense  # the model passed in is unchanged


def test_float_quantdense_is_the_float_model(gpt, ids):
    q = quantize_gpt(gpt, weight_bits=None, act=None)
    np.testing.assert_array_equal(q.forward(ids), gpt.forward(ids))


def test_per_tensor_static_scale_comes_from_the_calibration_maximum(gpt, ids):
    q = quantize_gpt(gpt, weight_bits=None, act="per_tensor", calibration=ids[:3])
    stats = activation_stats(gpt, ids[:3])
    for name, layer in quant.quantized_layers(q):
        assert float(layer.act_qparams.scale) == pytest.approx(stats[name].absmax.max() / 127, rel=1e-6)
    with nn.record_inputs(q, ["h1.mlp.fc1"]) as rec:
        q.forward(ids)
    layer = q["h1.mlp.fc1"]
    s = float(layer.act_qparams.scale)
    x_hat = quant.quantize_per_tensor(rec["h1.mlp.fc1"], layer.act_qparams).X_hat
    assert np.abs(x_hat).max() <= 127 * s * (1 + 1e-6)  # beyond the calibrated range: clamped
    np.testing.assert_allclose(x_hat / s, np.rint(x_hat / s), atol=1e-3)


def test_per_token_quantization_matches_the_array_quantizer(gpt, ids):
    q = quantize_gpt(gpt, weight_bits=8, act="per_token", act_bits=4)
    layer = q["h0.mlp.fc2"]
    with nn.record_inputs(q, ["h0.mlp.fc2"]) as rec:
        out = q.forward(ids)
    X = rec["h0.mlp.fc2"]
    expect = quant.quantize_per_token(X, 4).X_hat @ layer.W_hat.T + layer.b
    got = layer.forward(X)
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-5)
    assert out.shape == (len(ids), T, V)


def test_llm_int8_with_a_low_threshold_keeps_columns_in_float(gpt, ids):
    exact = quantize_gpt(gpt, act="llm_int8", threshold=1e-9)  # every column in float: the float model
    np.testing.assert_allclose(logits64(exact, ids), logits64(gpt, ids), atol=1e-3)
    assert float_column_fraction(exact)["all"] == 1.0
    none = quantize_gpt(gpt, act="llm_int8", threshold=1e9)  # no column in float: vector-wise int8
    none.forward(ids)
    assert float_column_fraction(none)["all"] == 0.0
    mid = quantize_gpt(gpt, act="llm_int8", threshold=6.0)
    mid.forward(ids)
    frac = float_column_fraction(mid)
    assert set(frac) == {n for n, _ in quant.quantized_layers(mid)} | {"all"}
    assert 0.0 <= min(frac.values()) and max(frac.values()) <= 1.0


def test_quantization_error_grows_as_bits_shrink_and_rotation_keeps_the_float_model(gpt, ids):
    ref = logits64(gpt, ids)
    err = {b: np.abs(logits64(quantize_gpt(gpt, weight_bits=b, act="per_token", act_bits=b), ids) - ref).mean()
           for b in (8, 4)}  # fmt: skip
    assert err[8] < err[4] / 4
    rq = quantize_gpt(rotate_gpt(gpt), weight_bits=None, act=None)
    np.testing.assert_allclose(logits64(rq, ids), ref, atol=1e-4)
    assert rq["h0.mlp.fc2"].input_hadamard  # the online rotation survives quantize_gpt


def test_quantdense_is_for_evaluation_only(gpt, ids):
    q = quantize_gpt(gpt)
    with pytest.raises(ValueError, match="evaluation only"):
        q["h0.mlp.fc1"].forward(np.zeros((2, D), np.float32), training=True)
    with pytest.raises(NotImplementedError):
        q["h0.mlp.fc1"].backward(np.zeros((2, 4 * D), np.float32))
    with pytest.raises(ValueError, match="expects input of shape"):
        q["h0.mlp.fc1"].forward(np.zeros((2, D + 1), np.float32))


def test_quantize_gpt_rejects_bad_input(gpt, ids):
    with pytest.raises(TypeError, match="labkit.nn.GPT"):
        quantize_gpt(nn.Sequential([nn.Dense(3, 2)]))
    with pytest.raises(ValueError, match="act must be one of"):
        quantize_gpt(gpt, act="per_channel")
    with pytest.raises(ValueError, match="weight_bits"):
        quantize_gpt(gpt, weight_bits=16)
    with pytest.raises(ValueError, match="act_bits"):
        quantize_gpt(gpt, act="per_token", act_bits=1)
    with pytest.raises(ValueError, match="calibration windows"):
        quantize_gpt(gpt, act="per_tensor")
    with pytest.raises(TypeError, match="calibration must be"):
        quantize_gpt(gpt, act="per_tensor", calibration=[[0, 1]])
    with pytest.raises(ValueError, match="weight_bits=8"):
        quantize_gpt(gpt, weight_bits=4, act="llm_int8")
    with pytest.raises(ValueError, match="threshold"):
        quantize_gpt(gpt, act="llm_int8", threshold=0)
    with pytest.raises(KeyError, match="linear layers"):
        quant.replace_linear(gpt.copy(), "h0.ln1", nn.Dense(D, D))
    with pytest.raises(ValueError, match="signs"):
        QuantDense.from_dense(nn.Dense(4, 2)).rotate_input_online(np.array([1, 1, 0, 1]))
    with pytest.raises(ValueError, match="power-of-two"):
        QuantDense.from_dense(nn.Dense(6, 2)).rotate_input_online()
    with pytest.raises(TypeError, match="labkit.nn.Dense"):
        QuantDense.from_dense(np.zeros((2, 2)))
