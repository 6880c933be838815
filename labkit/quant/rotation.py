"""Orthogonal rotations that spread outliers before quantization (the idea of QuaRot and SpinQuant).

For an orthogonal ``Q`` (``Q Qᵀ = I``) a linear layer computes the same thing on rotated inputs with
rotated weights: ``x Wᵀ = (x Qᵀ)(W Qᵀ)ᵀ``. A rotation mixes every channel into every other, so one
huge activation channel becomes many moderate ones (the kurtosis drops) and quantizes with a smaller
error; the same holds for the weights. The Walsh–Hadamard matrix is the convenient choice: entries
``±1/√n`` (every output channel takes an equal share of every input), and ``x ↦ x Hᵀ`` costs
``O(n log n)`` by the fast transform (:func:`fwht`) instead of ``O(n²)``.

Convention: a rotation acts on a row vector as ``x ↦ x Qᵀ`` (``Q x`` for a column vector), and
``fwht(x) = x Hᵀ``. A layer that **reads** the rotated stream takes ``W ← W Qᵀ``
(:func:`rotate_input_side`; also the embedding tables, whose rows are stream vectors); a layer that
**writes** it takes ``W ← Q W``, ``b ← Q b`` (:func:`rotate_output_side`); :func:`fold_rotation`
does both for a pair of linear layers with nothing non-linear between them.

Which rotations leave a pre-LN GPT's output unchanged (blocks ``x + Attn(LN₁(x))``,
``h + MLP(LN₂(h))``, LayerNorm with mean subtraction, learned γ and β, GELU MLP, no rotary embedding)?

1. **Online, in front of any linear layer** (always exact): rotate its input at run time,
   ``x ↦ fwht(x)``, and fold ``Hᵀ`` into its weights offline (``W ← W Hᵀ``). This is QuaRot's online
   Hadamard before the MLP's down-projection: GELU is element-wise, so the rotation cannot be moved
   into the first MLP layer, and the down-projection's input (``4·d_model`` wide, a power of two
   here) is rotated by an FWHT per token. It costs ``O(n log n)`` per token at inference.
2. **Values and attention output, per head** (exact offline): attention mixes tokens, not channels,
   so ``P (V Qᵀ) = (P V) Qᵀ`` for each head. With a block-diagonal ``Q`` (one ``head_dim`` rotation
   per head, :func:`block_diagonal`) fold it into the value projection's rows (``rotate_output_side``)
   and the output projection's columns (``rotate_input_side``). A rotation mixing *different* heads
   does not commute (each head has its own ``P``); it would have to be applied online.
3. **Queries and keys, per head** (exact offline): scores ``q kᵀ = (q Qᵀ)(k Qᵀ)ᵀ``; fold the same
   per-head ``Q`` into the rows of both projections. This rotates what the KV cache stores for keys
   (QuaRot rotates after RoPE online; without RoPE it folds).
4. **The residual stream** (QuaRot's and SpinQuant's main rotation): *not* exact with a plain
   Hadamard here. LayerNorm subtracts the mean, and ``H`` does not keep the all-ones direction
   (``H·1 = √n·e₁``), so ``LN(x Hᵀ) ≠ LN(x) Hᵀ``; its γ and β are per channel and do not commute
   either. QuaRot and SpinQuant work on LLaMA, whose RMSNorm has no mean subtraction; for LayerNorm
   models they follow SliceGPT (Ashkboos et al. 2024): fold γ, β into the next layers, make every
   writer's output mean-free, and *replace* LayerNorm by RMSNorm, which changes the model's layers.
   Keeping LayerNorm, the rotation is still exact when (a) γ and β are folded into the layers that
   read each LayerNorm (:func:`fold_layernorm_affine`; the LayerNorm then runs with γ = 1, β = 0) and
   (b) ``Q`` keeps the all-ones vector, ``Qᵀ·1 = 1``: then ``mean(x Qᵀ) = mean(x)``,
   ``x Qᵀ − mean·1 = (x − mean·1) Qᵀ`` and its norm is unchanged, so ``LN(x Qᵀ) = LN(x) Qᵀ`` exactly
   (ε included). :func:`mean_preserving_rotation` builds such a ``Q = H D H`` from two Hadamards and
   random signs ``D`` (``D₀₀ = +1``), applied in ``O(n log n)`` as ``fwht(fwht(x) · d)``.
   The recipe: fold every LayerNorm's γ, β into its readers; embeddings ``E ← E Qᵀ`` (token and
   position tables); readers (q, k, v projections, first MLP layer, LM head) ``W ← W Qᵀ``; writers
   (attention output and second MLP layer) ``W ← Q W``, ``b ← Q b``. A tied LM head stops being tied
   (the final γ folds into it). ``tests/test_quant_rotation.py`` runs this on a two-block GPT in
   numpy: the logits agree to float64 rounding with ``Q = H D H`` and not with ``Q = H``.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_array, check_int, check_matrix

__all__ = [
    "hadamard",
    "fwht",
    "randomized_hadamard",
    "mean_preserving_rotation",
    "block_diagonal",
    "rotate_input_side",
    "rotate_output_side",
    "fold_rotation",
    "fold_layernorm_affine",
]


def _power_of_two(n, name="n"):
    n = check_int(name, n, lo=1)
    if n & (n - 1):
        raise ValueError(f"{name} must be a power of two (1, 2, 4, ...) for a Hadamard matrix, got {n}")
    return n


def hadamard(n: int) -> np.ndarray:
    """The orthogonal Walsh–Hadamard matrix of order ``n`` (Sylvester's construction, divided by √n).

    ``H₁ = [1]``, ``H₂ₖ = [[Hₖ, Hₖ], [Hₖ, −Hₖ]]``; entry ``(i, j)`` is ``(−1)^popcount(i & j) / √n``.
    Symmetric and orthogonal, so ``H Hᵀ = H H = I``.

    Parameters
    ----------
    n : int, a power of two

    Returns
    -------
    ndarray of float64, shape (n, n)
    """
    n = _power_of_two(n)
    i = np.arange(n)
    parity = np.zeros((n, n), np.int64)
    and_ = i[:, None] & i[None, :]
    while np.any(and_):
        parity ^= and_ & 1
        and_ >>= 1
    return (1.0 - 2.0 * parity) / np.sqrt(n)


def fwht(x) -> np.ndarray:
    """Fast Walsh–Hadamard transform along the last axis, orthonormal: ``fwht(x) = x @ hadamard(n).T``.

    ``log₂ n`` butterfly passes ``(a, b) → (a + b, a − b)`` over pairs ``h`` apart (h = 1, 2, 4, ...),
    then a division by √n: ``O(n log n)`` per vector. Its own inverse (``fwht(fwht(x)) = x``), and it
    keeps norms.

    Parameters
    ----------
    x : array_like of real numbers, shape (..., n), n a power of two

    Returns
    -------
    ndarray, shape of ``x``: float32 for float32 (and float16) input, float64 otherwise

    Raises
    ------
    ValueError
        The last axis is not a power of two long (or ``x`` is 0-d).
    """
    x = check_array(x, "x", kind="fiu")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis (the one transformed), got a 0-d array")
    n = _power_of_two(x.shape[-1], "x.shape[-1]")
    dtype = np.float32 if x.dtype in (np.float32, np.float16) else np.float64
    lead = x.shape[:-1]
    y = x.astype(dtype)
    h = 1
    while h < n:
        y = y.reshape(*lead, n // (2 * h), 2, h)
        y = np.stack([y[..., 0, :] + y[..., 1, :], y[..., 0, :] - y[..., 1, :]], axis=-2)
        h *= 2
    return (y.reshape(x.shape) / np.sqrt(dtype(n))).astype(dtype)


def randomized_hadamard(n: int, seed: int = 0) -> np.ndarray:
    """``Q = H · diag(d)`` with random signs ``d`` (QuaRot's randomized Hadamard), float64 (n, n).

    ``x Qᵀ = fwht(x · d)``. Different seeds give different orthogonal matrices with ``±1/√n`` entries.
    """
    n = _power_of_two(n)
    d = np.random.default_rng(check_int("seed", seed, lo=0)).choice([-1.0, 1.0], n)
    return hadamard(n) * d[None, :]


def mean_preserving_rotation(n: int, seed: int = 0) -> np.ndarray:
    """An orthogonal ``Q = H D H`` that keeps the all-ones vector (``Q·1 = Qᵀ·1 = 1``).

    ``D = diag(d)`` holds random signs with ``d₀ = +1``: ``H·1 = √n e₀``, ``D e₀ = e₀``, ``H e₀ = 1/√n``,
    so ``Q·1 = 1``. ``Q`` is symmetric; its entries depend on ``i XOR j`` only and are of order
    ``1/√n``, so it spreads a single outlier channel over all channels like a Hadamard does. Rotating a
    LayerNorm's input by it commutes with the mean subtraction (see the module docstring, point 4).
    ``x Qᵀ = fwht(fwht(x) · d)``.

    Returns
    -------
    ndarray of float64, shape (n, n)
    """
    n = _power_of_two(n)
    d = np.random.default_rng(check_int("seed", seed, lo=0)).choice([-1.0, 1.0], n)
    d[0] = 1.0
    H = hadamard(n)
    return (H * d[None, :]) @ H


def block_diagonal(Q, n_blocks: int) -> np.ndarray:
    """``diag(Q, Q, ..., Q)`` with ``n_blocks`` copies: one rotation per attention head.

    Parameters
    ----------
    Q : ndarray, shape (k, k), e.g. ``hadamard(head_dim)``
    n_blocks : int >= 1, e.g. ``n_head``

    Returns
    -------
    ndarray of float64, shape (n_blocks · k, n_blocks · k)
    """
    Q = _rotation(Q)
    return np.kron(np.eye(check_int("n_blocks", n_blocks, lo=1)), Q)


def _rotation(Q, n=None, name="Q"):
    Q = check_matrix(Q, name, rows="n", cols="n").astype(np.float64)
    if Q.shape[0] != Q.shape[1] or (n is not None and Q.shape[0] != n):
        want = "square" if n is None else f"({n}, {n})"
        raise ValueError(f"{name} must be a {want} rotation matrix, got shape {Q.shape}")
    off = float(np.abs(Q @ Q.T - np.eye(Q.shape[0])).max())
    if off > 1e-5:
        raise ValueError(f"{name} must be orthogonal (Q Qᵀ = I), got max |Q Qᵀ − I| = {off:.3g}")
    return Q


def _like(a, ref):
    return a.astype(ref.dtype if ref.dtype.kind == "f" else np.float64)


def rotate_input_side(W, Q) -> np.ndarray:
    """``W Qᵀ``: the layer now reads the rotated stream ``x Qᵀ`` and computes what it did on ``x``.

    Parameters
    ----------
    W : ndarray, shape (out, n)
        A reader's ``Dense.W``, or an embedding table (vocab, n) whose rows are stream vectors.
    Q : ndarray, shape (n, n), orthogonal

    Returns
    -------
    ndarray, shape (out, n), W's float dtype
    """
    W = check_matrix(W)
    Q = _rotation(Q, W.shape[1])
    return _like(W.astype(np.float64) @ Q.T, W)


def rotate_output_side(W, b, Q):
    """``(Q W, Q b)``: the layer now writes ``y Qᵀ`` where it wrote ``y``.

    Parameters
    ----------
    W : ndarray, shape (n, k)
        A writer's ``Dense.W`` (its n outputs are the rotated channels).
    b : array_like, shape (n,), or None
    Q : ndarray, shape (n, n), orthogonal

    Returns
    -------
    (ndarray (n, k), ndarray (n,) or None), in the inputs' float dtypes
    """
    W = check_matrix(W)
    Q = _rotation(Q, W.shape[0])
    new_b = None
    if b is not None:
        b = check_array(b, "b", kind="fiu", ndim=1, finite=True)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},) like W's outputs, got {b.shape}")
        new_b = _like(Q @ b.astype(np.float64), b)
    return _like(Q @ W.astype(np.float64), W), new_b


def fold_rotation(W_first, b_first, W_second, Q):
    """Rotate the channels between two linear layers: ``(Q W₁, Q b₁, W₂ Qᵀ)``.

    Exact when nothing non-linear (per channel) sits between them: ``(x W₁ᵀ + b₁) W₂ᵀ`` is unchanged.
    With a per-head (block-diagonal) ``Q`` it also holds across attention: value projection first,
    output projection second (see the module docstring).

    Parameters
    ----------
    W_first : ndarray (n, k); b_first : (n,) or None; W_second : ndarray (out, n); Q : (n, n) orthogonal
    """
    W1, b1 = rotate_output_side(W_first, b_first, Q)
    return W1, b1, rotate_input_side(W_second, Q)


def fold_layernorm_affine(gamma, beta, W, b=None):
    """Fold a LayerNorm's ``γ``, ``β`` into the linear layer that reads it: ``(W·diag(γ), b + W β)``.

    ``W (γ ⊙ n + β) + b = (W diag(γ)) n + (W β + b)``; afterwards the LayerNorm runs with ``γ = 1``,
    ``β = 0`` (fold into every reader of that LayerNorm first).

    Parameters
    ----------
    gamma, beta : array_like, shape (n,)
    W : ndarray, shape (out, n)
    b : array_like, shape (out,), or None (zero)

    Returns
    -------
    (ndarray (out, n), ndarray (out,)) in W's float dtype
    """
    W = check_matrix(W)
    n, out = W.shape[1], W.shape[0]
    vecs = []
    for name, v, size in (("gamma", gamma, n), ("beta", beta, n), ("b", np.zeros(out) if b is None else b, out)):
        v = check_array(v, name, kind="fiu", ndim=1, finite=True)
        if v.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},), got {v.shape}")
        vecs.append(v.astype(np.float64))
    g, be, bias = vecs
    Wd = W.astype(np.float64)
    return _like(Wd * g[None, :], W), _like(bias + Wd @ be, W)
