"""Recording what flows into a model's layers: the inputs of every linear layer, for calibration.

Activation-aware methods (SmoothQuant, LLM.int8(), AWQ, GPTQ, Wanda, static activation ranges) need
the input ``X`` of each linear layer on real data. :func:`record_inputs` wraps the chosen layers'
``forward`` for the duration of a ``with`` block and restores it afterwards::

    with nn.record_inputs(model) as rec:                # every Dense (model.weight_layers())
        model.forward(ids)                               # ids: (batch, T) token ids
    X = rec["h0.mlp.fc2"]                                # (batch·T, 512) float32: fc2's input rows

Rows are in the order the layer saw them. A GPT's Dense layers see (batch·T, in_features), row
``b·T + t`` being position t of sequence b, so ``X.reshape(batch, T, -1)[:, 0]`` is the BOS position.
A LayerNorm sees (batch, T, d): recording ``"h0.ln1"`` gives the residual stream entering block 0.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

__all__ = ["record_inputs", "Recording"]


class Recording:
    """What :func:`record_inputs` saw: per layer name, the input of each forward call, in order.

    ``rec[name]`` is those inputs concatenated along the first axis (an ndarray); ``rec.batches[name]``
    the list of arrays as seen; ``rec.names`` the layer names recorded.
    """

    def __init__(self, names):
        self.names = list(names)
        self.batches = {name: [] for name in self.names}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.batches:
            raise KeyError(f"{name!r} was not recorded; recorded: {', '.join(self.names)}")
        if not self.batches[name]:
            raise ValueError(f"{name!r} saw no input: run a forward pass inside the `with` block")
        return np.concatenate(self.batches[name], axis=0)

    def __repr__(self) -> str:
        return f"Recording({', '.join(f'{n}: {len(b)} calls' for n, b in self.batches.items())})"


@contextmanager
def record_inputs(model, names=None, on_input=None):
    """Record the input of named layers during the forward passes run inside the ``with`` block.

    Parameters
    ----------
    model : labkit.nn.GPT or labkit.nn.Sequential
    names : sequence of str, optional
        Layer names (``model[name]`` must find each; a GPT's composite layers such as ``"h0.attn"``
        too). Default: every linear layer, ``[name for name, _ in model.weight_layers()]``.
    on_input : callable(name, x), optional
        Called with each input as it arrives, instead of storing it: a running statistic (per-channel
        max |x|, a Gram matrix ``XᵀX``) over more data than fits in memory.

    Yields
    ------
    Recording
        Filled while the block runs; the layers' own ``forward`` is restored when the block exits (also
        on an error). Copying the model inside the block copies the wrapped layers: copy outside it.
    """
    if names is None:
        names = [name for name, _ in model.weight_layers()]
    elif isinstance(names, str):
        raise TypeError(f"names must be a sequence of layer names, got the str {names!r}; wrap it in a list")
    layers = {name: model[name] for name in names}  # KeyError lists the valid names
    rec = Recording(layers)
    saved = {}

    def wrap(name, layer):
        inner = layer.forward

        def forward(x, training=False):
            if on_input is None:
                rec.batches[name].append(np.array(x, copy=True))
            else:
                on_input(name, x)
            return inner(x, training)

        return forward

    try:
        for name, layer in layers.items():
            saved[name] = layer.__dict__.get("forward")
            layer.forward = wrap(name, layer)
        yield rec
    finally:
        for name, layer in layers.items():
            if name in saved:
                if saved[name] is None:
                    del layer.forward
                else:
                    layer.forward = saved[name]
