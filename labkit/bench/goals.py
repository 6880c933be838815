"""The speed the kit aims for: a ratio (peer time / labkit time) per kernel and peer.

A goal is not a test: timings are measured, never asserted. Each row of ``python -m labkit bench``
whose (kernel, peer) has a goal says whether this run met it, and so does each row with a goal for
the fraction of its roofline (:data:`ROOF_GOALS`); ``docs/benchmarks.md`` explains each
goal and how close the kernels come on the reference machine (int8 GEMV against float32 GEMV, for
example, cannot pass 4× on a memory-bound machine: int8 moves a quarter of the bytes).
"""

from __future__ import annotations

__all__ = ["GOALS", "ROOF_GOALS", "goal", "roof_goal"]

GOALS = {  # (kernel row, peer) -> lowest ratio aimed for; > 1 means labkit faster than the peer
    ("int8 GEMV b=1", "torch fbgemm dynamic Linear"): 1.0,
    ("int8 GEMV b=1", "numpy f32 GEMV"): 5.0,
    ("int8 GEMM b=64", "numpy f32 GEMM"): 1.0,
    ("int8 GEMM b=64", "torch fbgemm dynamic Linear"): 0.5,
    ("CSR SpMV 90%", "scipy.sparse CSR"): 1.5,
    ("CSR SpMV 90%", "torch sparse CSR"): 1.0,
    ("quantize int8", "torch.quantize_per_tensor"): 1.0,
    ("global top-k threshold", "np.partition"): 3.0,
    ("global top-k threshold", "torch.kthvalue"): 10.0,
    ("global 90% pruning MLP", "torch prune.global_unstructured"): 50.0,
    # int4 moves about half the bytes of int8: at 80 % of the bandwidth it is >= 1.6x the int8 GEMV
    ("int4 GEMV g=32", "labkit int8 GEMV (float in/out)"): 1.6,
    ("int4 GEMV g=64", "labkit int8 GEMV (float in/out)"): 1.6,
    ("int4 GEMV g=128", "labkit int8 GEMV (float in/out)"): 1.6,
}

ROOF_GOALS = {  # kernel row -> lowest fraction of its roofline (bandwidth x intensity, or the compute roof)
    "int4 GEMV g=32": 0.8,
    "int4 GEMV g=64": 0.8,
    "int4 GEMV g=128": 0.8,
    "2:4 sparse GEMV": 0.8,
}


def goal(kernel: str, peer: str) -> float | None:
    """The ratio aimed for by ``kernel`` against ``peer``, or ``None`` when there is none."""
    return GOALS.get((kernel, peer))


def roof_goal(kernel: str) -> float | None:
    """The fraction of its roofline that ``kernel`` aims for, or ``None`` when there is none."""
    return ROOF_GOALS.get(kernel)
