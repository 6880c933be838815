"""The results as text: one console block per row while the run goes, and a Markdown report at the end.

Both read the plain dictionaries that :class:`.runner.Runner` and :func:`.cli.run` build (the same
ones written to ``--json``), so a stored JSON file can be rendered again later.
"""

from __future__ import annotations

__all__ = ["format_row", "render_markdown"]


def format_row(row: dict) -> str:
    """One row as console lines: labkit's time and bandwidth, then one line per peer with its ratio."""
    bw = (
        f"{row['gbps']:.1f} GB/s = {100 * row['bw_fraction']:.0f}% of main-memory read BW, "
        f"{100 * row['bw_fraction_same_size']:.0f}% of read BW at this size"
        if row["gbps"]
        else ""
    )
    ops = f", {row['gops']:.1f} GOP/s" if row.get("gops") else ""
    lines = [
        f"{row['kernel']} [{row['size']}] labkit {row['labkit']}: {row['labkit_ms']:.3f} ms "
        f"(IQR {row['labkit_iqr_ms']:.3f}) {bw}{ops}"
    ]
    if row.get("roof_fraction") is not None:
        tgt = row.get("roof_target")
        aim = "" if tgt is None else f"  target >= {100 * tgt:.0f}%: {'met' if row['roof_met'] else 'MISSED'}"
        lines.append(
            f"    roofline: {row['roof_bound']}-bound, attainable {row['roof_gops']:.1f} GOP/s, "
            f"reached {100 * row['roof_fraction']:.0f}%{aim}"
        )
    for p in row["peers"]:
        if p["ms"] is None:
            lines.append(f"    vs {p['peer']}: skipped ({p['missing']})")
            continue
        tgt = "" if p.get("target") is None else f"  target >= {p['target']:g}: {'met' if p['met'] else 'MISSED'}"
        lines.append(f"    vs {p['peer']}: {p['ms']:.3f} ms -> ratio {p['ratio']:.2f}{tgt}")
    if row["note"]:
        lines.append(f"    note: {row['note']}")
    return "\n".join(lines)


def _roof_cell(r: dict) -> str:
    if r.get("roof_fraction") is None:
        return ""
    cell = f"{100 * r['roof_fraction']:.0f}% ({r['roof_bound']})"
    if r.get("roof_target") is not None:
        cell += f", ≥ {100 * r['roof_target']:.0f}%: " + ("met" if r["roof_met"] else "**missed**")
    return cell


def render_markdown(out: dict) -> str:
    """The run as a Markdown report: machine, thread setup, bandwidth, the table of rows with goals, crossover."""
    return "\n".join(_machine_lines(out) + _table_lines(out) + _goal_lines(out)) + "\n"


def _wake_text(ms) -> str:
    if not ms:
        return ""
    return f"; an empty numba parallel call (waking the pool) took {ms[0]:.3f} ms median, {ms[1]:.3f} ms at best"


def _machine_lines(out: dict) -> list:
    """The report's header: the machine, its load, the thread pools and the measured roofs."""
    m = out["machine"]
    lines = [
        f"## Run: `python -m labkit bench{' --quick' if out['mode'] == 'quick' else ''}` ({out['mode']} sizes)",
        "",
        f"- CPU: {m.get('cpu')}, {m.get('cpus_usable')} usable CPUs, {m.get('memory_gib', '?')} GiB RAM",
        f"- load average at start (other processes on the machine): {m.get('loadavg_at_start')}; "
        f"at the end: {out.get('loadavg_at_end')}",
        f"- CPU features used by the kernels: {m.get('cpu_features', '?')}; numba/LLVM settings: "
        f"{m.get('llvm_tuning', '?')}",
        "- inner loops: " + ("; ".join(f"{k}: {v}" for k, v in m["simd_paths"].items()) if "simd_paths" in m else "?"),
        f"- {m.get('platform')}; Python {m.get('python')}; numpy {m.get('numpy')}, scipy {m.get('scipy')}, "
        f"numba {m.get('numba')}, torch {m.get('torch')}; BLAS: {', '.join(m.get('blas', []))}",
        f"- thread pools: {out['threads']}; numba threading layer: {out.get('numba_threading_layer')}"
        + _wake_text(out.get("parallel_call_ms")),
        f"- timing: {out.get('timing', 'one block per kernel')}",
        f"- memory bandwidth (numba, all threads): read {out['bandwidth']['read_gbps']:.1f} GB/s, copy "
        f"{out['bandwidth']['copy_gbps']:.1f} GB/s over {out['bandwidth']['nbytes'] / 2**20:.0f} MiB; float32 BLAS "
        f"GEMM {out['blas_f32_gemm_gflops']:.1f} GFLOP/s (the compute roof of the roofline column)",
        f"- total run time {out['seconds']:.0f} s",
    ]
    if out.get("torch_note"):
        lines.append(f"- {out['torch_note']}")
    return lines


def _table_lines(out: dict) -> list:
    """Every row against each of its peers, then the sparse/dense crossover."""
    lines = [
        "",
        "Ratio = peer median / labkit median (> 1: labkit is faster). Medians of repeated calls in one process;",
        "BW% = achieved bytes/s over the read bandwidth measured for main memory / for an array of the same size.",
        "Roofline = achieved GOP/s over min(compute roof, main-memory read bandwidth × operations/byte), and",
        "which roof binds.",
        "",
        "| kernel | size | labkit | labkit ms | BW% (main / same size) | roofline | peer | peer ms | ratio | target |",
        "|---|---|---|---:|---:|---|---|---:|---:|---|",
    ]
    for r in out["rows"]:
        bw = f"{100 * r['bw_fraction']:.0f}% / {100 * r['bw_fraction_same_size']:.0f}%" if r.get("gbps") else ""
        first = True
        for p in r["peers"]:
            head = (
                f"| {r['kernel']} | {r['size']} | {r['labkit']} | {r['labkit_ms']:.3f} | {bw} | {_roof_cell(r)} "
                if first
                else "| | | | | | "
            )
            if p["ms"] is None:
                lines.append(head + f"| {p['peer']} | skipped: {p['missing']} | | |")
            else:
                tgt = "" if p.get("target") is None else f"≥ {p['target']:g}: {'met' if p['met'] else '**missed**'}"
                lines.append(head + f"| {p['peer']} | {p['ms']:.3f} | {p['ratio']:.2f} | {tgt} |")
            first = False
    lines += [
        "",
        "Sparse/dense crossover at batch 1 (lowest measured sparsity from which the kernel beats dense",
        "float32 GEMV at every higher measured sparsity):",
        "",
    ]
    for key, v in out["crossover"].items():
        lines.append(f"- {key}: {'not in the measured range' if v is None else f'{round(100 * v)}%'}")
    return lines


def _goal_lines(out: dict) -> list:
    """Each goal of ``labkit/bench/goals.py`` with this run's value and verdict."""
    lines = [
        "",
        "Goals in this run (``labkit/bench/goals.py``; aims, not tests):",
        "",
        "| kernel | size | goal | this run | verdict |",
        "|---|---|---|---:|---|",
    ]
    for r in out["rows"]:
        if r.get("roof_target") is not None:
            lines.append(
                f"| {r['kernel']} | {r['size']} | ≥ {100 * r['roof_target']:.0f}% of its roofline "
                f"| {100 * r['roof_fraction']:.0f}% | {'met' if r['roof_met'] else '**missed**'} |"
            )
        for p in r["peers"]:
            if p.get("target") is not None:
                lines.append(
                    f"| {r['kernel']} | {r['size']} | ≥ {p['target']:g}× {p['peer']} | {p['ratio']:.2f}× "
                    f"| {'met' if p['met'] else '**missed**'} |"
                )
    return lines
