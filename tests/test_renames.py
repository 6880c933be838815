"""Every public name renamed for "one word for each idea" still works for one release, with a
DeprecationWarning that names the new name, and gives what the new name gives."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from labkit import check, models, prune, quant
from labkit.grading import notebook as nbmod


def _same(old, new):
    """``old()`` warns (naming the new name) and returns what ``new()`` returns, which warns about nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = new()
    with pytest.warns(DeprecationWarning) as caught:
        got = old()
    return got, expected, str(caught[0].message)


def test_qparams_axis():
    W = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    got, want, msg = _same(lambda: quant.qparams(W, 8, per_channel_axis=0), lambda: quant.qparams(W, 8, axis=0))
    assert np.array_equal(got[0], want[0]) and "use axis=" in msg
    got, want, msg = _same(
        lambda: quant.quantization_error(W, 4, per_channel_axis=0), lambda: quant.quantization_error(W, 4, axis=0)
    )
    assert got == want and "use axis=" in msg
    with pytest.raises(TypeError, match="give only axis="):
        quant.qparams(W, 8, axis=0, per_channel_axis=0)


def test_structured_pruning_sparsity():
    model = models.mlp([8, 6, 3], seed=0)
    got, want, msg = _same(
        lambda: prune.prune_neurons(model, "fc1", amount=0.5), lambda: prune.prune_neurons(model, "fc1", sparsity=0.5)
    )
    assert got["fc1"].W.shape == want["fc1"].W.shape == (3, 8) and "use sparsity=" in msg
    for fn in (prune.units_to_keep,):
        got, want, _ = _same(lambda fn=fn: fn(model["fc1"].W, amount=0.5), lambda fn=fn: fn(model["fc1"].W, 0.5))
        assert np.array_equal(got, want)
    got, want, _ = _same(
        lambda: prune.mask_units(model, "fc1", amount=0.5), lambda: prune.mask_units(model, "fc1", 0.5)
    )
    assert np.array_equal(got["fc1"].W, want["fc1"].W)


def test_compress_layerwise_calib():
    model = models.mlp([6, 4, 2], seed=0)
    X = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    got, want, msg = _same(
        lambda: prune.compress_layerwise(model, X_calib=X, method="rtn", bits=4),
        lambda: prune.compress_layerwise(model, calib=X, method="rtn", bits=4),
    )
    assert np.array_equal(got[0]["fc1"].W, want[0]["fc1"].W) and "use calib=" in msg


def test_integer_model_act_bits_and_layers():
    model = models.mlp([6, 4, 2], seed=0)
    engine = quant.quantize_model(model, calib=np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32))
    for old, new, name in [("bits", "act_bits", "act_bits"), ("signed", "act_signed", "act_signed")]:
        got, want, msg = _same(lambda old=old: getattr(engine, old), lambda new=new: getattr(engine, new))
        assert got == want and name in msg
    got, want, msg = _same(lambda: engine.ops, lambda: engine.layers)
    assert [op for _, op in got] == want and "IntegerModel.layers" in msg


def test_exercise_and_check_cell_ids():
    ex = check.exercises("lab00")["accuracy"]
    got, want, msg = _same(lambda: ex.grade_id, lambda: ex.answer_id)
    assert got == want == "accuracy" and "Exercise.answer_id" in msg
    failed = check.CheckFailed("a hint", "accuracy")
    got, want, msg = _same(lambda: failed.grade_id, lambda: failed.answer_id)
    assert got == want and "CheckFailed.answer_id" in msg
    asg = nbmod.load_assignment(Path(__file__).resolve().parent.parent / "notebooks" / "00_welcome_and_baseline.ipynb")
    got, want, msg = _same(lambda: asg.checks[1].grade_id, lambda: asg.checks[1].check_id)
    assert got == want == "check_accuracy" and "CheckCell.check_id" in msg
