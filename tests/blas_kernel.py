"""Which BLAS kernel, thread count and CPU code paths this Python runs, and the portable pass of nbval.

A compared notebook output must survive another CPU. ``make test-portable`` (and ``.ci/run`` after
``make test``) runs nbval over every lab again with

* another OpenBLAS kernel: ``OPENBLAS_CORETYPE=Nehalem`` on x86-64 (SSE only: it runs on any x86-64
  CPU of the last fifteen years and sums in another order than the AVX2 and AVX-512 kernels a
  laptop or a CI machine picks by itself); on other machines the BLAS keeps its own choice;
* another BLAS thread count: ``OPENBLAS_NUM_THREADS=1`` (a machine picks one per core);
* numba compiling for a generic CPU of the architecture: ``NUMBA_CPU_NAME=generic``;
* numpy's AVX-512 code paths off: ``NPY_DISABLE_CPU_FEATURES`` with those of ``X86_V4 AVX512_ICL
  AVX512_SPR`` that this numpy dispatches to (none elsewhere, so the setting is harmless there).

``LABKIT_PORTABLE_CORETYPE=Haswell`` (say) chooses another kernel, ``LABKIT_PORTABLE_THREADS`` another
thread count. Before the pass this script prints the kernel a fresh Python gets under those settings
and stops with exit status 1 if an override did not take (a BLAS built without runtime kernel
selection ignores ``OPENBLAS_CORETYPE``); ``tests/test_blas_kernel.py`` checks the same inside the
run. Usage::

    python tests/blas_kernel.py                       # this process: kernel, threads, numba CPU, SIMD
    python tests/blas_kernel.py --portable -- CMD...  # print and check the portable settings, then run CMD
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

WANTED_CORETYPE = "Nehalem"
WANTED_THREADS = "1"
AVX512_PATHS = ("X86_V4", "AVX512_ICL", "AVX512_SPR")  # numpy >= 2.4 names of its AVX-512 dispatch targets
OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "NUMBA_CPU_NAME", "NPY_DISABLE_CPU_FEATURES")


def _numpy_dispatch() -> tuple[list, dict]:
    """numpy's dispatch targets and its CPU feature table (``{name: in use}``)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return list(__cpu_dispatch__), dict(__cpu_features__)


def blas_libraries() -> list[dict]:
    """threadpoolctl's record of every BLAS loaded by numpy and scipy (both are imported first)."""
    import numpy  # noqa: F401 - loads numpy's BLAS
    import scipy.linalg  # noqa: F401 - loads scipy's BLAS (its own OpenBLAS in the wheels)
    from threadpoolctl import threadpool_info

    return [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]


def describe() -> str:
    """One line: each BLAS (library, version, kernel, threads), numba's target CPU, numpy's SIMD paths in use."""
    libs = []
    for lib in sorted(blas_libraries(), key=lambda lib: lib.get("filepath", "")):
        where = Path(lib.get("filepath", "?")).parent.name  # numpy.libs, scipy.libs, or a system folder
        arch = lib.get("architecture") or "?"
        libs.append(
            f"{lib['internal_api']} {lib.get('version') or '?'} kernel {arch}, {lib['num_threads']} threads ({where})"
        )
    try:
        import numba

        cpu = numba.config.CPU_NAME or "host"
    except ImportError:
        cpu = "numba not installed"
    dispatch, features = _numpy_dispatch()
    simd = [name for name in dispatch if features.get(name)]
    return (
        f"{'; '.join(libs) or 'no BLAS found by threadpoolctl'}; numba CPU {cpu}; "
        f"numpy SIMD {' '.join(simd) or 'baseline only'} ({platform.machine()})"
    )


def override_problems(env=None) -> list[str]:
    """Every requested override (in ``env``, default ``os.environ``) that this process does not run with."""
    env = os.environ if env is None else env
    problems = []
    libs = blas_libraries()
    openblas = [lib for lib in libs if lib.get("internal_api") == "openblas"]
    if env.get("OPENBLAS_CORETYPE"):
        want = env["OPENBLAS_CORETYPE"]
        if not openblas:
            problems.append(
                f"OPENBLAS_CORETYPE={want} is set, but numpy and scipy use no OpenBLAS "
                f"({', '.join(lib['internal_api'] for lib in libs) or 'no BLAS found'})"
            )
        for lib in openblas:
            if str(lib.get("architecture", "")).lower() != want.lower():
                problems.append(
                    f"OPENBLAS_CORETYPE={want} did not take: {lib['filepath']} runs the "
                    f"{lib.get('architecture')} kernel"
                )
    if env.get("OPENBLAS_NUM_THREADS"):
        want = int(env["OPENBLAS_NUM_THREADS"])
        for lib in openblas:
            if lib["num_threads"] != want:
                problems.append(
                    f"OPENBLAS_NUM_THREADS={want} did not take: {lib['filepath']} runs {lib['num_threads']} threads"
                )
    if env.get("NUMBA_CPU_NAME"):
        import numba

        if numba.config.CPU_NAME != env["NUMBA_CPU_NAME"]:
            problems.append(
                f"NUMBA_CPU_NAME={env['NUMBA_CPU_NAME']} did not take: numba targets "
                f"{numba.config.CPU_NAME or 'the host CPU'}"
            )
    if env.get("NPY_DISABLE_CPU_FEATURES"):
        dispatch, features = _numpy_dispatch()
        still = [name for name in env["NPY_DISABLE_CPU_FEATURES"].split() if name in dispatch and features.get(name)]
        if still:
            problems.append(f"NPY_DISABLE_CPU_FEATURES did not take: numpy still dispatches to {' '.join(still)}")
    return problems


def portable_env(machine: str | None = None, dispatch=None, env=None) -> dict[str, str]:
    """The settings of the portable pass on this machine (see the module's docstring)."""
    env = os.environ if env is None else env
    machine = (machine or platform.machine()).lower()
    if dispatch is None:
        dispatch = _numpy_dispatch()[0]
    out = {
        "OPENBLAS_NUM_THREADS": env.get("LABKIT_PORTABLE_THREADS", WANTED_THREADS),
        "NUMBA_CPU_NAME": "generic",
    }
    coretype = env.get("LABKIT_PORTABLE_CORETYPE", WANTED_CORETYPE if machine in ("x86_64", "amd64") else "")
    if coretype:
        out["OPENBLAS_CORETYPE"] = coretype
    off = [name for name in AVX512_PATHS if name in dispatch]
    if off:
        out["NPY_DISABLE_CPU_FEATURES"] = " ".join(off)
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(describe())
        problems = override_problems()
        for p in problems:
            print("ERROR:", p)
        return 1 if problems else 0
    if argv[0] != "--portable" or (len(argv) > 1 and argv[1] != "--"):
        print(__doc__.split("Usage::")[1], file=sys.stderr)
        return 2
    command = argv[2:]
    settings = portable_env()
    if "OPENBLAS_CORETYPE" not in settings:
        print(f"portable pass on {platform.machine()}: no OpenBLAS kernel override here, the BLAS keeps its own")
    env = {**os.environ, **settings}
    # fresh interpreters, because numpy's BLAS and CPU dispatch are fixed when numpy is first imported
    own_env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    own = subprocess.run([sys.executable, __file__], env=own_env, capture_output=True, text=True)
    print("this machine by itself runs:", (own.stdout + own.stderr).strip())
    print("portable pass:", " ".join(f"{k}={v!r}" if " " in v else f"{k}={v}" for k, v in settings.items()))
    check = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True)
    print("portable pass runs:", (check.stdout + check.stderr).strip())
    if check.returncode != 0:
        print("portable pass: the overrides did not take (see above); stopping", file=sys.stderr)
        return 1
    coretype = settings.get("OPENBLAS_CORETYPE", "").lower()
    if coretype and f"kernel {coretype}," in own.stdout.lower():
        print(
            f"WARNING: this machine picks the {settings['OPENBLAS_CORETYPE']} kernel by itself: the pass differs "
            "from make test only in threads, numba's CPU and numpy's SIMD paths (LABKIT_PORTABLE_CORETYPE=Haswell "
            "chooses another kernel)"
        )
    if not command:
        return 0
    sys.stdout.flush()
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
