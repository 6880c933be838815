"""Cross-checks of labkit.quant against PyTorch (extra 'peers').

The one documented difference: labkit divides ``x / scale`` in float64, PyTorch multiplies by the
float32 reciprocal ``1 / scale`` in float32 (and may add the zero point in float32 before
rounding). Exact ties (``x / scale = k + 0.5`` exactly) round to even in both, but a value within
a few float32 ulps of a tie can land on the other side in PyTorch, so its integer differs by
exactly 1. Everything else is equal.
"""

import numpy as np
import pytest
from conftest import require_torch

from labkit.quant import (
    fake_quantize,
    fake_quantize_backward,
    lsq_backward,
    lsq_fake_quantize,
    lsq_grad_scale,
    lsq_init_step,
    qparams,
    quantize,
)

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore::UserWarning")]


def _near_tie(x, scale, zero_point=0):
    """True where x / scale is within 4 float32 ulps of a half-integer, ulps taken at |x / scale| + |zero_point|
    (PyTorch may add the zero point in float32 before rounding)."""
    v = np.asarray(x, np.float64) / np.asarray(scale, np.float64)
    return np.abs(np.abs(v - np.floor(v)) - 0.5) <= 4 * 2.0**-24 * np.maximum(np.abs(v) + abs(zero_point), 1.0)


@pytest.mark.parametrize("signed", [False, True])
def test_quantize_per_tensor_matches_torch(signed, rng):
    torch = require_torch()
    x = (rng.standard_normal(100_000) * 3).astype(np.float32)
    x[:10] = [0.0, -0.0, 1e6, -1e6, 1e-30, 0.5, -0.5, 2.5, 3.5, -2.5]
    s, z = qparams(x[10:], 8, signed=signed)
    ours = quantize(x, s, z, 8, signed).astype(np.int64)
    dtype = torch.qint8 if signed else torch.quint8
    theirs = torch.quantize_per_tensor(torch.from_numpy(x), float(s), int(z), dtype).int_repr().numpy().astype(np.int64)
    diff = ours != theirs
    assert np.all(np.abs(ours - theirs) <= 1)
    assert np.all(_near_tie(x[diff], s, z)), "differences only a few ulps from a tie"
    assert diff.mean() < 1e-3


def test_exact_ties_round_to_even_in_both(rng):
    torch = require_torch()
    for scale in (0.25, 0.5, 1.0, 0.125):  # powers of two: (k + 0.5) * scale is exact in float32
        x = ((np.arange(-100, 100) + 0.5) * scale).astype(np.float32)
        ours = quantize(x, scale, 0, 8, True)
        theirs = torch.quantize_per_tensor(torch.from_numpy(x), scale, 0, torch.qint8).int_repr().numpy()
        assert np.array_equal(ours, theirs)
        assert np.array_equal(ours, np.clip(np.rint(x / scale), -128, 127))


def test_ties_at_non_power_of_two_scale_document_the_difference():
    torch = require_torch()
    scale = np.float32(0.1)
    x = ((np.arange(-60, 60) + 0.5) * np.float64(scale)).astype(np.float32)  # near-ties, not exact
    ours = quantize(x, scale, 0, 8, True).astype(int)
    theirs = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), 0, torch.qint8).int_repr().numpy()
    diff = ours != theirs
    assert diff.any()  # this is where the two really differ...
    assert np.all(np.abs(ours - theirs) <= 1) and np.all(_near_tie(x[diff], scale))  # ...and only by one step


def test_quantize_per_channel_matches_torch(rng):
    torch = require_torch()
    W = (rng.standard_normal((16, 50)) * rng.uniform(0.1, 3, (16, 1))).astype(np.float32)
    s, z = qparams(W, 8, symmetric=True, axis=0)
    ours = quantize(W, s, z, 8, True, axis=0).astype(np.int64)
    theirs = (
        torch.quantize_per_channel(
            torch.from_numpy(W), torch.from_numpy(s.astype(np.float64)), torch.from_numpy(z), 0, torch.qint8
        )
        .int_repr()
        .numpy()
    )
    diff = ours != theirs
    assert np.all(np.abs(ours - theirs) <= 1)
    assert np.all(_near_tie(W[diff], np.broadcast_to(s[:, None], W.shape)[diff]))


@pytest.mark.parametrize("bits,signed", [(8, False), (4, False), (4, True), (2, True)])
def test_fake_quantize_and_gradient_match_torch(bits, signed, rng):
    torch = require_torch()
    x = (rng.standard_normal(20_000) * 2).astype(np.float32)
    s, z = qparams(x[:500], bits, signed=signed)  # a narrow range: many values are clipped
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = torch.fake_quantize_per_tensor_affine(xt, float(s), int(z), qmin, qmax)
    g = rng.standard_normal(x.shape).astype(np.float32)
    yt.backward(torch.from_numpy(g))
    ours = fake_quantize(x, s, z, bits, signed)
    ours_g = fake_quantize_backward(g, x, s, z, bits, signed)
    near = _near_tie(x, s, z)
    theirs, theirs_g = yt.detach().numpy(), xt.grad.numpy()
    assert np.array_equal(ours[~near], theirs[~near])
    assert np.all(np.abs(ours - theirs)[near] <= s * (1 + 1e-6))
    # the STE: identical gradients, except where a near-tie sits right at the clipping boundary
    assert np.array_equal(ours_g[~near], theirs_g[~near])
    assert (ours_g != theirs_g).sum() <= near.sum()
    assert (ours_g == 0).sum() > 0 and (ours_g != 0).sum() > 0


@pytest.mark.parametrize("bits,per_channel", [(2, True), (4, True), (4, False)])
def test_lsq_gradients_match_torch_learnable_fake_quantize(bits, per_channel, rng):
    """labkit.quant.lsq against PyTorch's LSQ op (``_fake_quantize_learnable_*``, ``grad_factor`` = g)."""
    torch = require_torch()
    W = (rng.standard_t(3, (16, 50)) * 0.1).astype(np.float32)  # heavy tails: the initial step clips some
    axis = 0 if per_channel else None
    step = lsq_init_step(W, bits, axis=axis)
    qmax = 2 ** (bits - 1) - 1
    g = lsq_grad_scale(W, bits, axis=axis)
    grad_out = rng.standard_normal(W.shape).astype(np.float32)
    Wt = torch.from_numpy(W.copy()).requires_grad_(True)
    st = torch.from_numpy(np.atleast_1d(step).copy()).requires_grad_(True)
    if per_channel:
        zt = torch.zeros(16)
        yt = torch._fake_quantize_learnable_per_channel_affine(Wt, st, zt, 0, -qmax, qmax, g)
    else:
        yt = torch._fake_quantize_learnable_per_tensor_affine(Wt, st, torch.zeros(1), -qmax, qmax, g)
    yt.backward(torch.from_numpy(grad_out))
    ours = lsq_fake_quantize(W, step, bits, axis=axis)
    ours_gx, ours_gs = lsq_backward(grad_out, W, step, bits, axis=axis)
    s_full = np.broadcast_to(np.reshape(step, (-1, 1)) if per_channel else step, W.shape)
    near = _near_tie(W, s_full)
    assert np.array_equal(ours[~near], yt.detach().numpy()[~near])
    assert np.array_equal(ours_gx[~near], Wt.grad.numpy()[~near])
    assert (ours_gx == 0).any()  # some weights are clipped
    np.testing.assert_allclose(np.ravel(ours_gs), st.grad.numpy(), rtol=1e-4, atol=1e-6)
