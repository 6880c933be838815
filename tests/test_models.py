"""labkit.models: builders, scikit-learn parity, shipped baselines."""

import json
import warnings

import numpy as np
import pytest

from labkit import data, metrics, models, nn, train


def test_mlp_builder_and_seed():
    a, b, c = models.mlp([8, 5, 3], seed=1), models.mlp([8, 5, 3], seed=1), models.mlp([8, 5, 3], seed=2)
    np.testing.assert_array_equal(a["fc1"].W, b["fc1"].W)
    assert not np.array_equal(a["fc1"].W, c["fc1"].W)
    assert [type(layer).__name__ for layer in a.layers] == ["Dense", "ReLU", "Dense"]
    with pytest.raises(ValueError, match="at least an input and an output"):
        models.mlp([784])


@pytest.mark.parametrize("hidden", [(16,), (12, 8)])
def test_from_sklearn_same_predictions(digits, hidden):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    est = MLPClassifier(hidden_layer_sizes=hidden, max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(digits.X_train, digits.y_train)
    model = models.from_sklearn(est)
    np.testing.assert_array_equal(est.classes_[model.predict(digits.X_test)], est.predict(digits.X_test))
    proba = est.predict_proba(digits.X_test)
    logits = model.predict_logits(digits.X_test).astype(np.float64)
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(1, keepdims=True), proba, atol=1e-4)


def test_from_sklearn_binary(digits):
    from sklearn.neural_network import MLPClassifier

    mask = digits.y_train < 2
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=0).fit(
        digits.X_train[mask], digits.y_train[mask]
    )
    model = models.from_sklearn(est)
    test = digits.y_test < 2
    np.testing.assert_array_equal(est.classes_[model.predict(digits.X_test[test])], est.predict(digits.X_test[test]))


def test_from_sklearn_rejects_unfitted_and_tanh():
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(TypeError, match="fitted"):
        models.from_sklearn(MLPClassifier())
    est = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh", max_iter=5)
    est.fit(np.random.default_rng(0).random((20, 3)), np.arange(20) % 2)
    with pytest.raises(ValueError, match="relu"):
        models.from_sklearn(est)


@pytest.mark.parametrize("name,floor", [("lenet_300_100", 0.870), ("lenet5", 0.880)])
def test_pretrained_baselines_meet_targets(fashion, name, floor):
    model = models.pretrained(name)
    acc = train.evaluate(model, fashion.X_test, fashion.y_test)
    assert acc >= floor
    assert model.metadata["test_accuracy"] == pytest.approx(acc, abs=2e-4)  # what data/README.md reports


def test_pretrained_readme_records_accuracies():
    readme = (models.PRETRAINED_DIR.parent / "README.md").read_text()
    for name in ("lenet_300_100", "lenet5"):
        acc = nn.load(models.PRETRAINED_DIR / f"{name}.npz").metadata["test_accuracy"]
        assert f"{acc:.4f}" in readme, f"data/README.md should state {name}'s accuracy {acc:.4f}"


def test_pretrained_unknown():
    with pytest.raises(KeyError, match="available: lenet_300_100"):
        models.pretrained("resnet")


def test_recipe_is_recorded():
    meta = nn.load(models.PRETRAINED_DIR / "lenet_300_100.npz").metadata
    assert meta["command"] == "python -m labkit data --train-baselines"
    json.dumps(meta["recipe"])


# --- the shipped language model --------------------------------------------------------------------


def test_tiny_gpt_checkpoint_meets_its_target():
    """Validation loss <= 1.75 nats per character, measured here on the file as shipped."""
    path = models.PRETRAINED_DIR / "tiny_gpt.npz"
    assert path.stat().st_size <= 5 * 2**20
    model = models.pretrained("tiny_gpt")
    assert isinstance(model, nn.GPT)
    assert all(a.dtype == np.float32 for a in model.parameters().values())
    text = data.load_tiny_shakespeare()
    assert model.vocab_size == len(text.vocab) and model.bos == text.vocab.bos
    val_loss = metrics.window_nll(model, text.val).mean()
    assert val_loss <= 1.75
    assert model.metadata["val_loss"] == pytest.approx(val_loss, abs=1e-4)  # what data/README.md reports
    assert model.metadata["parameters"] == sum(a.size for a in model.parameters().values())


def test_tiny_gpt_readme_records_its_scores():
    meta = nn.load(models.PRETRAINED_DIR / "tiny_gpt.npz").metadata
    readme = (models.PRETRAINED_DIR.parent / "README.md").read_text()
    for key in ("val_loss", "val_perplexity", "test_loss", "test_perplexity"):
        assert f"{meta[key]:.4f}" in readme, f"data/README.md should state tiny_gpt's {key} {meta[key]:.4f}"
    assert f"{meta['parameters']:,}" in readme
    assert meta["command"] == "python -m labkit data --train-baselines --only tiny_gpt"
    json.dumps(meta["recipe"])
