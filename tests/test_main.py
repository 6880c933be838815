"""python -m labkit: the command line."""

import subprocess
import sys

from labkit.__main__ import BASELINE_RECIPES, main


def test_data_command_verifies_embedded(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "embedded:" in out and "verified" in out and "20000" in out


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True, check=True).stdout
    assert "data" in out


def test_recipes_are_seeded():
    assert all(r["seed"] == 0 for r in BASELINE_RECIPES.values())
