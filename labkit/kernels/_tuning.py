"""Two code-generation settings for numba's LLVM that the integer kernels depend on.

LLVM's loop vectorizer turns an integer dot product ``acc += int16(a[k]) * int16(b[k])`` into
``vpmaddwd``/``vpdpwssd`` (16-bit multiplies, pairs summed into 32 bits), but with its defaults it
picks the vector width from the *widest* type in the loop (the int32 accumulator) and, on Intel
CPUs with AVX-512, prefers 256-bit registers. The products then fill only half of each register.
Two settings fix that:

- ``-vectorizer-maximize-bandwidth`` (an LLVM option): the vector width follows the *narrowest*
  type, so a loop over int8 inputs is vectorized 32 (or 64) elements at a time and each
  ``vpdpwssd`` does 32 multiply-adds instead of 8.
- ``-prefer-256-bit`` removed from the CPU features: on CPUs with AVX-512, LLVM may then use the
  512-bit registers it otherwise avoids (a choice made for old Xeons that slowed their clocks); on
  other x86 CPUs it changes nothing.

Measured on the course's reference machine (Sapphire Rapids, one core, operands in cache): the int8
dot product went from 37 to 89 GOP/s and int8 GEMV from 24 to 48 GB/s. Neither setting changes a
result: integer kernels give the same integers, float kernels the same results up to float32
rounding (a wider vector sums in a different order).

Both are process-wide: they apply to every numba function compiled after :func:`apply` ran, so
this module calls it when imported, and ``labkit.kernels`` imports it before its own kernels. They
are skipped (and :data:`STATE` says why) when the user chose the CPU (``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``),
when ``LABKIT_LLVM_TUNING=0``, or when numba had already set up its code generator (some
``@njit`` function was defined before ``labkit.kernels`` was imported): the CPU features are fixed
then, and numba's on-disk cache must not mix code built with and without the settings (its cache
key holds the CPU features, which is why both settings go together).
"""

from __future__ import annotations

import os

import llvmlite.binding as ll
import numba
from numba.core import registry

__all__ = ["apply", "STATE"]

STATE = "not applied yet"


def apply() -> str:
    """Apply the two settings if allowed (see the module docstring); return and record what was done."""
    global STATE
    if STATE != "not applied yet":
        return STATE
    if os.environ.get("LABKIT_LLVM_TUNING", "1") == "0":
        STATE = "off (LABKIT_LLVM_TUNING=0)"
    elif os.environ.get("NUMBA_CPU_NAME") or os.environ.get("NUMBA_CPU_FEATURES"):
        STATE = "off (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES chosen by the user)"
    elif "_toplevel_target_context" in registry.cpu_target.__dict__:
        STATE = "off (numba's code generator was set up before labkit.kernels was imported)"
    elif not ll.get_process_triple().startswith(("x86_64", "i686", "i386")):
        STATE = "off (not an x86 CPU)"
    else:
        ll.set_option("labkit", "-vectorizer-maximize-bandwidth")
        numba.config.CPU_FEATURES = ll.get_host_cpu_features().flatten() + ",-prefer-256-bit"
        STATE = "on: LLVM -vectorizer-maximize-bandwidth and CPU feature -prefer-256-bit"
    return STATE


apply()
