"""labkit.nn.generate: the KV cache reproduces the full forward pass; greedy generation with and without it agree."""

from __future__ import annotations

import numpy as np
import pytest

from labkit import models, nn


@pytest.fixture(scope="module")
def model():
    return models.gpt(vocab_size=11, context=16, n_layer=2, n_head=2, d_model=8, seed=3)


def _ids(rng, b, t, vocab=11):
    ids = rng.integers(1, vocab, size=(b, t))
    ids[:, 0] = 0  # BOS
    return ids


def test_cached_forward_token_by_token_equals_full_forward(model):
    ids = _ids(np.random.default_rng(0), 3, 16)
    full = model.forward(ids)
    cache = nn.KVCache(model, batch=3)
    steps = [nn.forward_cached(model, ids[:, t : t + 1], cache) for t in range(16)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 16
    assert cache.nbytes == nn.kv_cache_bytes(model, tokens=16, batch=3) == 2 * 2 * 8 * 4 * 16 * 3


def test_cached_forward_in_chunks(model):
    ids = _ids(np.random.default_rng(1), 2, 12)
    cache = nn.KVCache(model, batch=2)
    a = nn.forward_cached(model, ids[:, :5], cache)
    b = nn.forward_cached(model, ids[:, 5:], cache)
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), model.forward(ids), rtol=1e-5, atol=1e-5)


def test_generate_with_cache_equals_without(model):
    prompt = _ids(np.random.default_rng(2), 2, 4)
    with_cache = nn.generate(model, prompt, 10)
    without = nn.generate(model, prompt, 10, use_cache=False)
    assert with_cache.shape == (2, 14)
    np.testing.assert_array_equal(with_cache, without)
    np.testing.assert_array_equal(with_cache[:, :4], prompt)
    # each generated token is the argmax of the full forward over what came before
    logits = model.forward(with_cache[:, :-1])
    np.testing.assert_array_equal(logits[:, 3:].argmax(-1), with_cache[:, 4:])


def test_linears_replace_the_layer_product(model):
    prompt = _ids(np.random.default_rng(3), 1, 3)
    calls = []

    def fc1(x):
        calls.append(x.shape)
        return model["h0.mlp.fc1"].forward(x)

    same = nn.generate(model, prompt, 5, linears={"h0.mlp.fc1": fc1})
    np.testing.assert_array_equal(same, nn.generate(model, prompt, 5))
    assert calls == [(3, 8)] + [(1, 8)] * 4  # the prompt once, then one row per new token
    zero_head = nn.generate(model, prompt, 3, linears={"head": lambda x: np.zeros((len(x), 11), np.float32)})
    np.testing.assert_array_equal(zero_head[:, 3:], 0)  # argmax of all-equal logits is id 0


def test_store_transforms_what_is_cached(model):
    ids = _ids(np.random.default_rng(4), 1, 6)
    cache = nn.KVCache(model, store=lambda a: np.zeros_like(a))
    nn.forward_cached(model, ids, cache)
    assert all(not k[:, :, :6].any() for k in cache.keys + cache.values)
    exact = nn.KVCache(model)
    nn.forward_cached(model, ids, exact)
    assert all(k[:, :, :6].any() for k in exact.keys)


def test_bad_input(model):
    cache = nn.KVCache(model)
    with pytest.raises(ValueError, match="holds 16 positions"):
        nn.forward_cached(model, np.zeros((1, 17), np.int64), cache)
    with pytest.raises(TypeError, match="integer array"):
        nn.forward_cached(model, np.zeros((1, 2)), cache)
    with pytest.raises(ValueError, match=r"\(1, T_new"):
        nn.forward_cached(model, np.zeros((2, 2), np.int64), cache)
    with pytest.raises(TypeError, match="KVCache"):
        nn.forward_cached(model, np.zeros((1, 2), np.int64), None)
    with pytest.raises(ValueError, match="exceeds the context"):
        nn.generate(model, np.zeros((1, 10), np.int64), 7)
    with pytest.raises(ValueError, match="use_cache=True"):
        nn.generate(model, np.zeros((1, 2), np.int64), 1, use_cache=False, store=lambda a: a)
    with pytest.raises(TypeError, match="store"):
        nn.KVCache(model, store=3)
    with pytest.raises(ValueError, match="bytes_per_value"):
        nn.kv_cache_bytes(model, bytes_per_value=0)
    with pytest.raises(TypeError, match="prompt"):
        nn.generate(model, [[0, 1]], 2)
