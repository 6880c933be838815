"""A decoder-only transformer (GPT-2's layout) from the layers of this package.

``GPT`` maps token ids (batch, T) to next-token logits (batch, T, vocab_size)::

    x = wte[ids] + wpe[0..T−1]                  token and learned position embeddings
    for each block h0, h1, ...:                 pre-LN residual blocks
        x = x + attn(ln1(x))                    causal multi-head self-attention
        x = x + mlp(ln2(x))                     fc1 (d → 4d), GELU, fc2 (4d → d)
    logits = head(ln_f(x))                      final LayerNorm, then an untied linear head

Every linear map is a :class:`~labkit.nn.Dense` named by its path, ``h0.attn.qkv``, ``h0.attn.proj``,
``h0.mlp.fc1``, ``h0.mlp.fc2``, ..., ``head``, so code that walks ``weight_layers()`` (pruning,
quantization, calibration) reaches each of them. A Dense takes (rows, in_features): the blocks pass it
their (batch, T, d) activations as (batch·T, d), rows in (sequence, position) order.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np

from ..validation import check_int
from .activations import GELU
from .attention import CausalSelfAttention
from .dense import Dense
from .embedding import Embedding
from .layer import Composite, _check_input
from .layernorm import LayerNorm


class MLP(Composite):
    """The feed-forward part of a block: ``fc2(gelu(fc1(x)))`` on every token, (batch, T, d) → (batch, T, d)."""

    def __init__(self, d_model: int, d_hidden: int, rng=None, dtype=np.float32):
        self.d_model = check_int("d_model", d_model, lo=1)
        self.d_hidden = check_int("d_hidden", d_hidden, lo=1)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.fc1 = Dense(self.d_model, self.d_hidden, rng=rng, dtype=dtype)
        self.gelu = GELU()
        self.fc2 = Dense(self.d_hidden, self.d_model, rng=rng, dtype=dtype)
        self.children = (("fc1", self.fc1), ("gelu", self.gelu), ("fc2", self.fc2))
        self.name = ""

    def forward(self, x, training=False):
        _check_input(self, x, f"(batch, T, {self.d_model})", lambda x: x.ndim == 3 and x.shape[2] == self.d_model)
        b, t, d = x.shape
        h = self.gelu.forward(self.fc1.forward(x.reshape(b * t, d)))
        return self.fc2.forward(h).reshape(b, t, d)

    def backward(self, grad_out):
        b, t, d = grad_out.shape
        g = self.gelu.backward(self.fc2.backward(grad_out.reshape(b * t, d)))
        return self.fc1.backward(g).reshape(b, t, d)

    def config(self):
        return {"d_model": self.d_model, "d_hidden": self.d_hidden}


class Block(Composite):
    """A pre-LN transformer block: ``x + attn(ln1(x))``, then ``+ mlp(ln2(x))``; (batch, T, d) → same.

    The residual path carries x past both sublayers untouched, so the backward pass adds each
    sublayer's input gradient to the gradient arriving along the residual.
    """

    def __init__(self, d_model: int, n_head: int, rng=None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.ln1 = LayerNorm(d_model, dtype=dtype)
        self.attn = CausalSelfAttention(d_model, n_head, rng=rng, dtype=dtype)
        self.ln2 = LayerNorm(d_model, dtype=dtype)
        self.mlp = MLP(d_model, 4 * d_model, rng=rng, dtype=dtype)
        self.children = (("ln1", self.ln1), ("attn", self.attn), ("ln2", self.ln2), ("mlp", self.mlp))
        self.name = ""

    def forward(self, x, training=False):
        x = x + self.attn.forward(self.ln1.forward(x, training), training)
        return x + self.mlp.forward(self.ln2.forward(x, training), training)

    def backward(self, grad_out):
        g = grad_out + self.ln2.backward(self.mlp.backward(grad_out))
        return g + self.ln1.backward(self.attn.backward(g))

    def config(self):
        return {"d_model": self.attn.d_model, "n_head": self.attn.n_head}


class GPT(Composite):
    """A GPT-2-style language model: token ids (batch, T) → next-token logits (batch, T, vocab_size).

    Built by :func:`labkit.models.gpt`, which documents the configuration. The model follows the
    protocol of :class:`~labkit.nn.Sequential`: ``forward``/``backward``, ``layers`` (the layers without
    sublayers, which optimizers update), ``named_layers()``, ``weight_layers()`` (every Dense),
    ``parameters()``, ``model[name]``, ``copy()``, ``astype()``, and ``labkit.nn.save``/``load``.

    Parameters
    ----------
    vocab_size, context, n_layer, n_head, d_model : int
        Vocabulary (including the BOS token), longest input (positions), blocks, heads per block,
        features per token (divisible by ``n_head``).
    bos : int
        The id of the beginning-of-sequence token that opens every sequence the model reads.
    rng : numpy.random.Generator, optional
        Initialisation as GPT-2: every weight ``N(0, 0.02²)``, the two projections that write into the
        residual stream (``attn.proj``, ``mlp.fc2``) ``N(0, (0.02/√(2·n_layer))²)``, biases 0,
        LayerNorm gains 1.
    """

    def __init__(self, vocab_size, context, n_layer, n_head, d_model, bos=0, rng=None, dtype=np.float32):
        self.vocab_size = check_int("vocab_size", vocab_size, lo=2)
        self.context = check_int("context", context, lo=1)
        self.n_layer = check_int("n_layer", n_layer, lo=1)
        n_head, d_model = check_int("n_head", n_head, lo=1), check_int("d_model", d_model, lo=1)
        self.bos = check_int("bos", bos, lo=0, hi=self.vocab_size - 1, what=" (an id of the vocabulary)")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.wte = Embedding(self.vocab_size, d_model, rng=rng, dtype=dtype)
        self.wpe = Embedding(self.context, d_model, rng=rng, dtype=dtype)
        self.blocks = [Block(d_model, n_head, rng=rng, dtype=dtype) for _ in range(self.n_layer)]
        self.ln_f = LayerNorm(d_model, dtype=dtype)
        self.head = Dense(d_model, self.vocab_size, rng=rng, dtype=dtype)
        self.children = (
            ("wte", self.wte),
            ("wpe", self.wpe),
            *((f"h{i}", block) for i, block in enumerate(self.blocks)),
            ("ln_f", self.ln_f),
            ("head", self.head),
        )
        self.name = ""
        residual_std = 0.02 / np.sqrt(2 * self.n_layer)
        for name, layer in self.weight_layers():
            std = residual_std if name.endswith((".attn.proj", ".mlp.fc2")) else 0.02
            layer.W = (rng.standard_normal(layer.W.shape) * std).astype(dtype)
            layer.b = np.zeros_like(layer.b)
        self.input_shape = None  # token ids of any length up to `context`: no fixed sample shape
        self.metadata = {}

    @property
    def d_model(self) -> int:
        return self.wte.embedding_dim

    @property
    def n_head(self) -> int:
        return self.blocks[0].attn.n_head

    # --- computation --------------------------------------------------------------------------
    def embed(self, ids: np.ndarray, start: int = 0) -> np.ndarray:
        """Token plus position embeddings of ids (batch, T) at positions ``start .. start+T−1`` → (batch, T, d)."""
        positions = np.arange(start, start + ids.shape[1])
        return self.wte.forward(ids) + self.wpe.forward(positions)

    def forward(self, ids, training=False):
        """Logits (batch, T, vocab_size) for token ids (batch, T), ``1 <= T <= context``.

        The logits at position t depend on ``ids[:, :t+1]`` only (causal). The caller puts the BOS
        token (``self.bos``) first in every sequence, as in training.
        """
        if not isinstance(ids, np.ndarray):
            raise TypeError(f"GPT.forward expects a numpy array of token ids, got {type(ids).__name__}")
        if ids.ndim != 2 or not 1 <= ids.shape[1] <= self.context:
            raise ValueError(
                f"GPT.forward expects token ids of shape (batch, T) with 1 <= T <= {self.context}, "
                f"got shape {ids.shape}"
            )
        x = self.embed(ids)
        for block in self.blocks:
            x = block.forward(x, training)
        b, t, d = x.shape
        return self.head.forward(self.ln_f.forward(x).reshape(b * t, d)).reshape(b, t, self.vocab_size)

    __call__ = forward

    def backward(self, grad_logits):
        """Backpropagate dL/dlogits (batch, T, vocab_size); fills every layer's gradients, returns None."""
        b, t, v = grad_logits.shape
        g = self.ln_f.backward(self.head.backward(grad_logits.reshape(b * t, v)).reshape(b, t, -1))
        for block in reversed(self.blocks):
            g = block.backward(g)
        self.wpe.backward(g.sum(axis=0))
        self.wte.backward(g)
        return None

    # --- access -------------------------------------------------------------------------------
    @property
    def layers(self) -> list:
        """The layers without sublayers (embeddings, LayerNorms, Dense, GELU), in forward order."""
        return [layer for _, layer in self.leaves()]

    def named_layers(self) -> list:
        """``[(name, layer)]`` for :attr:`layers`: ``("wte", ...), ("h0.ln1", ...), ("h0.attn.qkv", ...)``."""
        return self.leaves()

    @property
    def layer_names(self) -> list:
        return [name for name, _ in self.leaves()]

    def weight_layers(self) -> list:
        """``[(name, Dense)]``: every linear layer, in forward order (the head last)."""
        return [(name, layer) for name, layer in self.leaves() if isinstance(layer, Dense)]

    def __getitem__(self, name: str):
        for full, layer in self.sublayers():
            if full == name:
                return layer
        raise KeyError(f"no layer named {name!r}; valid names: {', '.join(n for n, _ in self.sublayers())}")

    def parameters(self) -> OrderedDict:
        """``{"wte.W": array, "h0.ln1.gamma": array, "h0.attn.qkv.W": array, ...}`` (the arrays themselves)."""
        return OrderedDict(self.params())

    # --- bookkeeping --------------------------------------------------------------------------
    def copy(self) -> GPT:
        """A deep copy (weights, masks and all)."""
        return copy.deepcopy(self)

    def config(self) -> dict:
        return {
            "vocab_size": self.vocab_size,
            "context": self.context,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "d_model": self.d_model,
            "bos": self.bos,
        }

    def architecture(self) -> dict:
        return {"type": "GPT", "config": self.config()}

    def __repr__(self) -> str:
        n = sum(a.size for a in self.params().values())
        args = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"GPT({args}): {n:,} parameters"
