"""python -m labkit: the command line, its subcommands and their exit status (0 ok, 1 failure, 2 usage)."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit.__main__ import COMMANDS, build_parser, main
from labkit.baselines import BASELINE_RECIPES

ROOT = Path(__file__).resolve().parents[1]
LAB00 = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("data", "bench", "release", "grade", "gradebook"):
        assert name in out


def test_every_subcommand_is_registered_by_its_module():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS) == ["bench", "data", "grade", "gradebook", "release"]


def test_usage_errors_of_the_top_level_exit_2(capsys):
    assert main([]) == 2
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["--help"]) == 0


def test_exit_status_of_a_real_process(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "labkit", *a], capture_output=True, text=True)  # noqa: E731
    r = run("bench", "--threads", "0")
    assert r.returncode == 2 and "positive whole number" in r.stderr
    r = run("gradebook", str(tmp_path), "--out", str(tmp_path / "c.csv"))  # a folder without gradebook.csv
    assert r.returncode == 1 and "cannot read the gradebook" in r.stdout


# --- data -------------------------------------------------------------------------------------------


def test_data_command_verifies_embedded(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "embedded:" in out and "verified" in out and "train (18000, 784)" in out and "val (2000, 784)" in out


def test_data_usage_and_failure(monkeypatch, capsys):
    assert main(["data", "--only", "lenet5"]) == 2  # --only without --train-baselines
    assert "add --train-baselines" in capsys.readouterr().err
    assert main(["data", "--train-baselines", "--only", "resnet"]) == 2  # not a recipe
    from labkit import data

    def corrupted(*a, **k):
        raise ValueError("fashion_mnist_subset.npz has SHA-256 0000, expected 1111")

    monkeypatch.setattr(data, "load_fashion_mnist", corrupted)
    assert main(["data"]) == 1
    assert "SHA-256 0000" in capsys.readouterr().out


def test_recipes_are_seeded():
    assert all(r["seed"] == 0 for r in BASELINE_RECIPES.values())
    assert set(BASELINE_RECIPES) == {"lenet_300_100", "lenet5", "teacher", "tiny_gpt"}


def test_train_baselines_is_called_with_the_chosen_recipes(monkeypatch, capsys):
    from labkit import baselines

    seen = []
    monkeypatch.setattr(baselines, "train_baselines", lambda names, progress: seen.append((names, progress)) or {})
    assert main(["data", "--train-baselines", "--only", "lenet5", "--quiet"]) == 0
    assert seen == [(["lenet5"], False)]


def test_baseline_builders_match_their_recipes():
    from labkit import baselines

    teacher = baselines.build("teacher", 0)
    lenet = baselines.build("lenet_300_100", 0)
    assert [layer.W.shape for layer in teacher.layers if hasattr(layer, "W")][0] == (1200, 784)
    assert [layer.W.shape for layer in lenet.layers if hasattr(layer, "W")][0] == (300, 784)


# --- bench ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_bench_run(monkeypatch):
    from labkit.bench import cli

    calls = []
    monkeypatch.setattr(cli, "run", lambda *a, **k: calls.append((a, k)))
    return calls


def test_bench_exit_status(fake_bench_run, tmp_path, capsys):
    assert main(["bench", "--quick", "--threads", "1"]) == 0
    assert main(["bench", "--threads", "0"]) == 2
    assert main(["bench", "--threads", "two"]) == 2
    assert main(["bench", "--json", str(tmp_path / "no" / "b.json")]) == 2  # before minutes of timing
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", "--markdown", str(tmp_path / "no" / "b.md")]) == 2
    assert len(fake_bench_run) == 1  # only the good command ran


def test_bench_failure_to_write_exits_1(monkeypatch, tmp_path, capsys):
    from labkit.bench import cli

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "run", disk_full)
    assert main(["bench", "--json", str(tmp_path / "b.json")]) == 1
    assert "No space left" in capsys.readouterr().out


# --- release ----------------------------------------------------------------------------------------


def test_release_exit_status(tmp_path, capsys):
    assert main(["release", "--notebooks", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    assert "no such folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["release", "--notebooks", str(empty), "--timeout", "0"]) == 2
    assert main(["release", "--notebooks", str(empty), "--out", str(tmp_path / "r"), "--no-execute"]) == 1
    assert "no lab notebooks" in capsys.readouterr().out
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(LAB00, src)
    assert main(["release", "--notebooks", str(src), "--out", str(tmp_path / "r"), "--no-execute"]) == 0
    assert (tmp_path / "r" / "student" / LAB00.name).is_file()
    broken = tmp_path / "broken"
    broken.mkdir()
    nb = nbformat.read(LAB00, as_version=4)  # a cell that raised: release refuses and writes nothing
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs.append(nbformat.v4.new_output("error", ename="RuntimeError", evalue="boom", traceback=[]))
    nbformat.write(nb, broken / LAB00.name)
    assert main(["release", "--notebooks", str(broken), "--out", str(tmp_path / "r2"), "--no-execute"]) == 1
    assert not (tmp_path / "r2").exists()


# --- grade ------------------------------------------------------------------------------------------


def test_grade_exit_status(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    common = ["--submissions", str(subs), "--out", str(tmp_path / "o"), "--no-sandbox"]
    assert main(["grade", "--assignment", str(tmp_path / "none.ipynb"), *common]) == 2
    assert "no such notebook" in capsys.readouterr().err
    assert main(["grade", "--assignment", str(LAB00), *common, "--cell-timeout", "0"]) == 2
    assert main(["grade", "--assignment", str(LAB00), *common, "--jobs", "0"]) == 2
    assert main(["grade", "--assignment", str(LAB00), *common, "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert "scheduler" in capsys.readouterr().err
    assert main(["grade", "--assignment", str(LAB00), *common, "--executor", "dask"]) == 2
    assert main(["grade", "--assignment", str(LAB00), *common]) == 0  # nothing to grade: an empty gradebook
    assert (tmp_path / "o" / "gradebook.csv").read_text().startswith("student,total,max")


# --- gradebook (more in test_grading_course.py) -----------------------------------------------------


def test_gradebook_exit_status(tmp_path, capsys):
    lab = tmp_path / "lab00"
    lab.mkdir()
    (lab / "gradebook.csv").write_text("student,total,max,check_a,status\nann,2,3,2,ok\n")
    assert main(["gradebook", str(lab), "--out", str(tmp_path / "course.csv")]) == 0
    assert main(["gradebook", str(tmp_path / "nope"), "--out", str(tmp_path / "course.csv")]) == 2
    assert main(["gradebook", str(lab), "--out", str(tmp_path / "course.csv"), "--format", "excel"]) == 2
    assert main(["gradebook", str(lab)]) == 2  # --out is required
