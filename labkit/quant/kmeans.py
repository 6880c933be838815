"""Weight sharing by k-means (Han et al. 2016, "Deep Compression", §3).

The weights of a layer are clustered into ``2^bits`` shared values (the codebook); each weight is
stored as the ``bits``-bit index of its cluster. The centroids start **linearly spaced** between
the smallest and largest weight, which Han et al. found best because it keeps the few large
weights (that matter most) represented; Lloyd's iterations then move each centroid to the mean of
its weights. In one dimension, assigning a weight to its nearest centroid is a binary search among
the midpoints of the sorted centroids.

Fine-tuning the codebook (Han et al. §3.3): the gradient of a shared value is the **sum** of the
gradients of all weights that use it,
``dL/dc_k = sum_{ij: index_ij = k} dL/dW_ij``, and only the centroids (and biases) are updated.
A pruned weight belongs to no cluster: it is stored as zero, not as a shared value, so its
gradient is left out of every sum. (Pruned entries carry index 0 only as a placeholder; summing
their gradients into centroid 0 would move that shared value by the pull of hundreds of thousands
of weights that do not use it.) :class:`CodebookFinetune` reads each layer's pruning mask itself.
"""

from __future__ import annotations

import numpy as np

from ..train import Callback
from ..validation import check_bits, show

__all__ = ["kmeans_quantize", "kmeans_assign", "codebook_gradient", "CodebookFinetune", "kmeans_quantize_model"]


def kmeans_assign(w, codebook) -> np.ndarray:
    """Index of the nearest centroid of each entry of ``w`` (ties go to the lower centroid).

    Parameters
    ----------
    w : float array, any shape
    codebook : float array (k,), sorted ascending
    """
    codebook = np.asarray(codebook)
    mids = (codebook[1:].astype(np.float64) + codebook[:-1]) / 2
    return np.searchsorted(mids, np.asarray(w, dtype=np.float64), side="left").astype(np.intp)


def kmeans_quantize(w, bits: int, n_iter: int = 100, mask=None):
    """Cluster the entries of ``w`` into ``2^bits`` shared values, linear initialisation, Lloyd iterations.

    Parameters
    ----------
    w : float array, any shape, finite
    bits : int, 1..8
    n_iter : int
        Maximum Lloyd iterations (stops earlier when the assignment no longer changes).
    mask : bool array like w, optional
        Only these entries are clustered (pruned weights stay out, as in Deep Compression); the
        others get index 0 and are expected to be masked to zero by the caller.

    Returns
    -------
    codebook : float32 (2^bits,), ascending
    indices : uint8 array of w's shape, values in [0, 2^bits)
    """
    bits = check_bits(bits)
    if bits > 8:
        raise ValueError(f"kmeans_quantize stores uint8 indices: bits must be 1..8, got {bits}")
    w = np.asarray(w)
    if not np.issubdtype(w.dtype, np.floating):
        raise TypeError(f"kmeans_quantize expects float weights, got dtype {w.dtype}")
    k = 1 << bits
    if w.size == 0:
        return np.zeros(k, np.float32), np.zeros(w.shape, np.uint8)
    if not np.all(np.isfinite(w)):
        raise ValueError("kmeans_quantize: w contains NaN or inf values")
    sel = np.ones(w.shape, bool) if mask is None else np.asarray(mask, bool)
    if sel.shape != w.shape:
        raise ValueError(f"mask has shape {sel.shape}, w has {w.shape}")
    x = w[sel].astype(np.float64)
    if x.size == 0:
        return np.zeros(k, np.float32), np.zeros(w.shape, np.uint8)
    c = np.linspace(x.min(), x.max(), k)  # linear initialisation (Han et al. 2016, §3.1)
    idx = None
    for _ in range(n_iter):
        new = kmeans_assign(x, c)
        if idx is not None and np.array_equal(new, idx):
            break
        idx = new
        sums = np.bincount(idx, weights=x, minlength=k)
        counts = np.bincount(idx, minlength=k)
        c = np.where(counts > 0, sums / np.maximum(counts, 1), c)  # an empty cluster keeps its centroid
        c = np.sort(c)
    codebook = c.astype(np.float32)
    indices = np.zeros(w.shape, np.uint8)
    indices[sel] = kmeans_assign(x, codebook)
    return codebook, indices


def codebook_gradient(dW, indices, k: int, mask=None) -> np.ndarray:
    """Gradient of each shared value: the sum of the weight gradients in its cluster (Han et al. 2016, §3.3).

    Parameters
    ----------
    dW : float array, the loss gradient with respect to the layer's weights
    indices : integer array of dW's shape, the cluster of each weight
    k : int, the number of shared values
    mask : bool array of dW's shape, optional
        The pruning mask (True = kept). Pruned weights are in no cluster: their gradients are
        left out (their placeholder index is ignored).

    Returns
    -------
    float64 array (k,)
    """
    dW, indices = np.asarray(dW), np.asarray(indices)
    if dW.shape != indices.shape:
        raise ValueError(f"dW has shape {dW.shape}, indices {indices.shape}: they must match")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != dW.shape:
            raise ValueError(f"mask has shape {mask.shape}, dW {dW.shape}: they must match")
        if mask.dtype != bool:
            raise TypeError(f"mask must be a bool array (True = kept), got dtype {mask.dtype}")
        dW, indices = dW[mask], indices[mask]
    return np.bincount(indices.ravel().astype(np.intp), weights=dW.ravel().astype(np.float64), minlength=k)


def kmeans_quantize_model(model, bits: int, n_iter: int = 100):
    """A copy of ``model`` with every weight layer replaced by its k-means shared values.

    Returns
    -------
    model_copy, {layer_name: (codebook, indices)}
    """
    out = model.copy()
    books = {}
    for name, layer in out.weight_layers():
        cb, idx = kmeans_quantize(layer.W, bits, n_iter, mask=layer.mask)
        books[name] = (cb, idx)
        layer.W = cb[idx]
        if layer.mask is not None:
            layer.W = np.where(layer.mask, layer.W, np.float32(0))
    return out, books


class CodebookFinetune(Callback):
    """Train the shared values of k-means-quantized layers (Han et al. 2016, §3.3), with Adam.

    ``on_backward_end``: each centroid's gradient is the sum of the gradients of the weights in
    its cluster, the layer's pruned weights (``layer.mask`` False) left out; the centroids take
    an Adam step; the weight gradients are zeroed so the outer optimizer leaves
    ``W`` alone (biases still train). ``on_step_end``: ``W = codebook[indices]``.

    Parameters
    ----------
    books : {layer_name: (codebook, indices)} from :func:`kmeans_quantize_model`; the codebooks
        are updated in place.
    lr : float, the centroids' Adam learning rate
    """

    def __init__(self, books: dict, lr: float = 1e-4, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {show(lr)}")
        self.books = books
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self._m = {n: np.zeros(len(cb)) for n, (cb, _) in books.items()}
        self._v = {n: np.zeros(len(cb)) for n, (cb, _) in books.items()}
        self._t = 0

    def on_train_begin(self, model, state):
        names = {n for n, _ in model.weight_layers()}
        if not set(self.books) <= names:
            raise ValueError(f"CodebookFinetune: unknown layers {sorted(set(self.books) - names)}")

    def on_backward_end(self, model, state):
        self._t += 1
        for name, (cb, idx) in self.books.items():
            layer = model[name]
            g = codebook_gradient(layer.dW, idx, len(cb), mask=layer.mask)
            m = self._m[name] = self.beta1 * self._m[name] + (1 - self.beta1) * g
            v = self._v[name] = self.beta2 * self._v[name] + (1 - self.beta2) * g * g
            m_hat, v_hat = m / (1 - self.beta1**self._t), v / (1 - self.beta2**self._t)
            cb -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(cb.dtype)
            layer.dW = np.zeros_like(layer.dW)

    def on_step_end(self, model, state):
        for name, (cb, idx) in self.books.items():
            layer = model[name]
            W = cb[idx]
            layer.W = W if layer.mask is None else np.where(layer.mask, W, np.float32(0))
