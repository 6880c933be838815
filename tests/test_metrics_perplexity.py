"""labkit.metrics.window_nll and perplexity: a language model's score on held-out windows."""

import numpy as np
import pytest

from labkit import metrics, models, train
from labkit.softmax import log_softmax

TINY = {"vocab_size": 9, "context": 8, "n_layer": 1, "n_head": 2, "d_model": 16}


def test_uniform_model_has_perplexity_equal_to_the_vocabulary():
    model = models.gpt(**TINY, seed=0)
    model.head.W[:] = 0
    model.head.b[:] = 0  # every logit 0: each of the 9 tokens gets probability 1/9
    tokens = np.random.default_rng(0).integers(1, 9, 100)
    np.testing.assert_allclose(metrics.window_nll(model, tokens), np.log(9), rtol=1e-6)
    assert metrics.perplexity(model, tokens) == pytest.approx(9.0, rel=1e-6)


def test_window_nll_scores_each_window_after_bos():
    model = models.gpt(**TINY, seed=1)
    tokens = np.random.default_rng(1).integers(1, 9, 8 * 5 + 3)  # 5 windows and 3 tokens left over
    nll = metrics.window_nll(model, tokens, batch_size=2)
    assert nll.shape == (5,) and nll.dtype == np.float64
    for i in range(5):  # one window at a time, by hand
        window = tokens[8 * i : 8 * (i + 1)]
        logp = log_softmax(model.forward(np.concatenate([[model.bos], window[:-1]])[None]))[0]
        assert nll[i] == pytest.approx(-logp[np.arange(8), window].mean(), rel=1e-5)
    np.testing.assert_allclose(metrics.window_nll(model, tokens, batch_size=64), nll, rtol=1e-6)
    assert metrics.perplexity(model, tokens) == pytest.approx(np.exp(nll.mean()), rel=1e-6)
    assert np.log(metrics.perplexity(model, tokens)) == pytest.approx(train.evaluate_lm(model, tokens), rel=1e-5)
    # shorter windows: more of them, each with less history
    assert metrics.window_nll(model, tokens, context=4).shape == (10,)


def test_better_model_has_lower_perplexity():
    tokens = np.tile(np.arange(1, 9), 40)
    model = models.gpt(**TINY, seed=0)
    before = metrics.perplexity(model, tokens)
    train.fit_lm(model, tokens, steps=40, batch_size=8, lr=1e-2, warmup_steps=4, progress=False)
    assert metrics.perplexity(model, tokens) < 2.0 < 7.0 < before


def test_bad_input():
    model = models.gpt(**TINY)
    with pytest.raises(ValueError, match=r"context must be in \[1, 8\], got 9"):
        metrics.window_nll(model, np.arange(1, 20), context=9)
    with pytest.raises(ValueError, match="at least one window of context=8 tokens, got 5"):
        metrics.perplexity(model, np.arange(1, 6))
    with pytest.raises(TypeError, match="integer ids"):
        metrics.perplexity(model, np.ones(20))
    with pytest.raises(ValueError, match=r"wte: ids must be in \[0, 9\)"):
        metrics.perplexity(model, np.arange(0, 20))
