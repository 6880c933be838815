"""Where a language model's activations are large: the inputs of its linear layers, measured.

Activation-aware quantization starts from a measurement. For every linear layer of a GPT
(``h0.attn.qkv``, ``h0.attn.proj``, ``h0.mlp.fc1``, ``h0.mlp.fc2``, ..., ``head``) this module runs
the model on token windows and keeps, for the layer's input ``X`` (tokens, in):

* the **per-channel maximum** ``max_t |X[t, j]|`` (what SmoothQuant balances and what a per-tensor
  activation scale is set by; LLM.int8() keeps a column in float when it reaches 6.0);
* the **kurtosis** of all entries, ``E[(x − μ)⁴] / σ⁴`` (Pearson's; 3 for a normal distribution,
  far larger when a few entries dwarf the rest: the number QuaRot and SpinQuant report falling under
  a rotation);
* the **largest entries** with where they sit: window, position, channel and the token there.
  Position 0 holds the BOS token that opens every window, where "attention sinks" and their
  massive activations appear in large models (Xiao et al. 2024; Sun et al. 2024).

:func:`attention_to_first` measures the sinks themselves: the share of each head's attention that
goes to the first position.

Statistics are accumulated batch by batch (running maxima and float64 moment sums), so any number
of windows fits in memory.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn import record_inputs
from ..validation import check_int

__all__ = ["InputStats", "Activation", "activation_stats", "attention_to_first", "kurtosis"]


class Activation(NamedTuple):
    """One entry of a layer's input: its value, window (row of ``ids``), position, channel and token id."""

    value: float
    window: int
    position: int
    channel: int
    token: int


class InputStats(NamedTuple):
    """What :func:`activation_stats` measured at one linear layer's input.

    Attributes
    ----------
    absmax : ndarray of float64, shape (in,)
        ``max_t |X[t, j]|`` per input channel j.
    kurtosis : float
        Pearson kurtosis of all entries of ``X`` (3 for Gaussian values).
    std : float
        Standard deviation of all entries.
    tokens : int
        Rows (tokens) seen.
    largest : list of Activation
        The ``top`` entries of largest ``|X|``, largest first.
    position_absmax : ndarray of float64, shape (T,)
        ``max |X|`` over channels and windows at each position 0 .. T−1 (position 0: BOS).
    """

    absmax: np.ndarray
    kurtosis: float
    std: float
    tokens: int
    largest: list
    position_absmax: np.ndarray


def kurtosis(x) -> float:
    """Pearson kurtosis ``E[(x − μ)⁴] / σ⁴`` of all entries of ``x`` (float64; 3 for normal data).

    Raises
    ------
    ValueError
        ``x`` is empty or constant (σ = 0).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("kurtosis needs at least one value, got an empty array")
    c = x - x.mean()
    var = np.mean(c * c)
    if var == 0:
        raise ValueError("kurtosis is undefined for constant values (variance 0)")
    return float(np.mean(c**4) / var**2)


class _Accumulator:
    """Running per-channel maxima, moment sums and top entries of one layer's input."""

    def __init__(self, top):
        self.top = top
        self.absmax = None
        self.pos_absmax = None
        self.sums = np.zeros(5)  # count, Σx, Σx², Σx³, Σx⁴ (float64)
        self.largest = []
        self._offset = 0  # index of the batch's first window in ``ids``

    def add(self, X, ids):
        b, t = ids.shape
        A = np.abs(X.astype(np.float64))
        col = A.max(axis=0)
        self.absmax = col if self.absmax is None else np.maximum(self.absmax, col)
        pos = A.reshape(b, t, -1).max(axis=(0, 2))
        if self.pos_absmax is None or self.pos_absmax.size < t:
            grown = np.zeros(t)
            if self.pos_absmax is not None:
                grown[: self.pos_absmax.size] = self.pos_absmax
            self.pos_absmax = grown
        self.pos_absmax[:t] = np.maximum(self.pos_absmax[:t], pos)
        x = X.astype(np.float64).ravel()
        x2 = x * x
        self.sums += (x.size, x.sum(), x2.sum(), (x2 * x).sum(), (x2 * x2).sum())
        k = min(self.top, A.size)
        flat = np.argpartition(A.ravel(), A.size - k)[A.size - k :]
        rows, chans = np.unravel_index(flat, A.shape)
        for r, c in zip(rows, chans):
            w, p = divmod(int(r), t)
            self.largest.append((float(X[r, c]), self._offset + w, p, int(c), int(ids[w, p])))
        self.largest.sort(key=lambda e: -abs(e[0]))
        del self.largest[self.top :]

    def result(self):
        n, s1, s2, s3, s4 = self.sums
        mu = s1 / n
        var = s2 / n - mu * mu
        m4 = s4 / n - 4 * mu * s3 / n + 6 * mu * mu * s2 / n - 3 * mu**4
        kurt = float(m4 / var**2) if var > 0 else float("nan")
        return InputStats(
            self.absmax,
            kurt,
            float(np.sqrt(max(var, 0.0))),
            int(n // self.absmax.size),
            [Activation(*e) for e in self.largest],
            self.pos_absmax,
        )


def _check_ids(model, ids):
    if not isinstance(ids, np.ndarray) or ids.dtype.kind not in "iu" or ids.ndim != 2:
        got = f"{ids.dtype} of shape {ids.shape}" if isinstance(ids, np.ndarray) else type(ids).__name__
        raise TypeError(f"ids must be a 2-D integer array of token windows (windows, T), got {got}")
    if not 1 <= ids.shape[1] <= model.context:
        raise ValueError(f"ids must have 1 <= T <= {model.context} positions per window, got shape {ids.shape}")
    return ids


def activation_stats(model, ids, names=None, top: int = 10, batch_size: int = 32) -> dict:
    """Per-channel maxima, kurtosis and largest entries at the input of each linear layer.

    Parameters
    ----------
    model : labkit.nn.GPT
        Float, or with layers from :mod:`labkit.quant.transformer` (a layer that rotates its input
        online, ``input_hadamard``, is measured after the rotation: what its matrix product sees).
    ids : ndarray of int, shape (windows, T)
        Token windows, each opened by BOS (``labkit.data.lm_windows(...)[0]``).
    names : sequence of str, optional
        Layer names; default every linear layer (``model.weight_layers()``).
    top : int
        How many of the largest entries to keep per layer.
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    dict
        ``{name: InputStats}`` in the order of ``names``.
    """
    ids = _check_ids(model, ids)
    top = check_int("top", top, lo=1)
    batch_size = check_int("batch_size", batch_size, lo=1)
    names = [n for n, _ in model.weight_layers()] if names is None else list(names)
    acc = {name: _Accumulator(top) for name in names}
    current = {}

    def on_input(name, x):
        layer = model[name]
        if getattr(layer, "input_hadamard", False):
            x = layer.transform_input(x)
        acc[name].add(x, current["ids"])

    with record_inputs(model, names, on_input=on_input):
        for i in range(0, len(ids), batch_size):
            current["ids"] = ids[i : i + batch_size]
            for a in acc.values():
                a._offset = i
            model.forward(current["ids"])
    return {name: acc[name].result() for name in names}


def attention_to_first(model, ids, batch_size: int = 32) -> np.ndarray:
    """Mean attention probability that queries at positions ≥ 1 give to position 0 (BOS), per head.

    A head that has nothing useful to read parks its attention on the first token (an "attention
    sink"); for a head that spread attention uniformly the value would be about the mean of
    ``1/(t+1)`` over positions t (for T = 128, 0.04).

    Returns
    -------
    ndarray of float64, shape (n_layer, n_head)
    """
    ids = _check_ids(model, ids)
    batch_size = check_int("batch_size", batch_size, lo=1)
    if ids.shape[1] < 2:
        raise ValueError(f"need windows of at least 2 positions (queries after the first), got shape {ids.shape}")
    total = np.zeros((model.n_layer, model.n_head))
    for i in range(0, len(ids), batch_size):
        model.forward(ids[i : i + batch_size])
        for k, block in enumerate(model.blocks):
            total[k] += block.attn.probs[:, :, 1:, 0].astype(np.float64).sum(axis=(0, 2))
    return total / (len(ids) * (ids.shape[1] - 1))
