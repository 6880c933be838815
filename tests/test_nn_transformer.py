"""labkit.nn's transformer layers and GPT: gradients against finite differences (float64) and against
PyTorch (when installed), the causal mask, input recording, save/load, and errors on bad input."""

import numpy as np
import pytest
from conftest import require_torch
from test_nn import check_layer, numerical_grad

from labkit import nn
from labkit.models import gpt
from labkit.train import cross_entropy

SMALL = {"vocab_size": 7, "context": 6, "n_layer": 2, "n_head": 2, "d_model": 8}


def small_gpt(seed=0, dtype=np.float64):
    """A tiny GPT with non-trivial LayerNorm gains and biases (the builder sets them to 1 and 0)."""
    model = gpt(**SMALL, seed=seed).astype(dtype)
    rng = np.random.default_rng(seed + 100)
    for key, a in model.parameters().items():
        if key.endswith((".gamma", ".beta", ".b")):
            a[...] = (1.0 if key.endswith(".gamma") else 0.0) + 0.3 * rng.standard_normal(a.shape)
        else:
            a *= 10  # weights of O(0.2): gradients well above finite-difference noise
    return model


def test_embedding_gradient_adds_repeated_ids(rng):
    emb = nn.Embedding(5, 3, rng=rng).astype(np.float64)
    ids = np.array([[0, 2, 2], [4, 2, 0]])
    out = emb.forward(ids)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[1, 0], emb.W[4])
    r = rng.standard_normal(out.shape)
    assert emb.backward(r) is None
    num = numerical_grad(lambda: float(np.sum(emb.forward(ids) * r)), emb.W)
    np.testing.assert_allclose(emb.dW, num, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(emb.dW[2], r[0, 1] + r[0, 2] + r[1, 1])  # id 2 occurs three times
    np.testing.assert_array_equal(emb.dW[[1, 3]], 0.0)  # ids never used get no gradient


def test_layernorm_gradients(rng):
    ln = nn.LayerNorm(5)
    ln.gamma[:] = rng.standard_normal(5)
    ln.beta[:] = rng.standard_normal(5)
    check_layer(ln, rng.standard_normal((2, 3, 5)) * 3 + 1, rng)


def test_layernorm_normalises_each_vector(rng):
    x = rng.standard_normal((4, 7)) * 5 + 3
    y = nn.LayerNorm(7).astype(np.float64).forward(x)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1.0 / (1.0 + 1e-5 / x.var(axis=-1)), rtol=1e-12)


def test_gelu_gradients_and_tanh_form(rng):
    x = rng.standard_normal((3, 11)) * 3
    check_layer(nn.GELU(), x, rng)
    from scipy.special import erf

    grid = np.linspace(-8, 8, 20001)
    tanh_form = nn.GELU().forward(grid)
    exact = 0.5 * grid * (1 + erf(grid / np.sqrt(2)))
    gap = np.abs(tanh_form - exact).max()
    assert 1e-5 < gap < 5e-4  # the tanh approximation: close to x·Φ(x), and not the same function


def test_causal_attention_backward_with_more_keys_than_queries(rng):
    q = rng.standard_normal((2, 3, 2, 4))
    k, v = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 5, 4))
    y, probs = nn.causal_attention(q, k, v)
    np.testing.assert_allclose(probs.sum(-1), 1.0)
    assert np.all(probs[..., 0, 4] == 0.0) and np.all(probs[..., 0, 3] > 0)  # query 0 sits at position 3
    r = rng.standard_normal(y.shape)
    dq, dk, dv = nn.causal_attention_backward(r, q, k, v, probs)
    for arr, grad in ((q, dq), (k, dk), (v, dv)):
        num = numerical_grad(lambda: float(np.sum(nn.causal_attention(q, k, v)[0] * r)), arr)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


def test_attention_on_cached_keys_equals_the_full_pass(rng):
    """The seam for a KV cache: the last query against all keys gives the full pass's last row."""
    q, k, v = (rng.standard_normal((1, 2, 6, 4)) for _ in range(3))
    y_full, _ = nn.causal_attention(q, k, v)
    for t in range(6):
        y_t, _ = nn.causal_attention(q[:, :, t : t + 1], k[:, :, : t + 1], v[:, :, : t + 1])
        np.testing.assert_allclose(y_t[:, :, 0], y_full[:, :, t], rtol=1e-12)
    with pytest.raises(ValueError, match="at least as many keys as queries"):
        nn.causal_attention(q, k[:, :, :3], v[:, :, :3])


def test_causal_self_attention_gradients(rng):
    attn = nn.CausalSelfAttention(8, 2, rng=rng)
    attn.qkv.b[:] = rng.standard_normal(24)
    attn.proj.b[:] = rng.standard_normal(8)
    assert set(attn.params()) == {"qkv.W", "qkv.b", "proj.W", "proj.b"}
    check_layer(attn, rng.standard_normal((2, 5, 8)), rng)
    assert attn.probs.shape == (2, 2, 5, 5)


def test_mlp_and_block_gradients(rng):
    check_layer(nn.MLP(6, 10, rng=rng), rng.standard_normal((2, 3, 6)), rng)
    block = nn.Block(8, 4, rng=rng)
    block.ln1.gamma[:] = 1 + 0.3 * rng.standard_normal(8)
    check_layer(block, rng.standard_normal((2, 4, 8)), rng)


def gpt_loss_and_grads(model, ids, targets):
    logits = model.forward(ids)
    loss, g = cross_entropy(logits, targets)
    model.backward(g)
    return loss, {k: g.copy() for layer in model.layers for k, g in _named_grads(layer)}


def _named_grads(layer):
    return [(f"{layer.name}.{p}", g) for p, g in layer.grads().items()]


def test_whole_gpt_gradient_matches_finite_differences():
    model = small_gpt()
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 7, (2, 6))
    targets = rng.integers(0, 7, (2, 6))
    _, grads = gpt_loss_and_grads(model, ids, targets)
    params = model.parameters()
    assert set(grads) == set(params) and len(params) == 2 + 2 * 12 + 2 + 2
    loss = lambda: cross_entropy(model.forward(ids), targets)[0]
    for key, p in params.items():
        np.testing.assert_allclose(grads[key], numerical_grad(loss, p), rtol=1e-5, atol=1e-8, err_msg=key)


def test_positions_beyond_the_input_get_no_gradient():
    model = small_gpt()
    ids = np.zeros((1, 4), dtype=np.int64)
    gpt_loss_and_grads(model, ids, ids)
    assert np.all(model.wpe.dW[4:] == 0) and np.all(np.abs(model.wpe.dW[:4]).sum(axis=1) > 0)


def test_future_tokens_do_not_change_past_outputs():
    model = small_gpt()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, (3, 6))
    base = model.forward(ids)
    for t in range(6):
        changed = ids.copy()
        changed[:, t] = (changed[:, t] + 1) % 7
        out = model.forward(changed)
        np.testing.assert_array_equal(out[:, :t], base[:, :t])  # positions before t: bit for bit
        assert np.all(np.abs(out[:, t:] - base[:, t:]).max(axis=(1, 2)) > 1e-6)  # t and later: changed
    # a shorter input gives the same logits on the positions it has
    np.testing.assert_allclose(model.forward(ids[:, :3]), base[:, :3], rtol=1e-12)


def test_gpt_protocol_names_and_counts():
    model = gpt(vocab_size=66, context=128, n_layer=4, n_head=4, d_model=128, seed=0)
    names = [n for n, _ in model.weight_layers()]
    assert names[:4] == ["h0.attn.qkv", "h0.attn.proj", "h0.mlp.fc1", "h0.mlp.fc2"]
    assert names[-1] == "head" and len(names) == 4 * 4 + 1
    assert all(isinstance(layer, nn.Dense) for _, layer in model.weight_layers())
    assert model["h2.mlp.fc1"].W.shape == (512, 128)
    assert isinstance(model["h1.attn"], nn.CausalSelfAttention) and model["h1.attn"].qkv is model["h1.attn.qkv"]
    assert sum(a.size for a in model.parameters().values()) == 826_690
    assert model.layer_names[:3] == ["wte", "wpe", "h0.ln1"]
    with pytest.raises(KeyError, match="valid names: wte, wpe, h0"):
        model["h9.attn"]
    # GPT-2 initialisation: the residual projections are scaled down by sqrt(2 n_layer)
    assert abs(model["h0.mlp.fc1"].W.std() - 0.02) < 0.001
    assert abs(model["h0.mlp.fc2"].W.std() - 0.02 / np.sqrt(8)) < 0.0005
    np.testing.assert_array_equal(gpt(**SMALL, seed=3).head.W, gpt(**SMALL, seed=3).head.W)
    assert not np.array_equal(gpt(**SMALL, seed=3).head.W, gpt(**SMALL, seed=4).head.W)


def test_copy_is_independent():
    model = small_gpt()
    twin = model.copy()
    twin["h0.attn.qkv"].W[:] = 0
    assert np.abs(model["h0.attn.qkv"].W).sum() > 0


def test_save_load_roundtrip(tmp_path):
    model = small_gpt(dtype=np.float32)
    model["h1.mlp.fc1"].mask = np.random.default_rng(0).random(model["h1.mlp.fc1"].W.shape) > 0.5
    path = nn.save(model, tmp_path / "g.npz", metadata={"val_loss": 1.5})
    loaded = nn.load(path)
    assert isinstance(loaded, nn.GPT) and loaded.config() == model.config()
    for (k, a), (k2, b) in zip(model.parameters().items(), loaded.parameters().items()):
        assert k == k2 and b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded["h1.mlp.fc1"].mask, model["h1.mlp.fc1"].mask)
    ids = np.random.default_rng(1).integers(0, 7, (2, 6))
    np.testing.assert_array_equal(loaded.forward(ids), model.forward(ids))
    assert loaded.metadata == {"val_loss": 1.5}


def test_record_inputs_captures_every_dense_input_and_restores():
    model = small_gpt()
    ids = np.random.default_rng(2).integers(0, 7, (3, 5))
    with nn.record_inputs(model) as rec:
        logits = model.forward(ids)
    assert rec.names == [n for n, _ in model.weight_layers()]
    for name, layer in model.weight_layers():
        assert rec[name].shape == (3 * 5, layer.in_features)
    # fc2's input is GELU's output; the head's input is the final LayerNorm's output, row b*T + t
    fc1 = model["h1.mlp.fc1"]
    np.testing.assert_array_equal(rec["h1.mlp.fc2"], model["h1.mlp.gelu"].forward(rec["h1.mlp.fc1"] @ fc1.W.T + fc1.b))
    np.testing.assert_allclose(rec["head"] @ model.head.W.T + model.head.b, logits.reshape(15, 7), rtol=1e-12)
    assert "forward" not in vars(model["h0.attn.qkv"])  # the wrapper is gone
    with nn.record_inputs(model, names=["h0.ln1"]) as rec:
        model.forward(ids)
        model.forward(ids[:, :2])
    assert [b.shape for b in rec.batches["h0.ln1"]] == [(3, 5, 8), (3, 2, 8)]


def test_record_inputs_streams_and_checks_names():
    model = small_gpt()
    seen = []
    with nn.record_inputs(model, names=["head"], on_input=lambda n, x: seen.append((n, x.shape))) as rec:
        model.forward(np.zeros((2, 3), dtype=np.int64))
    assert seen == [("head", (6, 8))] and rec.batches["head"] == []
    with pytest.raises(KeyError, match="no layer named 'h7.mlp.fc1'"):
        with nn.record_inputs(model, names=["h7.mlp.fc1"]):
            pass
    with pytest.raises(TypeError, match="wrap it in a list"):
        with nn.record_inputs(model, names="head"):
            pass
    with nn.record_inputs(model) as rec:
        pass
    with pytest.raises(ValueError, match="saw no input"):
        rec["head"]


def test_bad_inputs_say_what_was_expected():
    model = small_gpt()
    with pytest.raises(TypeError, match="numpy array of token ids"):
        model.forward([[0, 1]])
    with pytest.raises(TypeError, match="ids must be integers, got dtype float64"):
        model.forward(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"1 <= T <= 6, got shape \(1, 7\)"):
        model.forward(np.zeros((1, 7), dtype=np.int64))
    with pytest.raises(ValueError, match=r"wte: ids must be in \[0, 7\), got values in \[0, 7\]"):
        model.forward(np.array([[0, 7]]))
    with pytest.raises(ValueError, match="n_head must divide d_model, got d_model=10 and n_head=4"):
        gpt(vocab_size=5, context=4, n_layer=1, n_head=4, d_model=10)
    with pytest.raises(ValueError, match="bos"):
        gpt(vocab_size=5, context=4, n_layer=1, n_head=1, d_model=4, bos=5)
    with pytest.raises(ValueError, match=r"h0.ln1.*\(\.\.\., 8\).*\(2, 3, 5\)"):
        model["h0.ln1"].forward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match=r"\(batch, T, 8\)"):
        model["h0.attn"].forward(np.zeros((6, 8)))
    with pytest.raises(TypeError, match="context must be an int"):
        gpt(vocab_size=5, context=4.0, n_layer=1, n_head=1, d_model=4)


@pytest.mark.peers
def test_gpt_matches_pytorch_forward_and_gradients():
    torch = require_torch()
    F = torch.nn.functional
    model = small_gpt()
    rng = np.random.default_rng(9)
    ids, targets = rng.integers(0, 7, (2, 6)), rng.integers(0, 7, (2, 6))
    loss, grads = gpt_loss_and_grads(model, ids, targets)
    P = {k: torch.tensor(a, requires_grad=True) for k, a in model.parameters().items()}
    lin = lambda x, name: F.linear(x, P[f"{name}.W"], P[f"{name}.b"])
    ln = lambda x, name: F.layer_norm(x, (8,), P[f"{name}.gamma"], P[f"{name}.beta"], eps=1e-5)
    x = P["wte.W"][torch.tensor(ids)] + P["wpe.W"][:6]
    for i in range(2):
        q, k, v = lin(ln(x, f"h{i}.ln1"), f"h{i}.attn.qkv").split(8, dim=2)
        q, k, v = (t.view(2, 6, 2, 4).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 6, 8)
        x = x + lin(y, f"h{i}.attn.proj")
        h = F.gelu(lin(ln(x, f"h{i}.ln2"), f"h{i}.mlp.fc1"), approximate="tanh")
        x = x + lin(h, f"h{i}.mlp.fc2")
    logits = lin(ln(x, "ln_f"), "head")
    np.testing.assert_allclose(logits.detach().numpy(), model.forward(ids), rtol=1e-10, atol=1e-12)
    ref = F.cross_entropy(logits.reshape(-1, 7), torch.tensor(targets).reshape(-1))
    ref.backward()
    assert abs(ref.item() - loss) < 1e-12
    for key, p in P.items():
        np.testing.assert_allclose(grads[key], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.peers
def test_layers_match_pytorch_modules(rng):
    torch = require_torch()
    x = rng.standard_normal((2, 3, 6)) * 2
    ln = nn.LayerNorm(6).astype(np.float64)
    ln.gamma[:], ln.beta[:] = rng.standard_normal(6), rng.standard_normal(6)
    ref = torch.nn.LayerNorm(6, eps=1e-5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ln.gamma))
        ref.bias.copy_(torch.tensor(ln.beta))
    tx = torch.tensor(x, requires_grad=True)
    out = ref(tx)
    r = rng.standard_normal(out.shape)
    out.backward(torch.tensor(r))
    np.testing.assert_allclose(ln.forward(x), out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ln.backward(r), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ln.dgamma, ref.weight.grad.numpy(), rtol=1e-10)
    gelu, tx = nn.GELU(), torch.tensor(x, requires_grad=True)
    out = torch.nn.GELU(approximate="tanh")(tx)
    out.backward(torch.tensor(r))
    np.testing.assert_allclose(gelu.forward(x), out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gelu.backward(r), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_new_layers_in_a_sequential_save_and_load(tmp_path, rng):
    """The layer registry rebuilds them, and a composite's sublayers keep their parameters and masks."""
    net = nn.Sequential([nn.Embedding(5, 8), nn.LayerNorm(8), nn.CausalSelfAttention(8, 2), nn.GELU()])
    assert net.layer_names == ["emb1", "ln1", "attn1", "gelu1"]
    assert "attn1.qkv.W" in net.parameters() and net["attn1"].qkv.name == "attn1.qkv"
    net["attn1"].proj.mask = rng.random((8, 8)) > 0.5
    loaded = nn.load(nn.save(net, tmp_path / "s.npz"))
    ids = rng.integers(0, 5, (2, 4))
    np.testing.assert_array_equal(loaded.forward(ids), net.forward(ids))
    np.testing.assert_array_equal(loaded["attn1"].proj.mask, net["attn1"].proj.mask)
