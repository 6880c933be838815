"""Saving and loading a model as one ``.npz`` file (architecture as JSON plus the arrays), atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_with
from .layer import Composite
from .sequential import LAYER_TYPES, Sequential
from .transformer import GPT


def _leaves(model):
    """``(name, layer)`` for every layer without sublayers: the parameters and masks live on those."""
    for layer in model.layers:
        yield from layer.leaves() if isinstance(layer, Composite) else [(layer.name, layer)]


def save(model: Sequential | GPT, path, dtype=None, metadata: dict | None = None) -> Path:
    """Save a model (architecture + parameters + masks) to one ``.npz`` file, atomically.

    Parameters
    ----------
    model : Sequential or GPT
    dtype : numpy dtype, optional
        Store parameters in this dtype (e.g. float16 to halve a shipped teacher); loading
        converts back to float32.
    metadata : dict, optional
        JSON-serialisable facts to keep with the weights (training command, accuracy, ...).
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"model files end in .npz, got {path.name!r}")
    arrays = {}
    for name, layer in _leaves(model):
        for p, a in layer.params().items():
            arrays[f"{name}.{p}"] = a if dtype is None else a.astype(dtype)
        if getattr(layer, "mask", None) is not None:
            arrays[f"{name}.mask"] = layer.mask
    header = {"format": "labkit-model", "version": 1, "architecture": model.architecture(), "metadata": metadata or {}}
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    write_with(path, lambda f: np.savez_compressed(f, **arrays))
    return path


def load(path, dtype=np.float32, layer_types=()) -> Sequential | GPT:
    """Load a model written by :func:`save` (a Sequential or a GPT). Raises ValueError for a file that is not one.

    ``layer_types``: layer classes defined outside ``labkit.nn`` that the file may hold, e.g.
    ``load(path, layer_types=[labkit.quant.FakeQuant])`` for a model trained with fake quantization
    (the layers of ``labkit.nn`` are always known: :data:`LAYER_TYPES`).
    """
    path = Path(path)
    known = {**LAYER_TYPES, **{cls.__name__: cls for cls in layer_types}}
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, ...
        raise ValueError(f"{path} is not a readable labkit model file ({type(exc).__name__}: {exc})") from exc
    if "__header__" not in data:
        raise ValueError(f"{path} has no labkit header; was it written by labkit.nn.save?")
    header = json.loads(bytes(data["__header__"]).decode())
    if header.get("format") != "labkit-model" or header.get("version", 0) > 1:
        raise ValueError(f"{path}: unsupported model format {header.get('format')!r} version {header.get('version')!r}")
    arch = header["architecture"]
    if arch.get("type") == "GPT":
        model = GPT(**arch["config"])
    else:
        unknown = sorted({spec["type"] for spec in arch["layers"]} - set(known))
        if unknown:
            raise ValueError(
                f"{path} holds layers of types {unknown}, not labkit.nn layers: pass their classes, "
                "load(path, layer_types=[...]) (labkit.quant.FakeQuant for fake quantization)"
            )
        layers = [known[spec["type"]](**spec["config"]) for spec in arch["layers"]]
        model = Sequential(layers, input_shape=arch["input_shape"])
    for name, layer in _leaves(model):
        for p in layer.param_names:
            key = f"{name}.{p}"
            if key not in data:
                raise ValueError(f"{path} lacks parameter {key}")
            arr = data[key].astype(dtype)
            if arr.shape != getattr(layer, p).shape:
                raise ValueError(f"{path}: {key} has shape {arr.shape}, architecture says {getattr(layer, p).shape}")
            setattr(layer, p, arr)
        if f"{name}.mask" in data:
            layer.mask = data[f"{name}.mask"].astype(bool)
    model.metadata = header.get("metadata", {})
    return model
