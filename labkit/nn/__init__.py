"""Neural-network layers in plain numpy, with explicit forward and backward passes.

Every layer is a small object with ``forward(x, training)`` and ``backward(grad_out)``. A layer
with parameters keeps them as plain attributes (``Dense.W`` of shape (out, in), ``Dense.b`` of
shape (out,)) and their gradients beside them (``dW``, ``db``) after a backward pass. Pruning and
quantization act on those arrays directly; nothing is hidden in global state.

``Sequential`` chains layers, names them (``fc1``, ``conv1``, ``relu1``, ...), and saves/loads a
whole model as one ``.npz`` file (architecture as JSON plus the arrays), written atomically.

Shapes: a Dense layer takes (batch, in_features); convolution and pooling take
(batch, channels, height, width). Default dtype float32.
"""

from .activations import ReLU
from .conv import Conv2d, MaxPool2d
from .dense import Dense
from .dropout import Dropout
from .layer import Layer
from .reshape import Flatten, Reshape
from .sequential import LAYER_TYPES, Sequential
from .serialize import load, save

__all__ = [
    "Layer",
    "Dense",
    "Conv2d",
    "MaxPool2d",
    "ReLU",
    "Dropout",
    "Flatten",
    "Reshape",
    "Sequential",
    "save",
    "load",
    "LAYER_TYPES",
]
