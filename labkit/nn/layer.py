"""The layer protocol: ``forward(x, training)``, ``backward(grad_out)``, parameters by name, and input checks."""

from __future__ import annotations

import numpy as np


class Layer:
    """Base class. Subclasses set ``param_names`` (e.g. ``("W", "b")``) if they have parameters."""

    param_names: tuple = ()
    name: str = ""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def params(self) -> dict:
        """The layer's parameter arrays by name (the arrays themselves, not copies)."""
        return {p: getattr(self, p) for p in self.param_names}

    def grads(self) -> dict:
        """Gradients from the last backward pass, by parameter name."""
        return {p: getattr(self, "d" + p) for p in self.param_names}

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of one sample's output given one sample's input shape (no batch axis)."""
        return tuple(input_shape)

    def macs(self, input_shape: tuple) -> int:
        """Multiply-accumulates for one sample."""
        return 0

    def config(self) -> dict:
        """Constructor arguments, so ``type(layer)(**layer.config())`` rebuilds the architecture."""
        return {}

    def astype(self, dtype) -> Layer:
        for p in self.param_names:
            setattr(self, p, getattr(self, p).astype(dtype))
        return self

    def __call__(self, x, training=False):
        return self.forward(x, training)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _check_input(layer: Layer, x: np.ndarray, expected: str, ok) -> None:
    """Raise a clear error unless x is an ndarray for which ``ok(x)`` holds."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer.name or type(layer).__name__}: expected a numpy array, got {type(x).__name__}")
    if not ok(x):
        raise ValueError(
            f"{layer.name or type(layer).__name__} ({layer!r}) expects input of shape {expected}, got {x.shape}"
        )


class Composite(Layer):
    """A layer built from named sublayers (attention = qkv + proj; a transformer block; a whole GPT).

    Subclasses list their sublayers in ``children`` as ``(local_name, layer)`` pairs. Naming a composite
    names its sublayers after it: ``block.name = "h0"`` makes its attention ``"h0.attn"`` and that
    attention's projections ``"h0.attn.qkv"`` and ``"h0.attn.proj"``. Parameters and gradients are
    those of the sublayers, keyed by their dotted path below this layer (``"attn.qkv.W"``).
    """

    children: tuple = ()

    @property
    def name(self) -> str:
        return self.__dict__.get("_name", "")

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["_name"] = value
        for local, child in self.children:
            child.name = f"{value}.{local}" if value else local

    def leaves(self) -> list:
        """The layers without sublayers below this one, in forward order, as ``(full_name, layer)``."""
        out = []
        for _, child in self.children:
            out.extend(child.leaves() if isinstance(child, Composite) else [(child.name, child)])
        return out

    def sublayers(self) -> list:
        """Every layer below this one (composites and leaves), depth first, as ``(full_name, layer)``."""
        out = []
        for _, child in self.children:
            out.append((child.name, child))
            if isinstance(child, Composite):
                out.extend(child.sublayers())
        return out

    def params(self) -> dict:
        """``{"attn.qkv.W": array, ...}``: the sublayers' parameter arrays (the arrays themselves)."""
        return {f"{local}.{p}": a for local, child in self.children for p, a in child.params().items()}

    def grads(self) -> dict:
        """The sublayers' gradients from the last backward pass, keyed like :meth:`params`."""
        return {f"{local}.{p}": g for local, child in self.children for p, g in child.grads().items()}

    def astype(self, dtype) -> Composite:
        for _, child in self.children:
            child.astype(dtype)
        return self
