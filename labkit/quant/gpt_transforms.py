"""Transforms of a GPT that leave its float output unchanged and move where the large values sit.

Each function returns a new :class:`labkit.nn.GPT` (the model passed in is left alone) that
computes the same logits in exact arithmetic, up to float32 rounding in practice, but whose linear
layers see different inputs, which is what quantization cares about. The array-level folds are
those of :mod:`labkit.quant.smoothquant` and :mod:`labkit.quant.rotation`; this module applies them
to every block of a pre-LN GPT (``x + attn(ln1(x))``, ``h + mlp(ln2(h))``, ``head(ln_f(·))``):

* :func:`smooth_gpt`: SmoothQuant (Xiao et al. 2023). Per block, ``diag(s)⁻¹`` into ``ln1``'s γ, β and
  ``diag(s)`` into the columns of ``attn.qkv``; the same for ``ln2`` and ``mlp.fc1``, with
  ``s_j = max|X_j|^α / max|W_j|^(1−α)`` from calibration maxima (the paper's two smoothed inputs;
  the attention output and the GELU output are not smoothed).
* :func:`fold_layernorms`: every LayerNorm's γ, β into the layers that read it; the LayerNorms then
  run with γ = 1, β = 0.
* :func:`rotate_gpt`: rotations in the manner of QuaRot (Ashkboos et al. 2024), which the docstring
  of :mod:`labkit.quant.rotation` derives for this architecture: after :func:`fold_layernorms`,
  the residual stream by ``Q = H D H`` (mean-preserving, so it commutes with LayerNorm); the values
  and the attention's output projection by one Hadamard per head; and the MLP's down-projection
  input by an online Hadamard (``fwht`` at run time, :class:`~labkit.quant.QuantDense`).
* :func:`amplify_channel`: SmoothQuant run backwards, ``γ_j, β_j ← f·γ_j, f·β_j`` and the reader's
  column ``j ← column / f``: an outlier channel of size ``f`` put into an otherwise unchanged model,
  to study the methods on a model that has one.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_array, check_fraction, check_int, check_real
from .rotation import (
    block_diagonal,
    fold_layernorm_affine,
    hadamard,
    mean_preserving_rotation,
    randomized_hadamard,
    rotate_input_side,
    rotate_output_side,
)
from .smoothquant import fold_smoothquant_layernorm, smoothquant_scales
from .transformer import QuantDense, _check_gpt, replace_linear

__all__ = ["SMOOTHED_PAIRS", "smoothing_scales", "smooth_gpt", "fold_layernorms", "rotate_gpt", "amplify_channel"]

#: per block: (LayerNorm, the linear layer reading it); SmoothQuant smooths these inputs
SMOOTHED_PAIRS = (("ln1", "attn.qkv"), ("ln2", "mlp.fc1"))


def _absmax(x_absmax, name, n):
    if not isinstance(x_absmax, dict):
        raise TypeError(f"x_absmax must be a dict {{layer name: per-channel max |x|}}, got {type(x_absmax).__name__}")
    if name not in x_absmax:
        raise KeyError(f"x_absmax has no entry for {name!r} (it needs every smoothed layer: {name}, ...)")
    a = x_absmax[name]
    a = getattr(a, "absmax", a)  # an InputStats from activation_stats, or the array itself
    a = check_array(a, f"x_absmax[{name!r}]", kind="fiu", ndim=1, finite=True)
    if a.shape != (n,):
        raise ValueError(f"x_absmax[{name!r}] must have shape ({n},) (one maximum per input channel), got {a.shape}")
    return a


def smoothing_scales(model, x_absmax: dict, alpha: float) -> dict:
    """SmoothQuant's per-channel scales for each smoothed input of every block.

    Parameters
    ----------
    model : labkit.nn.GPT
    x_absmax : dict
        ``{reader name: max |x| per input channel}`` for ``h{i}.attn.qkv`` and ``h{i}.mlp.fc1`` of every
        block i (arrays (d_model,), or the :class:`~labkit.quant.InputStats` of
        :func:`~labkit.quant.activation_stats`), measured on calibration windows.
    alpha : float in [0, 1]
        Migration strength.

    Returns
    -------
    dict
        ``{reader name: s}``, ``s`` float32 (d_model,).
    """
    _check_gpt(model)
    alpha = check_fraction("alpha", alpha)
    out = {}
    for i in range(model.n_layer):
        for _, reader in SMOOTHED_PAIRS:
            name = f"h{i}.{reader}"
            W = model[name].W
            out[name] = smoothquant_scales(_absmax(x_absmax, name, W.shape[1]), W, alpha)
    return out


def smooth_gpt(model, x_absmax: dict, alpha: float):
    """A copy of ``model`` with SmoothQuant's scales folded into each block's LayerNorms and readers.

    ``ln1``'s γ, β are divided by ``s`` and ``attn.qkv``'s columns multiplied by it; the same for
    ``ln2`` and ``mlp.fc1``. Parameters as :func:`smoothing_scales`. The float output is unchanged up
    to rounding; the readers' inputs are divided channel by channel by ``s``.
    """
    scales = smoothing_scales(model, x_absmax, alpha)
    out = model.copy()
    for i, block in enumerate(out.blocks):
        for ln_name, reader in SMOOTHED_PAIRS:
            ln, lin = getattr(block, ln_name), out[f"h{i}.{reader}"]
            ln.gamma, ln.beta, lin.W = fold_smoothquant_layernorm(ln.gamma, ln.beta, lin.W, scales[f"h{i}.{reader}"])
    return out


def _norm_readers(model):
    """``[(LayerNorm, its reader Dense)]`` for every LayerNorm of a GPT."""
    pairs = []
    for block in model.blocks:
        pairs += [(block.ln1, block.attn.qkv), (block.ln2, block.mlp.fc1)]
    return pairs + [(model.ln_f, model.head)]


def fold_layernorms(model):
    """A copy of ``model`` with every LayerNorm's γ, β folded into its reader (``W diag(γ)``, ``b + W β``).

    The LayerNorms keep running, with γ = 1 and β = 0: they only normalise. The float output is
    unchanged up to rounding.
    """
    _check_gpt(model)
    out = model.copy()
    for ln, lin in _norm_readers(out):
        lin.W, lin.b = fold_layernorm_affine(ln.gamma, ln.beta, lin.W, lin.b)
        ln.gamma, ln.beta = np.ones_like(ln.gamma), np.zeros_like(ln.beta)
    return out


def rotate_gpt(model, seed: int = 0, residual: bool = True, heads: bool = True, online_fc2: bool = True,
               online_signs: bool = True):  # fmt: skip
    """A copy of ``model`` with orthogonal rotations folded in (output unchanged up to rounding).

    Parameters
    ----------
    model : labkit.nn.GPT
        d_model, d_model / n_head and 4·d_model powers of two (Walsh–Hadamard sizes).
    seed : int
        Draws the random signs of the residual rotation ``Q = H D H``.
    residual : bool
        Rotate the residual stream: γ, β folded into the readers first (:func:`fold_layernorms`);
        the embeddings' rows and the readers' columns by ``Qᵀ`` (q, k, v, first MLP layer, head);
        the writers' rows and biases by ``Q`` (attention output projection, second MLP layer).
    heads : bool
        One Hadamard per head on the values (rows of ``attn.qkv`` for v) and the columns of
        ``attn.proj``: the output projection reads rotated head outputs.
    online_fc2 : bool
        ``mlp.fc2`` becomes a :class:`~labkit.quant.QuantDense` that rotates its input at run time,
        ``x ↦ fwht(x · d)``, with ``Qᵀ = (H diag(d))ᵀ`` folded into its weights (GELU sits in between,
        so no offline fold).
    online_signs : bool
        ``d`` random signs (QuaRot's randomized Hadamard, :func:`~labkit.quant.randomized_hadamard`
        with ``seed``), or all +1 (plain ``H``). The GELU output has a positive mean; the first row
        of a plain ``H`` is all ones, so ``fwht`` gathers that mean into channel 0 (``√n`` times the
        mean): random signs keep it spread.

    Returns
    -------
    labkit.nn.GPT
    """
    _check_gpt(model)
    seed = check_int("seed", seed, lo=0)
    out = fold_layernorms(model) if residual else model.copy()
    d, n_head = out.d_model, out.n_head
    if residual:
        Q = mean_preserving_rotation(d, seed)
        out.wte.W = rotate_input_side(out.wte.W, Q)
        out.wpe.W = rotate_input_side(out.wpe.W, Q)
        for block in out.blocks:
            block.attn.qkv.W = rotate_input_side(block.attn.qkv.W, Q)
            block.mlp.fc1.W = rotate_input_side(block.mlp.fc1.W, Q)
            block.attn.proj.W, block.attn.proj.b = rotate_output_side(block.attn.proj.W, block.attn.proj.b, Q)
            block.mlp.fc2.W, block.mlp.fc2.b = rotate_output_side(block.mlp.fc2.W, block.mlp.fc2.b, Q)
        out.head.W = rotate_input_side(out.head.W, Q)
    if heads:
        Qh = block_diagonal(hadamard(d // n_head), n_head)
        for block in out.blocks:
            qkv = block.attn.qkv
            W, b = qkv.W.copy(), qkv.b.copy()
            W[2 * d :], b[2 * d :] = rotate_output_side(W[2 * d :], b[2 * d :], Qh)
            qkv.W, qkv.b = W, b
            block.attn.proj.W = rotate_input_side(block.attn.proj.W, Qh)
    if online_fc2:
        n = 4 * d
        signs = np.sign(randomized_hadamard(n, seed)[0]) if online_signs else None
        Q = hadamard(n) * (1.0 if signs is None else signs[None, :])
        for i, block in enumerate(out.blocks):
            fc2 = QuantDense.from_dense(block.mlp.fc2)
            fc2.W = rotate_input_side(fc2.W, Q)
            fc2.rotate_input_online(signs)
            replace_linear(out, f"h{i}.mlp.fc2", fc2)
    return out


def amplify_channel(model, channel: int, factor: float, layernorms=("ln1", "ln2")):
    """SmoothQuant backwards: make input channel ``channel`` of the readers ``factor`` times larger.

    In every block, each named LayerNorm's ``γ[channel]`` and ``β[channel]`` are multiplied by
    ``factor`` and the matching column of the layer that reads it (``attn.qkv`` for ``ln1``,
    ``mlp.fc1`` for ``ln2``) is divided by it. The float output is unchanged (up to rounding); the
    readers' inputs now have one channel ``factor`` times larger than before, on every token.

    Parameters
    ----------
    model : labkit.nn.GPT
    channel : int in [0, d_model)
    factor : float > 0
    layernorms : sequence of "ln1", "ln2"

    Returns
    -------
    labkit.nn.GPT
    """
    _check_gpt(model)
    channel = check_int("channel", channel, lo=0, hi=model.d_model - 1)
    factor = check_real("factor", factor, 0.0, lo_open=True)
    readers = dict(SMOOTHED_PAIRS)
    if isinstance(layernorms, str) or not set(layernorms) <= set(readers) or not layernorms:
        raise ValueError(f"layernorms must be a non-empty sequence of {', '.join(readers)}, got {layernorms!r}")
    out = model.copy()
    for i, block in enumerate(out.blocks):
        for ln_name in layernorms:
            ln, lin = getattr(block, ln_name), out[f"h{i}.{readers[ln_name]}"]
            f = ln.gamma.dtype.type(factor)
            ln.gamma, ln.beta, W = ln.gamma.copy(), ln.beta.copy(), lin.W.copy()
            ln.gamma[channel] *= f
            ln.beta[channel] *= f
            W[:, channel] = (W[:, channel].astype(np.float64) / factor).astype(W.dtype)
            lin.W = W
    return out
