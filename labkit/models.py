"""The course's networks: MLPs, LeNet-300-100, LeNet-5, a scikit-learn bridge, a tiny GPT, and shipped weights.

All builders take a ``seed`` so that the same call always gives the same initial weights. The image
models accept flat (batch, 784) Fashion-MNIST images (LeNet-5 reshapes them itself); the GPT takes
token ids (batch, T).
"""

from __future__ import annotations

import numpy as np

from .data import DATA_DIR, MISSING_HINT
from .nn import GPT, Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU, Reshape, Sequential, load

__all__ = [
    "mlp",
    "lenet_300_100",
    "lenet5",
    "gpt",
    "from_sklearn",
    "pretrained",
    "PRETRAINED_DIR",
    "PRETRAINED",
    "PRETRAINED_LANGUAGE",
]

PRETRAINED_DIR = DATA_DIR / "pretrained"
#: The shipped image classifiers (Fashion-MNIST, flat (batch, 784) inputs).
PRETRAINED = ("lenet_300_100", "lenet5", "teacher")
#: The shipped language models (token ids in, next-token logits out).
PRETRAINED_LANGUAGE = ("tiny_gpt",)


def mlp(sizes, seed: int = 0, dropout: float = 0.0) -> Sequential:
    """A ReLU multilayer perceptron: ``mlp([784, 300, 100, 10])`` is LeNet-300-100.

    Parameters
    ----------
    sizes : sequence of int, length >= 2
        Input size, hidden sizes..., number of classes.
    seed : int
        Seeds the He-normal initialisation.
    dropout : float
        If > 0, a Dropout layer follows every hidden ReLU.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least an input and an output size, all >= 1; got {sizes}")
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out, rng=rng))
        if i < len(sizes) - 2:
            layers.append(ReLU())
            if dropout:
                layers.append(Dropout(dropout))
    return Sequential(layers, input_shape=(sizes[0],))


def lenet_300_100(seed: int = 0) -> Sequential:
    """LeNet-300-100 (LeCun et al. 1998), the MLP of Han et al.'s pruning papers: 266,610 parameters."""
    return mlp([784, 300, 100, 10], seed=seed)


def lenet5(seed: int = 0) -> Sequential:
    """LeNet-5 as in Han et al. 2015: conv(6, 5×5, pad 2) → pool → conv(16, 5×5) → pool → 120 → 84 → 10.

    Takes flat (batch, 784) images and reshapes them to (batch, 1, 28, 28). 61,706 parameters.
    """
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Reshape((1, 28, 28)),
            Conv2d(1, 6, 5, padding=2, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Conv2d(6, 16, 5, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Flatten(),
            Dense(400, 120, rng=rng),
            ReLU(),
            Dense(120, 84, rng=rng),
            ReLU(),
            Dense(84, 10, rng=rng),
        ],
        input_shape=(784,),
    )


def gpt(vocab_size: int, context: int, n_layer: int, n_head: int, d_model: int, seed: int = 0, bos: int = 0) -> GPT:
    """A GPT-2-style decoder-only transformer (Radford et al. 2019) for next-token prediction.

    The layout is GPT-2's: token embeddings plus learned position embeddings; ``n_layer`` pre-LN
    blocks, each ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))`` with causal multi-head attention
    (``n_head`` heads of ``d_model / n_head`` features) and an MLP ``d_model → 4·d_model → d_model`` with
    GELU (tanh form); a final LayerNorm; and an untied linear head ``d_model → vocab_size`` (its own
    weights, not the embedding table's, so it is one more Dense layer to compress, and compressing it
    leaves the input embeddings alone). Every sequence opens with the BOS token ``bos``.

    These choices (pre-LN residual stream, learned positions, a fixed first token) are those under
    which trained transformers are observed to park attention on the first token ("attention sinks",
    Xiao et al. 2023) and to grow a few very large activations (Sun et al. 2024); whether this model
    does is measured, not assumed.

    Parameters
    ----------
    vocab_size : int
        Token ids ``0 .. vocab_size − 1``, BOS included (``len(data.load_tiny_shakespeare().vocab)``).
    context : int
        The longest sequence (positions of the position embedding).
    n_layer, n_head, d_model : int
        Blocks, heads per block, features per token (``n_head`` divides ``d_model``).
    seed : int
        Seeds the initialisation (GPT-2's: N(0, 0.02²), residual projections scaled by 1/√(2·n_layer)).
    bos : int
        The BOS id (0 in :class:`labkit.data.CharVocab`).

    Returns
    -------
    labkit.nn.GPT
        ``forward(ids (batch, T)) -> logits (batch, T, vocab_size)``; its Dense layers are named
        ``h{i}.attn.qkv``, ``h{i}.attn.proj``, ``h{i}.mlp.fc1``, ``h{i}.mlp.fc2`` and ``head``.
        Parameters: ``vocab_size·d + context·d + n_layer·(12d² + 13d) + 2d + d·vocab_size + vocab_size``.
    """
    return GPT(vocab_size, context, n_layer, n_head, d_model, bos=bos, rng=np.random.default_rng(seed))


def from_sklearn(est) -> Sequential:
    """Convert a fitted ``sklearn.neural_network.MLPClassifier`` (ReLU) into a labkit model.

    The labkit model's ``predict`` gives the same class indices as ``est.predict`` mapped through
    ``est.classes_`` (i.e. ``est.classes_[model.predict(X)] == est.predict(X)``). A binary
    classifier's single logistic output z becomes two logits (0, z), which have the same argmax.
    """
    coefs = getattr(est, "coefs_", None)
    if coefs is None:
        raise TypeError(f"expected a fitted sklearn MLPClassifier, got {type(est).__name__} without coefs_")
    if getattr(est, "activation", "relu") != "relu":
        raise ValueError(f"only activation='relu' maps onto labkit layers, got {est.activation!r}")
    layers = []
    for i, (W, b) in enumerate(zip(coefs, est.intercepts_)):
        dense = Dense(W.shape[0], W.shape[1])
        dense.W = np.ascontiguousarray(W.T, dtype=np.float32)
        dense.b = np.asarray(b, dtype=np.float32)
        layers.append(dense)
        if i < len(coefs) - 1:
            layers.append(ReLU())
    if getattr(est, "out_activation_", "softmax") == "logistic" and coefs[-1].shape[1] == 1:
        last = layers[-1]
        two = Dense(last.in_features, 2)
        two.W = np.vstack([np.zeros_like(last.W), last.W])
        two.b = np.concatenate([np.zeros(1, np.float32), last.b])
        layers[-1] = two
    return Sequential(layers, input_shape=(coefs[0].shape[0],))


def pretrained(name: str) -> Sequential | GPT:
    """Load a shipped, trained model from ``PRETRAINED_DIR/<name>.npz`` (``data/pretrained/`` in a checkout,
    the package data ``labkit/_data/pretrained/`` in an installed kit).

    Names: ``"lenet_300_100"``, ``"lenet5"``, ``"teacher"`` (trained on the embedded Fashion-MNIST
    subset) and ``"tiny_gpt"`` (a character-level GPT trained on Tiny Shakespeare's training split),
    all by ``python -m labkit data --train-baselines`` (see data/README.md; a model's recipe and
    measured scores are in ``model.metadata``).
    """
    if name not in PRETRAINED + PRETRAINED_LANGUAGE:
        raise KeyError(f"no pretrained model {name!r}; available: {', '.join(PRETRAINED + PRETRAINED_LANGUAGE)}")
    path = PRETRAINED_DIR / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: {MISSING_HINT}; in a checkout, rebuild it with "
            "`python -m labkit data --train-baselines`"
        )
    return load(path)
