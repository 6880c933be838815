"""Pruning: masks, magnitude pruning (layer-wise and global), schedules (one-shot, iterative, AGP),
sensitivity scans, structured pruning that really shrinks shapes, and lottery-ticket rewinding.

One idea per file: :mod:`.magnitude`, :mod:`.schedules`, :mod:`.sensitivity`, :mod:`.structured`,
:mod:`.lottery`, :mod:`.oneshot` (n:m, Wanda, SparseGPT, the calibrated layer-by-layer driver).
Every public name is importable from ``labkit.prune``.
"""

from .lottery import SnapshotCallback, lottery_ticket, random_reinit, rewind
from .magnitude import (
    MaskCallback,
    apply_masks,
    check_sparsity,
    global_magnitude_prune,
    layerwise_magnitude_prune,
    magnitude_mask,
    masks_of,
    remove_masks,
)
from .oneshot import (
    MagnitudeOptions,
    SparseGPTOptions,
    WandaOptions,
    compress_layerwise,
    layer_inputs,
    nm_mask,
    reconstruct,
    sparsegpt_prune,
    wanda_mask,
    wanda_scores,
)
from .schedules import AGPCallback, agp_sparsity, iterative_prune, one_shot_prune
from .sensitivity import sensitivity_scan
from .structured import mask_units, prune_channels, prune_neurons, unit_importance, units_to_keep

__all__ = [
    "magnitude_mask",
    "global_magnitude_prune",
    "layerwise_magnitude_prune",
    "apply_masks",
    "remove_masks",
    "masks_of",
    "check_sparsity",
    "MaskCallback",
    "agp_sparsity",
    "AGPCallback",
    "one_shot_prune",
    "iterative_prune",
    "sensitivity_scan",
    "unit_importance",
    "units_to_keep",
    "prune_neurons",
    "prune_channels",
    "mask_units",
    "SnapshotCallback",
    "rewind",
    "random_reinit",
    "lottery_ticket",
    # lab 09: one-shot pruning without retraining, and the layer-by-layer driver
    "nm_mask",
    "wanda_scores",
    "wanda_mask",
    "sparsegpt_prune",
    "reconstruct",
    "layer_inputs",
    "compress_layerwise",
    "MagnitudeOptions",
    "WandaOptions",
    "SparseGPTOptions",
]
