"""``python -m labkit bench``: labkit's kernels against what a user would otherwise pick, in one run.

For each kernel and size this prints labkit's median time, each peer's median measured in the same
process in alternating blocks, the ratios (peer time / labkit time: > 1 means labkit is faster), the
achieved bandwidth and its fraction of the measured read bandwidth. Peers (:mod:`.peers`): numpy
float32 BLAS, scipy.sparse and, when PyTorch is importable (extra ``peers``), ``torch.ao``
dynamic-quantized Linear (fbgemm), ``torch.sparse_csr_tensor``, ``torch.quantize_per_tensor``,
``torch.kthvalue`` and ``torch.nn.utils.prune.global_unstructured``. Rows whose peer is missing say so.

Threads: every pool (OpenBLAS/OpenMP via threadpoolctl, numba, PyTorch) is limited to the same
count (``--threads``, default: the CPUs this process may use) for the whole run, and each timing runs
alone, so the pools never compete; the header says exactly what was set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from labkit.atomic import write_text

from . import peers
from .cases import case_int8, case_prune, case_quantize, case_sparse, case_topk, warm_up
from .lowbit import case_int4, case_nm24, case_small_layers
from .machine import machine_description
from .presets import FULL, QUICK
from .report import render_markdown
from .roofline import bandwidth, compute_peak
from .runner import Runner
from .threads import parallel_call_cost, thread_limits

__all__ = ["run", "add_parser"]


def run(
    quick: bool = False,
    threads: int | None = None,
    json_path=None,
    verbose: bool = True,
    config=None,
    markdown_path=None,
) -> dict:
    """Run every case; return (and optionally write as JSON) the machine, thread setup, bandwidth and rows.

    ``config`` overrides the sizes (keys as in :data:`.presets.FULL`; the tests use tiny ones).
    """
    cfg = dict(QUICK if quick else FULL, **(config or {}))
    # OpenMP's default is to spin while waiting for work; on a small, shared machine the spinning
    # threads steal the cores the working ones need (measured on the 2-core reference VM: ~30 ms per
    # parallel region). Passive waiting is set before PyTorch loads libgomp, unless the user chose.
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    omp_policy = os.environ.get("OMP_WAIT_POLICY", "default (torch was already imported)")
    torch = peers.torch_or_none()
    rng = np.random.default_rng(0)
    t_start = time.perf_counter()
    out = {"machine": machine_description(), "mode": "quick" if quick else "full", "config": dict(cfg)}
    with thread_limits(threads) as how:
        out["threads"] = f"{how}; OMP_WAIT_POLICY={omp_policy}"
        how = out["threads"]
        if torch is None:
            out["torch_note"] = "PyTorch is not installed: its peer rows are skipped (pip install 'labkit[peers]')"
        if verbose:
            print(f"labkit bench ({out['mode']}): {out['machine']['cpu']}, {out['machine']['cpus_usable']} CPUs")
            print(f"thread pools: {how}")
            if torch is None:
                print(out["torch_note"])
            print("compiling / loading the numba kernels ...", flush=True)
        warm_up()
        import numba

        out["numba_threading_layer"] = numba.threading_layer()
        out["parallel_call_ms"] = [1e3 * t for t in parallel_call_cost()]
        if verbose:
            wake, fastest = out["parallel_call_ms"]
            print(
                f"numba threading layer: {out['numba_threading_layer']}; an empty parallel call: {wake:.3f} ms median"
            )
        bw = bandwidth(cfg["bw_bytes"], repeat=max(5, cfg["repeat"] // 3))
        peak = compute_peak(cfg.get("gemm_n", 1024 if quick else 2048), repeat=3)
        out["bandwidth"] = {"read_gbps": bw.read, "copy_gbps": bw.copy, "nbytes": bw.nbytes}
        out["blas_f32_gemm_gflops"] = peak
        if verbose:
            print(f"memory bandwidth: {bw}; float32 BLAS GEMM: {peak:.1f} GFLOP/s")
            print("ratio = peer median / labkit median (> 1: labkit faster)\n", flush=True)
        r = Runner(cfg["repeat"], bw.read, verbose, rounds=cfg["rounds"], settle=cfg["settle"], peak_gops=peak)
        out["timing"] = (
            f"labkit and its peers timed in alternating blocks: {cfg['repeat']} calls each in {cfg['rounds']} "
            f"blocks, {cfg['settle']} s pause and 2 untimed calls before each block (top-k and pruning rows: "
            "one block each)"
        )
        if verbose:
            print(f"timing: {out['timing']}")
        case_int8(r, cfg["n"], cfg["batches"], torch, rng)
        out["crossover"] = case_sparse(r, cfg["n"], cfg["sparsities"], cfg["spmm_batch"], torch, rng)
        case_quantize(r, cfg["quant_n"], torch, rng)
        case_topk(r, cfg["topk_n"], cfg["topk_arrays"], torch, rng)
        case_prune(r, cfg["mlp"], torch, rng, max(3, cfg["repeat"] // 3))
        for n in cfg.get("lowbit_n", (cfg["n"],)):
            case_int4(
                r, n, cfg.get("int4_groups", (128,)), cfg.get("int4_batches", ()) if n == cfg["n"] else (), torch, rng
            )
            case_nm24(r, n, torch, rng)
        case_small_layers(r, cfg.get("small_layers", ()), rng)
    out["rows"] = r.rows
    try:
        out["loadavg_at_end"] = os.getloadavg()
    except OSError:
        pass
    out["seconds"] = time.perf_counter() - t_start
    if verbose:
        print(
            "\nsparse/dense crossover (lowest measured sparsity from which the kernel beats dense float32 GEMV"
            " at every higher one):"
        )
        for key, s in out["crossover"].items():
            print(f"    {key}: {'never in the measured range' if s is None else f'{round(100 * s)}%'}")
        print(f"total {out['seconds']:.0f} s")
    if json_path:
        write_text(json_path, json.dumps(out, indent=1, default=float))
        if verbose:
            print(f"wrote {json_path}")
    if markdown_path:
        write_text(markdown_path, render_markdown(out))
        if verbose:
            print(f"wrote {markdown_path}")
    return out


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of threads, got {text!r}")
    return n


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``bench`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("bench", help="time labkit's kernels against numpy, scipy and PyTorch (minutes)")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (about a minute)")
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    p.add_argument("--markdown", metavar="PATH", help="also write the results as a Markdown report")
    p.add_argument("--threads", type=_positive_int, default=None, help="threads for every pool (default: usable CPUs)")
    p.set_defaults(fn=cmd_bench)
    return p


def cmd_bench(args) -> int:
    """Run the benchmark: 0 when done, 1 if a result file cannot be written, 2 on bad usage (checked first)."""
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path and not Path(path).resolve().parent.is_dir():
            args.parser.error(f"{option} {path}: the folder {Path(path).resolve().parent} does not exist")
    try:
        run(args.quick, args.threads, args.json, markdown_path=args.markdown)
    except OSError as exc:  # writing --json or --markdown
        print(f"bench: {exc}")
        return 1
    return 0
