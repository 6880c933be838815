"""labkit.quant.lsq: learned step size quantization (Esser et al. 2020): forward, gradients, initialisation."""

import numpy as np
import pytest

from labkit.quant import fake_quantize, lsq_backward, lsq_fake_quantize, lsq_grad_scale, lsq_init_step, ste_mask


def test_forward_is_the_symmetric_narrow_grid(rng):
    W = rng.standard_normal((6, 40)).astype(np.float32)
    step = np.float32(0.3) * np.ones(6, np.float32)
    out = lsq_fake_quantize(W, step, 3, axis=0)
    assert out.dtype == np.float32
    assert np.array_equal(out, fake_quantize(W, step, np.zeros(6, np.int64), 3, True, axis=0, narrow_range=True))
    assert set(np.unique(np.rint(out / 0.3)).tolist()) <= set(range(-3, 4))  # narrow: -3..3 at 3 bits
    assert np.abs(out).max() <= 3 * 0.3 * (1 + 1e-6) < np.abs(W).max()  # the largest weights are clipped


def test_init_follows_the_paper(rng):
    W = rng.standard_normal((5, 30)).astype(np.float32)
    for bits, qp in ((2, 1), (4, 7), (8, 127)):
        per_channel = lsq_init_step(W, bits, axis=0)
        assert per_channel.shape == (5,) and per_channel.dtype == np.float32
        np.testing.assert_allclose(per_channel, 2 * np.abs(W).mean(axis=1) / np.sqrt(qp), rtol=1e-6)
        np.testing.assert_allclose(lsq_init_step(W, bits), 2 * np.abs(W).mean() / np.sqrt(qp), rtol=1e-6)
    assert lsq_init_step(np.zeros((2, 3), np.float32), 4, axis=0).min() > 0  # never a zero step
    assert lsq_grad_scale(W, 4, axis=0) == pytest.approx(1 / np.sqrt(30 * 7))
    assert lsq_grad_scale(W, 4) == pytest.approx(1 / np.sqrt(150 * 7))


def _surrogate(x, step, bits, axis, frozen_step):
    """The forward pass as LSQ differentiates it: the rounding residual (and the inside/clipped
    decision) frozen at ``frozen_step``, everything else a function of ``step``."""
    shape = [1] * x.ndim
    if axis is not None:
        shape[axis] = -1
    s, s0 = np.reshape(step, shape), np.reshape(frozen_step, shape)
    qmax = 2 ** (bits - 1) - 1
    v0 = x / s0
    r0 = np.rint(v0)
    inside = np.abs(r0) <= qmax
    return np.where(inside, x + s * (r0 - v0), s * np.clip(r0, -qmax, qmax))


@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("bits", [2, 4])
def test_step_gradient_matches_finite_differences(axis, bits, rng):
    x = rng.standard_normal((7, 9)) * 1.5  # float64: the central differences below need it
    n_steps = 1 if axis is None else x.shape[axis]
    step = rng.uniform(0.2, 0.6, n_steps)
    if axis is None:
        step = step.reshape(())
    grad_out = rng.standard_normal(x.shape)
    grad_x, grad_step = lsq_backward(grad_out, x, step, bits, axis=axis, grad_scale=1.0)
    clipped = ~ste_mask(x, step, np.zeros(np.shape(step), np.int64), bits, True, axis, narrow_range=True)
    assert 0 < clipped.sum() < x.size  # both branches of the gradient are exercised
    assert np.array_equal(grad_x, np.where(clipped, 0.0, grad_out))
    eps = 1e-6
    numeric = np.zeros(n_steps)
    for k in range(n_steps):
        e = np.zeros(n_steps)
        e[k] = eps
        up = _surrogate(x, np.ravel(step) + e, bits, axis, np.ravel(step))
        down = _surrogate(x, np.ravel(step) - e, bits, axis, np.ravel(step))
        numeric[k] = (grad_out * (up - down)).sum() / (2 * eps)
    np.testing.assert_allclose(np.ravel(grad_step), numeric, rtol=1e-7, atol=1e-9)
    # the paper's gradient scale multiplies it
    _, scaled = lsq_backward(grad_out, x, step, bits, axis=axis)
    np.testing.assert_allclose(scaled, grad_step * lsq_grad_scale(x, bits, axis), rtol=1e-12)
    # the surrogate is the forward pass at the frozen step (it only changes how the gradient is taken)
    forward = _surrogate(x, np.ravel(step), bits, axis, np.ravel(step))
    np.testing.assert_allclose(forward, lsq_fake_quantize(x, step, bits, axis), rtol=0, atol=1e-12)


def test_step_gradient_signs():
    """Each value's share of d x_hat / d step: its rounding residual inside the range (0 on a level),
    the clip level outside it."""
    x = np.array([10.0, 2.0, 1.4, -1.6, -10.0])
    step = np.array(1.0)
    _, g = lsq_backward(np.ones(5), x, step, 3, grad_scale=1.0)  # qmax 3
    # inside: round(v) - v = 0, -0.4 (1.4 -> 1), +0.4 (-1.6 -> -2); clipped: +3 and -3
    assert g == pytest.approx(3 + 0 - 0.4 + (-2 + 1.6) - 3)
    each = [lsq_backward(np.eye(5)[i], x, step, 3, grad_scale=1.0)[1] for i in range(5)]
    assert np.allclose(each, [3.0, 0.0, -0.4, -0.4, -3.0])


def test_bad_input(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="positive"):
        lsq_fake_quantize(x, np.array([0.1, 0.0, 0.1], np.float32), 4, axis=0)
    with pytest.raises(ValueError, match="one step size per index of axis 0"):
        lsq_fake_quantize(x, np.ones(4, np.float32), 4, axis=0)
    with pytest.raises(ValueError, match="one step size for the whole tensor"):
        lsq_fake_quantize(x, np.ones(3, np.float32), 4)
    with pytest.raises(ValueError, match="must match"):
        lsq_backward(np.ones((3, 5)), x, np.float32(0.1), 4)
    with pytest.raises(TypeError):
        lsq_fake_quantize(np.arange(4), np.float32(0.1), 4)
    with pytest.raises(ValueError, match="bits"):
        lsq_init_step(x, 1)
