"""The stable public names (the design's "Public API" list) still import and are callable.

The list is copied here on purpose: a rename inside labkit must fail this test, not edit it.
"""

import importlib
import inspect

import pytest

PUBLIC_API = [
    "labkit.data.load_fashion_mnist",
    "labkit.data.load_digits",
    "labkit.models.lenet_300_100",
    "labkit.models.lenet5",
    "labkit.models.mlp",
    "labkit.models.from_sklearn",
    "labkit.models.pretrained",
    "labkit.train.fit",
    "labkit.train.evaluate",
    "labkit.prune.magnitude_mask",
    "labkit.prune.global_magnitude_prune",
    "labkit.prune.prune_neurons",
    "labkit.prune.agp_sparsity",
    "labkit.quant.qparams",
    "labkit.quant.quantize",
    "labkit.quant.dequantize",
    "labkit.quant.quantize_model",
    "labkit.quant.kmeans_quantize",
    "labkit.distill.kd_loss",
    "labkit.codec.huffman_encode",
    "labkit.codec.huffman_decode",
    "labkit.metrics.size_bytes",
    "labkit.stats.mcnemar",
    "labkit.stats.paired_bootstrap",
    "labkit.stats.seed_summary",
    "labkit.stats.verdict",
    "labkit.bench.timeit",
    "labkit.quant.gptq_quantize",
    "labkit.quant.awq_scales",
    "labkit.quant.quantize_groupwise",
    "labkit.prune.sparsegpt_prune",
    "labkit.prune.wanda_mask",
    "labkit.prune.nm_mask",
    "labkit.export.to_onnx",
]

# the keyword arguments the design names for some of them
PARAMETERS = {
    "labkit.data.load_fashion_mnist": ["subset"],
    "labkit.train.fit": ["epochs", "lr", "batch_size", "seed", "callbacks", "progress"],
    "labkit.prune.prune_neurons": ["model", "layer", "amount", "norm"],
    "labkit.prune.agp_sparsity": ["step", "s_init", "s_final", "t0", "n_steps", "dt"],
    "labkit.quant.qparams": ["x", "bits", "symmetric", "per_channel_axis", "method"],
    "labkit.quant.quantize": ["x", "scale", "zero_point", "bits", "signed"],
    "labkit.distill.kd_loss": ["student_logits", "teacher_logits", "y", "T", "alpha"],
    "labkit.metrics.size_bytes": ["model", "fmt"],
    "labkit.bench.timeit": ["fn", "repeat", "warmup"],
    "labkit.export.to_onnx": ["model", "path", "quantized"],
}

SUBCOMMANDS = ["release", "grade", "gradebook", "bench", "data"]


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("dotted", PUBLIC_API)
def test_public_name_exists(dotted):
    obj = _resolve(dotted)
    assert callable(obj)
    params = inspect.signature(obj).parameters
    for p in PARAMETERS.get(dotted, ()):
        assert p in params, f"{dotted} lost its parameter {p!r}"


@pytest.mark.parametrize("fmt", ["dense_fp32", "csr", "int8", "deep_compression", "kmeans", "zip_fp32"])
def test_size_formats_after_a_plain_metrics_import(fmt):
    """size_bytes knows every format without importing codec first (no registration at import)."""
    import subprocess
    import sys

    code = (
        "import sys, labkit.metrics as m, labkit.models as M\n"
        "assert 'labkit.codec' not in sys.modules and 'labkit.quant' not in sys.modules\n"
        f"print(m.size_bytes(M.mlp([8, 4, 2], seed=0), {fmt!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) > 0


def test_int8_engine_size_format():
    import numpy as np

    from labkit import metrics, models, quant

    model = models.mlp([8, 4, 2], seed=0)
    engine = quant.quantize_model(model, calib=np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32))
    assert metrics.size_bytes(engine, "int8_engine") == engine.nbytes
    assert "int8_engine" in metrics.size_formats() and "deep_compression" in metrics.size_formats()
    with pytest.raises(ValueError, match="unknown size format 'nope'; known: .*deep_compression"):
        metrics.size_bytes(model, "nope")


def test_command_line_subcommands():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True).stdout
    for sub in SUBCOMMANDS:
        assert sub in out
