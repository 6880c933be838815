"""What a benchmark ran on: CPU, usable cores, memory, load, library versions, BLAS.

Every ``python -m labkit bench`` result starts with this, because a ratio means little without the
machine and the libraries that produced it.
"""

from __future__ import annotations

import os
import platform

import numpy as np

from .peers import torch_or_none

__all__ = ["machine_description"]


def machine_description() -> dict:
    """CPU model, cores, memory and library versions (for the results file)."""
    import numba
    import scipy

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.readlines()
        names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
        info["cpu"] = names[0] if names else platform.processor()
        flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
        wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
        info["cpu_features"] = " ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted)
    except OSError:
        info["cpu"] = platform.processor()
    info["cpus_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    from ..kernels import llvm_tuning, simd_paths

    info["llvm_tuning"] = llvm_tuning()
    info["simd_paths"] = simd_paths()
    torch = torch_or_none()
    info["torch"] = torch.__version__ if torch is not None else "not installed"
    if torch is not None:
        info["torch_quantized_engine"] = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "?"
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    from threadpoolctl import threadpool_info

    info["blas"] = [
        f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture', '')})"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return info
