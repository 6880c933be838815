"""The portable pass really runs what it asks for (tests/blas_kernel.py, ``make test-portable``).

Under ``make test-portable`` the first test checks, inside the run, that the OpenBLAS kernel, the BLAS
thread count, numba's target CPU and numpy's SIMD paths are the requested ones; in a plain ``make test``
nothing is requested and it skips. The others check the settings chosen per machine and that a
setting which did not take is reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from blas_kernel import AVX512_PATHS, OVERRIDES, blas_libraries, override_problems, portable_env

SCRIPT = Path(__file__).resolve().parent / "blas_kernel.py"


def test_requested_kernel_threads_and_cpu_paths_took():
    requested = {k: os.environ[k] for k in OVERRIDES if os.environ.get(k)}
    if not requested:
        pytest.skip("no BLAS kernel, thread count or CPU override requested (`make test-portable` sets them)")
    assert override_problems() == [], requested


def test_portable_settings_per_machine():
    x86 = portable_env("x86_64", dispatch=["X86_V3", *AVX512_PATHS], env={})
    assert x86 == {
        "OPENBLAS_CORETYPE": "Nehalem",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMBA_CPU_NAME": "generic",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    }
    # an older numpy (other names for its targets) and an ARM machine: nothing it does not know is set
    assert "NPY_DISABLE_CPU_FEATURES" not in portable_env("x86_64", dispatch=["AVX2", "AVX512F"], env={})
    arm = portable_env("aarch64", dispatch=["ASIMDHP", "ASIMDDP"], env={})
    assert arm == {"OPENBLAS_NUM_THREADS": "1", "NUMBA_CPU_NAME": "generic"}
    chosen = portable_env(
        "x86_64", dispatch=[], env={"LABKIT_PORTABLE_CORETYPE": "Haswell", "LABKIT_PORTABLE_THREADS": "2"}
    )
    assert chosen["OPENBLAS_CORETYPE"] == "Haswell" and chosen["OPENBLAS_NUM_THREADS"] == "2"


def test_an_override_that_did_not_take_is_reported():
    openblas = [lib for lib in blas_libraries() if lib.get("internal_api") == "openblas"]
    if not openblas:
        pytest.skip("numpy and scipy use no OpenBLAS here")
    arch = openblas[0]["architecture"]
    other = "Nehalem" if arch.lower() != "nehalem" else "Haswell"
    threads = openblas[0]["num_threads"] + 1
    problems = override_problems(
        {"OPENBLAS_CORETYPE": other, "OPENBLAS_NUM_THREADS": str(threads), "NUMBA_CPU_NAME": "not-this-cpu"}
    )
    text = "\n".join(problems)
    assert f"OPENBLAS_CORETYPE={other} did not take" in text and f"the {arch} kernel" in text
    assert f"OPENBLAS_NUM_THREADS={threads} did not take" in text
    assert "NUMBA_CPU_NAME=not-this-cpu did not take" in text
    assert override_problems({"OPENBLAS_CORETYPE": arch}) == []


@pytest.mark.slow
def test_portable_script_stops_when_the_kernel_cannot_be_chosen():
    env = {**os.environ, "LABKIT_PORTABLE_CORETYPE": "NoSuchKernel"}
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--portable", "--", sys.executable, "-c", "print('ran')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "OPENBLAS_CORETYPE=NoSuchKernel did not take" in r.stdout or "use no OpenBLAS" in r.stdout, r.stdout
    assert "ran" not in r.stdout.split() and "did not take" in r.stderr
