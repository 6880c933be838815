"""The checking API in one namespace: :mod:`.exercise`, :mod:`.records` and :mod:`.output`'s names.

Student code can reach it as ``labkit.check._core`` (the grader's hostile submissions in
``tests/submissions`` patch it), so the names stay importable here. labkit's own code imports them
from ``labkit.check`` or from the module that defines each.
"""

from .exercise import FAIL, Case, CheckFailed, Exercise, compare_arrays
from .output import quiet
from .records import decode, encode

__all__ = ["Case", "CheckFailed", "Exercise", "compare_arrays", "FAIL", "encode", "decode", "quiet"]
