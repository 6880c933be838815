"""The names the lab checkers import, from the three files that hold them.

:mod:`.exercise` (the exercise API), :mod:`.records` (the record format the grader reads) and
:mod:`.output` (the output silencer), kept for the lab modules and submissions that import it; code
outside ``labkit.check`` imports the public names from ``labkit.check`` or those modules.
"""

from .exercise import FAIL, Case, CheckFailed, Exercise, compare_arrays
from .output import quiet
from .records import decode, encode

__all__ = ["Case", "CheckFailed", "Exercise", "compare_arrays", "FAIL", "encode", "decode", "quiet"]
