"""The exercise API behind every check cell: :class:`Exercise`, :class:`Case`, :class:`CheckFailed`.

An :class:`Exercise` knows a reference implementation, how to make test cases, and how to compare
a student's answer with the reference. Calling it on the student's function prints exactly one line:
the exercise's fixed pass line, or ``FAIL: <a specific hint>``. The student's own prints, warnings
and progress bars are swallowed (:func:`labkit.check.output.quiet`) so that the printed line is all
nbval (and the grader) ever sees. Ordinary exceptions become hints; ``KeyboardInterrupt`` (and so a
grader's timeout) goes through.

Grading hook: when the environment variable ``LABKIT_GRADE_RECORD`` names a file, the exercise also
runs the student's function on extra cases drawn with the seed in ``LABKIT_GRADE_SEED`` (chosen by
the grader at grading time, never stored in the notebook) and appends the outputs to that file, so
the grader can compare them with the reference in its own process (see ``labkit.grading``). The
record is plain JSON (:mod:`labkit.check.records`), never pickle, so reading it cannot run the
student's code. Whatever happens inside the kernel (a redefined ``check``, a patched
``labkit.check``, a printed pass line), the grader awards the points only if these outputs match
the reference on its own cases.

A failing check raises :class:`CheckFailed`, an ``AssertionError`` whose message is the hint, so
"Run All" stops at the first wrong answer with its hint in view, in JupyterLab, under nbval and
under nbgrader's autograder (which counts a grade cell as failed when it raises) alike. IPython
shows it as the single line ``FAIL: <hint>`` (:meth:`CheckFailed._render_traceback_`) instead of a
traceback through labkit's internals; the error output still names ``CheckFailed`` as its ``ename``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np

from .answers import compare_arrays
from .output import quiet
from .records import decode, encode

__all__ = ["Case", "CheckFailed", "Exercise", "compare_arrays", "FAIL"]

FAIL = "FAIL: "


class CheckFailed(AssertionError):
    """A check cell's verdict on a wrong answer: ``str(exc)`` is the hint, ``exc.line`` the ``FAIL:`` line.

    ``exc.answer_id`` names the exercise (its answer cell's id). IPython (JupyterLab, nbclient, nbval,
    nbgrader) displays an exception through its ``_render_traceback_()`` when it has one: here the
    ``FAIL:`` line and where to look, without the frames of labkit's checking code, which would only
    hide the hint.
    """

    def __init__(self, hint: str, answer_id: str = ""):
        super().__init__(hint)
        self.hint = hint
        self.answer_id = answer_id
        self.line = FAIL + hint

    grade_id = property(
        lambda self: _deprecated("CheckFailed.grade_id", "CheckFailed.answer_id", self.answer_id),
        doc="Deprecated name of :attr:`answer_id`.",
    )

    def _render_traceback_(self) -> list:
        where = f"the check of `{self.answer_id}`" if self.answer_id else "this check"
        return [self.line, f"({where} stopped here: fix your answer above, then run the cells again)"]


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


def _deprecated(old: str, new: str, value):
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)
    return value


def _matches_reference(got, expected) -> bool:
    """True if ``got`` is an array of the reference's shape and dtype and equal to it (floats to 1e-6)."""
    if not (isinstance(got, np.ndarray) and isinstance(expected, np.ndarray)):
        return False
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return False
    if np.issubdtype(expected.dtype, np.floating):
        return bool(np.allclose(got, expected, rtol=1e-6, atol=1e-7))
    return bool(np.array_equal(got, expected))


class Exercise:
    """A graded exercise: call it on the student's function to print the verdict line.

    Parameters
    ----------
    answer_id : str
        The nbgrader ``grade_id`` of the answer cell it checks (its check cell's is ``"check_" + answer_id``).
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

    def __init__(self, answer_id, reference, cases=None, fixed_cases=(), compare=None, pass_line=None, seed=0):
        self.answer_id = answer_id
        self.reference = reference
        self.make_cases = cases or (lambda rng: [])
        self.fixed_cases = list(fixed_cases)
        self.compare = compare or (lambda got, expected, case: compare_arrays(got, expected, "your result"))
        self.pass_line = pass_line or f"{answer_id}: all checks passed"
        self.seed = seed

    grade_id = property(
        lambda self: _deprecated("Exercise.grade_id", "Exercise.answer_id", self.answer_id),
        doc="Deprecated name of :attr:`answer_id`.",
    )

    def cases(self, rng=None):
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        return self.fixed_cases + list(self.make_cases(rng))

    def evaluate(self, fn, cases):
        """First failing hint over ``cases`` (None if all pass). Student output is swallowed."""
        if not callable(fn):
            return f"expected a function, got {type(fn).__name__}"
        for case in cases:
            expected = self.reference(*case.copy().args, **case.copy().kwargs)
            try:
                with quiet():
                    c = case.copy()
                    got = fn(*c.args, **c.kwargs)
            except NotImplementedError:
                return "not implemented yet: replace `raise NotImplementedError()` with your code"
            except Exception as exc:  # noqa: BLE001 - any student error becomes a hint
                return f"your function raised {type(exc).__name__}: {exc} (case: {case.label or 'see the exercise'})"
            hint = self._compare(got, expected, case)
            if hint:
                return f"{hint} (case: {case.label})" if case.label else hint
        return None

    def _compare(self, got, expected, case):
        if _matches_reference(got, expected):
            # a hint heuristic (say "you used the tutorial's step") can coincide with the right answer
            # on a degenerate case (a 1-bit grid, an all-positive matrix): an answer equal to the
            # reference always passes, so only wrong answers reach the hints
            return None
        try:
            return self.compare(got, expected, case)
        except Exception as exc:  # noqa: BLE001 - a malformed answer must still give a hint
            return f"could not compare your result ({type(exc).__name__}: {exc})"

    def verdict(self, fn) -> str:
        """The line a check cell prints for ``fn``: the pass line or ``FAIL: <hint>`` (nothing printed)."""
        hint = self.evaluate(fn, self.cases())
        return self.pass_line if hint is None else FAIL + hint

    def passes(self, fn) -> bool:
        """True if ``fn`` passes every case (for tests; prints nothing)."""
        return self.verdict(fn) == self.pass_line

    def __call__(self, fn) -> None:
        """Print the pass line, or raise :class:`CheckFailed` with the hint on a wrong answer.

        Returns None on success, so a check cell shows exactly the pass line (nbval and the grader
        compare it). On failure nothing is printed and nothing is recorded for the grader (a failed
        check scores 0 anyway); the raised error stops "Run All" at this cell.
        """
        hint = self.evaluate(fn, self.cases())
        if hint is not None:
            raise CheckFailed(hint, self.answer_id)
        self._record_for_grader(fn)
        print(self.pass_line)

    # --- grading hook -------------------------------------------------------------------------------

    def grading_cases(self, seed: int) -> list:
        """The cases the grader checks: the fixed cases, then cases drawn with the grader's ``seed``.

        The kernel (through :meth:`_record_for_grader`) and the grader (through :meth:`verify`) both
        call this, so both sides see the same inputs without the notebook ever holding them.
        """
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(self.answer_id.encode())])
        return self.fixed_cases + list(self.make_cases(rng))

    def _record_for_grader(self, fn) -> None:
        """Append ``fn``'s outputs on :meth:`grading_cases` to ``$LABKIT_GRADE_RECORD`` (one JSON line).

        Outputs are written with :func:`encode` (plain JSON, never pickle): a record can hold
        numbers, strings, arrays and containers, and nothing the grader would execute.
        """
        path = os.environ.get("LABKIT_GRADE_RECORD")
        if not path:
            return
        try:
            seed = int(os.environ.get("LABKIT_GRADE_SEED", "0"))
        except ValueError:
            seed = 0
        outputs = []
        watch = _ReferenceWatch(self._reference_codes())
        for case in self.grading_cases(seed):
            try:
                with quiet():
                    c = case.copy()
                    if not callable(fn):
                        raise TypeError(f"expected a function, got {type(fn).__name__}")
                    with watch:
                        got = fn(*c.args, **c.kwargs)
                outputs.append({"ok": encode(got)})
            except Exception as exc:  # noqa: BLE001 - recorded as the student's error on this case
                outputs.append({"error": f"{type(exc).__name__}: {exc}"[:500]})
                break  # the grader stops at the first failing case too
        record = {"grade_id": self.answer_id, "seed": seed, "outputs": outputs, "reference_calls": watch.calls}
        line = json.dumps(record) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())  # one O_APPEND write: records never interleave
        finally:
            os.close(fd)

    def _reference_codes(self) -> frozenset:
        """Code objects of the reference implementation (through partials and ``functools.wraps``)."""
        import functools

        codes, fn = set(), self.reference
        for _ in range(10):
            while isinstance(fn, functools.partial):
                fn = fn.func
            code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__func__", None), "__code__", None)
            if code is not None:
                codes.add(code)
            fn = getattr(fn, "__wrapped__", None)
            if fn is None:
                break
        return frozenset(codes | self._implementation_codes(codes))

    def _implementation_codes(self, codes) -> set:
        """The public labkit function a thin reference wrapper in ``labkit.check`` delegates to.

        When the reference (say ``labkit.check.lab03._quantize_ref``) calls exactly one public function
        outside ``labkit.check`` (``labkit.quant.quantize``) on its first case, calling that function
        is calling the reference. Not counted: a reference that is itself a public function (its
        helpers, such as input validation, are fair game), a wrapper that composes several functions,
        and a function that is another exercise of the same lab (using an earlier exercise's kit
        version is allowed).
        """
        cases = self.fixed_cases or self.cases()
        mods = {c.co_filename for c in codes}
        if not cases or not codes or not all(os.sep + "check" + os.sep in f for f in mods):
            return set()
        module = sys.modules.get(getattr(self.reference, "__module__", "") or "")
        others = {o.answer_id for o in (vars(module).values() if module else ()) if isinstance(o, Exercise)}
        others.discard(self.answer_id)
        found: set = set()

        def profile(frame, event, arg):
            if event == "call" and frame.f_back is not None and frame.f_back.f_code in codes:
                mod = frame.f_globals.get("__name__", "")
                if (
                    mod.startswith("labkit.")
                    and not mod.startswith("labkit.check")
                    and not (frame.f_code.co_name.startswith("_"))
                ):
                    found.add(frame.f_code)

        saved = _getprofile()
        try:
            c = cases[0].copy()
            with quiet():
                _setprofile(profile)
                self.reference(*c.args, **c.kwargs)
        except Exception:  # noqa: BLE001, S110 - no extra codes then: the reference itself is still watched
            pass
        finally:
            _setprofile(saved)
        found = {c for c in found if c.co_name not in others}
        return found if len(found) == 1 else set()

    def verify(self, outputs, seed: int):
        """Grader side: first hint on recorded ``outputs`` against the reference (None if all match).

        ``outputs`` is the list stored by :meth:`_record_for_grader` (already JSON-decoded, arrays
        still encoded). The reference runs here, in the grader's process, on cases regenerated from
        ``seed``; nothing computed in the student's kernel is trusted except the outputs' values.
        """
        cases = self.grading_cases(seed)
        if not isinstance(outputs, list):
            return "no outputs were recorded: the check did not run your function normally"
        for k, (case, out) in enumerate(zip(cases, outputs)):
            where = f"grader case {k + 1} of {len(cases)}" + (f", {case.label}" if case.label else "")
            if not isinstance(out, dict) or not ("ok" in out or "error" in out):
                return f"malformed record ({where})"
            if "error" in out:
                msg = str(out["error"])
                if msg.startswith("NotImplementedError"):
                    return "not implemented yet: replace `raise NotImplementedError()` with your code"
                return f"your function raised {msg} ({where})"
            try:
                got = decode(out["ok"])
            except (ValueError, TypeError, KeyError) as exc:
                return f"your result could not be read back ({exc}; {where})"
            c = case.copy()
            expected = self.reference(*c.args, **c.kwargs)
            hint = self._compare(got, expected, case)
            if hint:
                return f"{hint} ({where})"
        if len(outputs) != len(cases):
            return (
                f"the record holds {len(outputs)} outputs, expected {len(cases)}: "
                "the check did not run your function normally"
            )
        return None


class _ReferenceWatch:
    """Counts calls of the reference's code while the student's function runs on the grader's cases.

    A profile function (``sys.setprofile``) sees every Python call, however the function was reached:
    a direct import, an alias, ``getattr``/``importlib`` with a built name, another labkit module, or
    ``Exercise.reference`` itself, because it compares code objects, not names.
    """

    def __init__(self, codes):
        self.codes, self.calls, self._saved = codes, 0, None

    def _profile(self, frame, event, arg):
        if event == "call" and frame.f_code in self.codes:
            self.calls += 1

    def __enter__(self):
        self._saved = _getprofile()
        if self.codes:
            _setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        _setprofile(self._saved)
        return False


_setprofile, _getprofile = sys.setprofile, sys.getprofile  # bound at import, before any student code runs
