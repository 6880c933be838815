"""Generating text token by token with a key-value cache.

A GPT's forward pass over ``T`` tokens computes every position's query, key and value. When a model
generates, the keys and values of the tokens already read do not change (the mask is causal), so
they are kept in a **KV cache** and each new token costs one query against the cached keys and
values: ``2 · n_layer · d_model`` numbers stored per token, read again at every later step.

* :class:`KVCache` holds, per block, the keys and values ``(batch, n_head, T, d_head)`` of the
  positions read so far, preallocated to the model's context. ``store`` (optional) maps the new
  keys or values to what is kept, e.g. their int8 round trip, to measure a quantized cache.
* :func:`forward_cached` runs new tokens through the model, appending their keys and values; its
  logits equal those of ``model.forward`` on the whole sequence up to float rounding.
* :func:`generate` is greedy decoding, with or without the cache. ``linears`` swaps the matrix
  products of chosen layers for other functions (a quantized kernel, say) without touching the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..validation import check_int
from .attention import causal_attention

__all__ = ["KVCache", "forward_cached", "generate", "kv_cache_bytes"]


def kv_cache_bytes(model, tokens: int = 1, batch: int = 1, bytes_per_value: float = 4) -> float:
    """Bytes a KV cache holds for ``tokens`` positions of ``batch`` sequences.

    ``2 (keys and values) · n_layer · d_model · bytes_per_value`` per token (float32: 4, int8: 1,
    int4: 0.5, not counting quantization scales).
    """
    tokens = check_int("tokens", tokens, lo=0)
    batch = check_int("batch", batch, lo=1)
    if not isinstance(bytes_per_value, (int, float)) or isinstance(bytes_per_value, bool) or bytes_per_value <= 0:
        raise ValueError(f"bytes_per_value must be a positive number, got {bytes_per_value!r}")
    return 2 * model.n_layer * model.d_model * bytes_per_value * tokens * batch


class KVCache:
    """Keys and values of the positions read so far, for every block of a GPT.

    Parameters
    ----------
    model : labkit.nn.GPT
    batch : int
        Sequences generated together.
    store : callable or None
        ``store(a) -> a_kept``, applied to the new keys and to the new values (each
        ``(batch, n_head, T_new, d_head)``) before they are cached, e.g.
        ``lambda a: labkit.quant.quantize_kv(a, 8).X_hat`` (one scale per head and token). None: exact.

    Attributes
    ----------
    keys, values : list of ndarray, one per block, shape (batch, n_head, context, d_head)
        Only positions ``[0, length)`` are filled.
    length : int
        Positions cached.
    """

    def __init__(self, model, batch: int = 1, store: Callable | None = None):
        self.batch = check_int("batch", batch, lo=1)
        if store is not None and not callable(store):
            raise TypeError(f"store must be a function a -> a_kept or None, got {type(store).__name__}")
        self.store = store
        self.context = model.context
        n_head = model.n_head
        shape = (self.batch, n_head, model.context, model.d_model // n_head)
        dtype = model.wte.W.dtype
        self.keys = [np.zeros(shape, dtype) for _ in range(model.n_layer)]
        self.values = [np.zeros(shape, dtype) for _ in range(model.n_layer)]
        self.length = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the filled positions (in the cache's float dtype)."""
        return sum(a[:, :, : self.length].nbytes for a in self.keys + self.values)

    def append(self, layer: int, k: np.ndarray, v: np.ndarray):
        """Write ``k, v`` (batch, n_head, T_new, d_head) after the cached positions of block ``layer``.

        Returns the keys and values of all ``length + T_new`` positions (views into the cache). The
        length itself moves on with :meth:`advance` once every block has appended.
        """
        t0, t1 = self.length, self.length + k.shape[2]
        if t1 > self.context:
            raise ValueError(f"the cache holds {self.context} positions (the model's context); {t1} asked")
        if self.store is not None:
            k, v = self.store(k), self.store(v)
        self.keys[layer][:, :, t0:t1] = k
        self.values[layer][:, :, t0:t1] = v
        return self.keys[layer][:, :, :t1], self.values[layer][:, :, :t1]

    def advance(self, n: int) -> None:
        """Count ``n`` more positions as cached."""
        self.length += n


def _linear(linears, name, layer, x):
    fn = linears.get(name) if linears else None
    return layer.forward(x) if fn is None else fn(x)


def forward_cached(model, ids: np.ndarray, cache: KVCache, linears: dict | None = None) -> np.ndarray:
    """Logits (batch, T_new, vocab) of ``ids`` (batch, T_new) read after the ``cache.length`` cached positions.

    Each block computes queries, keys and values of the new tokens only, appends the keys and values
    to ``cache`` and attends over all cached positions; positions continue from ``cache.length``.

    Parameters
    ----------
    model : labkit.nn.GPT
    ids : ndarray of int, shape (cache.batch, T_new)
    cache : KVCache
        Advanced by ``T_new`` on return.
    linears : dict or None
        ``{layer name: fn}``, e.g. ``{"h0.mlp.fc1": fn}``: ``fn(x)`` with x (rows, in) float32 returns
        ``x @ W.T + b`` (rows, out) in place of the layer's own forward.
    """
    if not isinstance(ids, np.ndarray) or ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be an integer array (batch, T_new), got {getattr(ids, 'shape', type(ids).__name__)}")
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}")
    b, t = ids.shape
    if b != cache.batch or t < 1:
        raise ValueError(f"ids must be ({cache.batch}, T_new >= 1) for this cache, got {ids.shape}")
    if cache.length + t > cache.context:
        raise ValueError(f"the cache holds {cache.context} positions (the model's context); {cache.length + t} asked")
    x = model.embed(ids, start=cache.length)
    d = x.shape[2]
    for i, block in enumerate(model.blocks):
        attn, mlp = block.attn, block.mlp
        h = block.ln1.forward(x).reshape(b * t, d)
        qkv = _linear(linears, f"h{i}.attn.qkv", attn.qkv, h)
        q, k, v = qkv.reshape(b, t, 3, attn.n_head, attn.d_head).transpose(2, 0, 3, 1, 4)
        K, V = cache.append(i, k, v)
        y, _ = causal_attention(q, K, V)
        x = x + _linear(linears, f"h{i}.attn.proj", attn.proj, attn.merge_heads(y)).reshape(b, t, d)
        h = block.ln2.forward(x).reshape(b * t, d)
        h = mlp.gelu.forward(_linear(linears, f"h{i}.mlp.fc1", mlp.fc1, h))
        x = x + _linear(linears, f"h{i}.mlp.fc2", mlp.fc2, h).reshape(b, t, d)
    cache.advance(t)
    h = model.ln_f.forward(x).reshape(b * t, d)
    return _linear(linears, "head", model.head, h).reshape(b, t, -1)


def generate(model, prompt: np.ndarray, n_new: int, *, use_cache: bool = True, linears: dict | None = None,
             store: Callable | None = None) -> np.ndarray:  # fmt: skip
    """Greedy decoding: append ``n_new`` tokens, each the argmax of the next-token logits.

    Parameters
    ----------
    model : labkit.nn.GPT
    prompt : ndarray of int, shape (batch, T0), T0 >= 1
        Starts with the BOS token, as the model was trained.
    n_new : int
        Tokens to generate; ``T0 + n_new <= model.context``.
    use_cache : bool
        True: the prompt once, then one token per step through :func:`forward_cached`. False: the
        whole sequence through ``model.forward`` at every step (the reference; quadratic work).
    linears, store
        As in :func:`forward_cached` and :class:`KVCache` (cached path only).

    Returns
    -------
    ndarray of int64, shape (batch, T0 + n_new)
    """
    if not isinstance(prompt, np.ndarray) or prompt.ndim != 2 or prompt.dtype.kind not in "iu" or prompt.shape[1] < 1:
        raise TypeError(f"prompt must be an integer array (batch, T0 >= 1), got {getattr(prompt, 'shape', prompt)!r}")
    n_new = check_int("n_new", n_new, lo=0)
    if prompt.shape[1] + n_new > model.context:
        raise ValueError(f"prompt ({prompt.shape[1]}) + n_new ({n_new}) exceeds the context of {model.context}")
    if not use_cache and (linears or store):
        raise ValueError("linears and store act on the cached path: pass use_cache=True")
    ids = prompt.astype(np.int64)
    if n_new == 0:
        return ids
    if not use_cache:
        for _ in range(n_new):
            nxt = model.forward(ids)[:, -1].argmax(axis=-1)
            ids = np.concatenate([ids, nxt[:, None]], axis=1)
        return ids
    cache = KVCache(model, batch=ids.shape[0], store=store)
    logits = forward_cached(model, ids, cache, linears)
    out = [ids]
    for step in range(n_new):
        nxt = logits[:, -1].argmax(axis=-1)[:, None].astype(np.int64)
        out.append(nxt)
        if step + 1 < n_new:
            logits = forward_cached(model, nxt, cache, linears)
    return np.concatenate(out, axis=1)
