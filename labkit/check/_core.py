"""The machinery behind every check cell.

An :class:`Exercise` knows a reference implementation, how to make test cases, and how to compare
a student's answer with the reference. Calling it on the student's function prints exactly one line:
the exercise's fixed pass line, or ``FAIL: <a specific hint>``. The student's own prints, warnings
and progress bars are swallowed so that the printed line is all nbval (and the grader) ever sees.
Ordinary exceptions become hints; ``KeyboardInterrupt`` (and so a grader's timeout) goes through.

Grading hook: when the environment variable ``LABKIT_GRADE_RECORD`` names a file, the exercise also
runs the student's function on extra cases drawn with the seed in ``LABKIT_GRADE_SEED`` (chosen by
the grader at grading time, never stored in the notebook) and appends the outputs to that file, so
the grader can compare them with the reference in its own process (see ``labkit.grading``).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Case", "Exercise", "compare_arrays", "FAIL"]

FAIL = "FAIL: "


@dataclass
class Case:
    """One call of the function under test: ``fn(*args, **kwargs)``; ``label`` names it in hints."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def copy(self) -> Case:
        """Fresh copies of array arguments, so a function that writes into its input can't spoil the reference."""
        cp = lambda v: v.copy() if isinstance(v, np.ndarray) else v
        return Case(tuple(cp(a) for a in self.args), {k: cp(v) for k, v in self.kwargs.items()}, self.label)


def compare_arrays(got, expected, what="result", rtol=1e-5, atol=1e-6, exact=False):
    """A hint string if ``got`` differs from ``expected`` (type, shape, dtype kind, values), else None."""
    if isinstance(expected, np.ndarray) or np.isscalar(expected):
        if not isinstance(got, (np.ndarray, np.generic, int, float, bool)):
            return f"{what} should be {'an array' if isinstance(expected, np.ndarray) else 'a number'}, got {type(got).__name__}"
        got_a, exp_a = np.asarray(got), np.asarray(expected)
        if got_a.shape != exp_a.shape:
            return f"{what} has shape {got_a.shape}, expected {exp_a.shape}"
        if exp_a.dtype == bool and got_a.dtype != bool:
            return f"{what} should be a boolean array, got dtype {got_a.dtype}"
        if exact or exp_a.dtype.kind in "biu":
            bad = got_a != exp_a
            if np.any(bad):
                i = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
                return f"{what} differs in {int(bad.sum())} of {bad.size} entries (first at index {tuple(int(j) for j in i)}: got {got_a[i]!r}, expected {exp_a[i]!r})"
            return None
        if not np.allclose(got_a, exp_a, rtol=rtol, atol=atol, equal_nan=True):
            err = np.abs(got_a.astype(np.float64) - exp_a.astype(np.float64))
            i = np.unravel_index(np.nanargmax(err), err.shape) if err.ndim else ()
            return f"{what} is off (largest error {float(np.nanmax(err)):.3g} at index {tuple(int(j) for j in i)}: got {got_a[i]!r}, expected {exp_a[i]!r})"
        return None
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{what} should be a tuple of {len(expected)} values, got {type(got).__name__}"
        for k, (g, e) in enumerate(zip(got, expected)):
            hint = compare_arrays(g, e, f"{what}[{k}]", rtol, atol, exact)
            if hint:
                return hint
        return None
    return None if got == expected else f"{what} is {got!r}, expected {expected!r}"


class Exercise:
    """A graded exercise: call it on the student's function to print the verdict line.

    Parameters
    ----------
    grade_id : str
        The answer cell's nbgrader ``grade_id``.
    reference : callable
        The correct implementation (usually labkit's own).
    cases : callable(rng) -> list of Case
        Deterministic given ``rng``; the notebook uses a fixed seed, the grader its own.
    fixed_cases : list of Case
        Hand-picked cases run first (edge cases whose hints teach something).
    compare : callable(got, expected, case) -> hint or None, optional
        Default: :func:`compare_arrays`.
    pass_line : str
        The exact line printed on success (stored in the notebook; nbval compares it).
    """

    def __init__(self, grade_id, reference, cases=None, fixed_cases=(), compare=None, pass_line=None, seed=0):
        self.grade_id = grade_id
        self.reference = reference
        self.make_cases = cases or (lambda rng: [])
        self.fixed_cases = list(fixed_cases)
        self.compare = compare or (lambda got, expected, case: compare_arrays(got, expected, "your result"))
        self.pass_line = pass_line or f"{grade_id}: all checks passed"
        self.seed = seed

    def cases(self, rng=None):
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        return self.fixed_cases + list(self.make_cases(rng))

    def evaluate(self, fn, cases):
        """First failing hint over ``cases`` (None if all pass). Student output is swallowed."""
        if not callable(fn):
            return f"expected a function, got {type(fn).__name__}"
        for case in cases:
            expected = self.reference(*case.copy().args, **case.copy().kwargs)
            sink = io.StringIO()
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    c = case.copy()
                    got = fn(*c.args, **c.kwargs)
            except NotImplementedError:
                return "not implemented yet: replace `raise NotImplementedError()` with your code"
            except Exception as exc:  # noqa: BLE001 - any student error becomes a hint
                return f"your function raised {type(exc).__name__}: {exc} (case: {case.label or 'see the exercise'})"
            try:
                hint = self.compare(got, expected, case)
            except Exception as exc:  # noqa: BLE001 - a malformed answer must still give a hint
                hint = f"could not compare your result ({type(exc).__name__}: {exc})"
            if hint:
                return f"{hint} (case: {case.label})" if case.label else hint
        return None

    def verdict(self, fn) -> str:
        """The line a check cell prints for ``fn``: the pass line or ``FAIL: <hint>`` (nothing printed)."""
        hint = self.evaluate(fn, self.cases())
        return self.pass_line if hint is None else FAIL + hint

    def passes(self, fn) -> bool:
        """True if ``fn`` passes every case (for tests; prints nothing)."""
        return self.verdict(fn) == self.pass_line

    def __call__(self, fn) -> None:
        """Print the verdict line (returns None, so a check cell shows exactly that one line)."""
        line = self.verdict(fn)
        self._record_for_grader(fn)
        print(line)

    def _record_for_grader(self, fn) -> None:
        path = os.environ.get("LABKIT_GRADE_RECORD")
        if not path:
            return
        seed = int(os.environ.get("LABKIT_GRADE_SEED", "0"))
        rng = np.random.default_rng([seed, sum(map(ord, self.grade_id))])
        outputs = []
        for case in self.make_cases(rng) or self.fixed_cases:
            sink = io.StringIO()
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    c = case.copy()
                    outputs.append(("ok", fn(*c.args, **c.kwargs)))
            except Exception as exc:  # noqa: BLE001
                outputs.append(("error", f"{type(exc).__name__}: {exc}"))
        with open(path, "ab") as f:
            pickle.dump({"grade_id": self.grade_id, "seed": seed, "outputs": outputs}, f)
