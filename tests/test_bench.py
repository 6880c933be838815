"""labkit.bench (timing statistics, bandwidth probe, roofline, thread limits) and the bench command.

Nothing here asserts a speed: timings are only checked for being positive and consistent.
"""

import json

import numba
import numpy as np
import pytest

from labkit import bench, kernels
from labkit.bench import cases, cli, peers, report


def test_timeit_statistics_and_rates():
    t = bench.timeit(np.sum, np.ones(1000), repeat=7, warmup=1, nbytes=8000, flops=1000)
    assert t.repeat == 7
    assert 0 < t.min <= t.q1 <= t.median <= t.q3 <= t.max
    assert t.iqr == pytest.approx(t.q3 - t.q1)
    assert t.gbps == pytest.approx(8000 / t.median / 1e9)
    assert t.gflops == pytest.approx(1000 / t.median / 1e9)
    assert "GB/s" in str(t) and "GFLOP/s" in str(t)
    with pytest.raises(ValueError, match="repeat"):
        bench.timeit(np.sum, np.ones(3), repeat=0)


def test_timeit_counts_calls_and_min_time():
    calls = []
    bench.timeit(calls.append, 1, repeat=4, warmup=2)
    assert len(calls) == 6
    calls.clear()
    t = bench.timeit(calls.append, 1, repeat=3, warmup=0, min_time=1e-4)
    assert len(calls) >= 3 and t.median > 0  # inner loops repeat the call for short functions


def test_timeit_interleaved_alternates_blocks_and_counts_calls():
    log = []
    fns = {name: (lambda n=name: log.append(n)) for name in "abc"}
    out = bench.timeit_interleaved(fns, repeat=5, warmup=1, rounds=2, settle=0, nbytes={"a": 100}, flops={"c": 10})
    assert list(out) == ["a", "b", "c"]
    assert all(t.repeat == 5 and t.median > 0 for t in out.values())
    assert out["a"].gbps is not None and out["b"].gbps is None and out["c"].gflops is not None
    # round 0: blocks of 1 warm-up + 3 timed calls in the order a, b, c; round 1: 1 + 2, rotated to b, c, a
    assert "".join(log) == "aaaabbbbccccbbbcccaaa"


def test_timeit_interleaved_times_each_contender_separately():
    import time

    out = bench.timeit_interleaved({"slow": lambda: time.sleep(0.01), "fast": lambda: None}, repeat=5, settle=0)
    assert out["slow"].min >= 0.01 > out["fast"].median


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"fns": {}}, ValueError, "at least one"),
        ({"fns": {"a": 3}}, TypeError, "callable"),
        ({"fns": {"a": print}, "repeat": 0}, ValueError, "repeat"),
        ({"fns": {"a": print}, "repeat": 2, "rounds": 3}, ValueError, "rounds"),
        ({"fns": {"a": print}, "settle": -1}, ValueError, "settle"),
        ({"fns": {"a": print}, "nbytes": {"b": 1}}, ValueError, "not in fns"),
    ],
)
def test_timeit_interleaved_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        bench.timeit_interleaved(**kwargs)


def test_timing_from_samples():
    t = bench.timing_from_samples([3.0, 1.0, 2.0, 4.0, 5.0], nbytes=10)
    assert (t.median, t.min, t.max, t.q1, t.q3, t.repeat) == (3.0, 1.0, 5.0, 2.0, 4.0, 5)
    assert t.gbps == pytest.approx(10 / 3.0 / 1e9)
    with pytest.raises(ValueError, match="at least one"):
        bench.timing_from_samples([])


def test_roofline_and_ridge():
    np.testing.assert_allclose(bench.roofline([0.125, 1.0, 8.0, 100.0], 100.0, 20.0), [2.5, 20.0, 100.0, 100.0])
    assert bench.ridge_point(100.0, 20.0) == 5.0
    # at the ridge both roofs meet
    assert bench.roofline(bench.ridge_point(100.0, 20.0), 100.0, 20.0) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="> 0"):
        bench.roofline(1.0, 0.0, 20.0)


def test_bandwidth_probe_is_sane():
    bw = bench.bandwidth(nbytes=8 * 2**20, repeat=3)
    assert bw.read > 0 and bw.copy > 0 and bw.nbytes == 8 * 2**20
    assert bw.threads == numba.get_num_threads()
    assert "GB/s" in str(bw)
    with pytest.raises(ValueError, match="4096"):
        bench.bandwidth(nbytes=100)


def test_thread_limits_sets_and_restores():
    before = numba.get_num_threads()
    with bench.thread_limits(1) as how:
        assert numba.get_num_threads() == 1
        from threadpoolctl import threadpool_info

        assert all(p["num_threads"] == 1 for p in threadpool_info())
        assert how.startswith("1 threads") and "numba.set_num_threads(1)" in how and "threadpoolctl" in how
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError, match="positive"):
        with bench.thread_limits(0):
            pass


def test_dynamic_linear_int8_is_close_to_float():
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((16, 40)) * 0.1).astype(np.float32)
    X = rng.standard_normal((3, 40)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    from labkit import kernels

    s = (np.abs(W).max(axis=1) / 127).astype(np.float32)
    Wq = kernels.quantize_per_channel(W, s, np.zeros(16, np.int64))
    y = cases.dynamic_linear_int8(X, Wq, s, b)
    exact = X @ W.T + b
    # int8 on both sides: error a few percent of the output range at most
    assert np.abs(y - exact).max() < 0.05 * np.abs(exact).max()


TINY = {
    "n": 64,
    "batches": (1, 5),
    "sparsities": (0.5, 0.9),
    "spmm_batch": 3,
    "quant_n": 5000,
    "topk_n": 300_000,
    "topk_arrays": 3,
    "mlp": (20, 30, 10),
    "repeat": 2,
    "rounds": 2,
    "settle": 0.0,
    "bw_bytes": 2**20,
    "gemm_n": 64,
    "lowbit_n": (64,),
    "int4_groups": (32, 128),
    "int4_batches": (2,),
    "small_layers": ((16, 64),),
}


def test_bench_command_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    out = cli.run(threads=1, json_path=str(path), config=TINY, markdown_path=str(md))
    printed = capsys.readouterr().out
    data = json.loads(path.read_text())
    assert data["mode"] == "full" and data["config"]["n"] == 64
    assert "numba.set_num_threads(1)" in data["threads"] and "thread pools:" in printed
    assert data["bandwidth"]["read_gbps"] > 0
    kernels_run = {r["kernel"] for r in data["rows"]}
    for name in (
        "int8 GEMV b=1",
        "int8 GEMM b=5",
        "CSR SpMV 90%",
        "CSR SpMV 50% compact",
        "quantize int8",
        "global top-k threshold",
        "global 90% pruning MLP",
    ):
        assert name in kernels_run
    for row in data["rows"]:
        assert row["labkit_ms"] > 0 and row["peers"]
        for p in row["peers"]:
            assert (p["ms"] is None) == (p["ratio"] is None)
            if p["ms"] is not None:
                assert p["ratio"] == pytest.approx(p["ms"] / row["labkit_ms"])
    assert set(data["crossover"]) >= {"labkit CSR", "labkit compact CSR", "scipy.sparse CSR"}
    assert "ratio" in printed and "crossover" in printed
    assert len(out["rows"]) == len(data["rows"])
    report = md.read_text()
    assert "| kernel |" in report and "thread pools:" in report and "crossover" in report
    assert "alternating blocks: 2 calls each in 2 blocks" in data["timing"] and data["timing"] in report
    assert report.split("Goals in this run")[0].count("\n| int8 GEMV b=1 |") == 1  # one row, its peers below
    assert "| roofline |" in report and "at the end:" in report and data["loadavg_at_end"]
    goals_part = report.split("Goals in this run")[1]  # one line per goal of the run's rows
    assert "| int8 GEMV b=1 | 64x64 | ≥ 5× numpy f32 GEMV |" in goals_part and "of its roofline" in goals_part
    assert data["machine"]["llvm_tuning"].startswith(("on", "off")) and "numba/LLVM settings" in report
    assert set(data["machine"]["simd_paths"]) == set(kernels.simd_paths()) and "- inner loops: " in report
    wake, fastest = data["parallel_call_ms"]
    assert 0 < fastest <= wake and "an empty numba parallel call (waking the pool)" in report
    assert {"int4 GEMV g=128", "2:4 sparse GEMV"} <= kernels_run
    assert all(r["roof_fraction"] > 0 for r in data["rows"] if r["gbps"] and r.get("gops"))


def test_bench_subcommand_is_registered(monkeypatch):
    from labkit.__main__ import main

    seen = {}
    fake = lambda quick, threads, json_path, markdown_path: seen.update(
        q=quick, t=threads, j=json_path, m=markdown_path
    )
    monkeypatch.setattr(cli, "run", fake)
    assert main(["bench", "--quick", "--threads", "1", "--json", "x.json", "--markdown", "r.md"]) == 0
    assert seen == {"q": True, "t": 1, "j": "x.json", "m": "r.md"}


def test_torch_missing_rows_are_skipped_with_a_note(monkeypatch, capsys):
    monkeypatch.setattr(peers, "torch_or_none", lambda: None)
    out = cli.run(threads=1, config=TINY, verbose=True)
    assert "not installed" in out["torch_note"]
    missing = [p for r in out["rows"] for p in r["peers"] if p["ms"] is None]
    assert missing and all(p["missing"] == "torch not installed" for p in missing)
    assert "skipped (torch not installed)" in capsys.readouterr().out


def test_public_names_of_the_timer_stay_importable_from_labkit_bench():
    import subprocess
    import sys

    for name in (
        "Timing",
        "timeit",
        "timeit_interleaved",
        "timing_from_samples",
        "Bandwidth",
        "bandwidth",
        "compute_peak",
        "roofline",
        "ridge_point",
        "thread_limits",
    ):
        assert name in bench.__all__ and callable(getattr(bench, name))
    # the labs' `from labkit import bench` does not load the command's cases and peers
    code = "import sys, labkit.bench; print(sorted(m for m in sys.modules if m.startswith('labkit.bench.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "cases" not in loaded and "cli" not in loaded and "timing" in loaded


def test_goals_mark_rows_met_or_missed():
    from labkit.bench import goals
    from labkit.bench.runner import Runner
    from labkit.bench.timing import timing_from_samples

    kernel, peer = "CSR SpMV 90%", "scipy.sparse CSR"
    aim = goals.goal(kernel, peer)
    assert aim == goals.GOALS[(kernel, peer)] and goals.goal(kernel, "no such peer") is None
    r = Runner(repeat=1, read_gbps=10.0, verbose=False)
    fast, slow = timing_from_samples([1e-3]), timing_from_samples([aim * 1e-3 * 1.01])
    met = r.add(kernel, "n", ("spmv", fast), [(peer, slow)])["peers"][0]
    missed = r.add(kernel, "n", ("spmv", slow), [(peer, fast)])["peers"][0]
    assert met["target"] == aim and met["met"] is True and missed["met"] is False
    assert "target >= 1.5: MISSED" in report.format_row(r.rows[1])


def test_rows_are_placed_on_the_roofline():
    """A row's roofline: min(compute roof, bandwidth x intensity), which roof binds, the fraction reached,
    and the roofline goal met or missed."""
    from labkit.bench import goals
    from labkit.bench.runner import Runner
    from labkit.bench.timing import timing_from_samples

    r = Runner(repeat=1, read_gbps=20.0, verbose=False, peak_gops=100.0)
    # 1e6 bytes, 2e6 operations (intensity 2): memory roof 40 GOP/s; in 0.1 ms that is 20 GOP/s = 50 %
    gemv = r.add("2:4 sparse GEMV", "n", ("k", timing_from_samples([1e-4], nbytes=10**6, flops=2 * 10**6)), [])
    assert gemv["roof_bound"] == "memory" and gemv["roof_gops"] == pytest.approx(40.0)
    assert gemv["roof_fraction"] == pytest.approx(0.5) and gemv["roof_target"] == goals.ROOF_GOALS["2:4 sparse GEMV"]
    assert gemv["roof_met"] is False and "roofline: memory-bound" in report.format_row(gemv)
    assert "target >= 80%: MISSED" in report.format_row(gemv)
    # intensity 100: compute roof 100 GOP/s; 1e8 operations in 1.25 ms = 80 GOP/s
    gemm = r.add("int8 GEMM b=64", "n", ("k", timing_from_samples([1.25e-3], nbytes=10**6, flops=10**8)), [])
    assert gemm["roof_bound"] == "compute" and gemm["roof_fraction"] == pytest.approx(0.8)
    assert gemm["roof_target"] is None and gemm["roof_met"] is None
    none = Runner(repeat=1, read_gbps=20.0, verbose=False).add("x", "n", ("k", timing_from_samples([1e-3])), [])
    assert none["roof_fraction"] is None and "roofline" not in report.format_row(none)
