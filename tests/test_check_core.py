"""labkit.check._core: every lab's reference answer passes the grader's cases for any seed, and a
hint heuristic never rejects an answer equal to the reference."""

import importlib

import numpy as np
import pytest

from labkit.check import FAIL, Case, CheckFailed, Exercise

LABS = [f"lab{i:02d}" for i in range(12)]


def _exercises():
    found = []
    for name in LABS:
        module = importlib.import_module(f"labkit.check.{name}")
        found += [(name, ex) for ex in vars(module).values() if isinstance(ex, Exercise)]
    return found


EXERCISES = _exercises()


def test_every_lab_has_exercises():
    labs = {name for name, _ in EXERCISES}
    assert labs == set(LABS), f"labs without a graded exercise: {sorted(set(LABS) - labs)}"


@pytest.mark.parametrize("name,ex", EXERCISES, ids=[f"{n}.{e.answer_id}" for n, e in EXERCISES])
def test_reference_passes_grader_cases_for_many_seeds(name, ex):
    failures = []
    for seed in range(40):
        hint = ex.evaluate(ex.reference, ex.grading_cases(seed))
        if hint is not None:
            failures.append((seed, hint))
    assert not failures, f"{name}.{ex.answer_id}: the reference fails for seeds {failures[:3]}"


def test_an_answer_equal_to_the_reference_passes_even_if_a_heuristic_fires():
    def always_hint(got, expected, case):
        return "this heuristic fires on everything"

    ex = Exercise("double", lambda x: 2 * x, fixed_cases=[], cases=lambda rng: [], compare=always_hint)
    from labkit.check._core import Case

    cases = [Case((np.arange(3.0),))]
    assert ex.evaluate(lambda x: 2 * x, cases) is None
    assert ex.evaluate(lambda x: 3 * x, cases) == "this heuristic fires on everything"
    # same values but a different dtype still goes to the lab's own comparison
    assert ex.evaluate(lambda x: (2 * x).astype(np.float32), cases) is not None


# --- a failing check raises --------------------------------------------------------------------------


def _double_exercise():
    return Exercise(
        "double",
        lambda x: 2 * x,
        fixed_cases=[Case((np.arange(3),), label="arange(3)")],
        pass_line="double: ok",
    )


def test_a_passing_check_prints_its_pass_line_and_raises_nothing(capsys):
    ex = _double_exercise()
    assert ex(lambda x: x + x) is None
    assert capsys.readouterr().out == "double: ok\n"


def test_a_failing_check_raises_an_assertion_error_whose_message_is_the_hint(capsys):
    ex = _double_exercise()
    wrong = lambda x: 3 * x  # noqa: E731
    with pytest.raises(AssertionError) as info:
        ex(wrong)
    err = info.value
    assert isinstance(err, CheckFailed)
    assert str(err) == err.hint == ex.evaluate(wrong, ex.cases())
    assert "differs" in err.hint and "arange(3)" in err.hint
    assert err.line == FAIL + err.hint == ex.verdict(wrong)
    assert err.answer_id == "double"
    assert capsys.readouterr().out == ""  # nothing printed: the error shows the hint


def test_a_failing_check_renders_as_its_fail_line_without_library_frames():
    ex = _double_exercise()

    def stub(x):
        raise NotImplementedError()

    with pytest.raises(CheckFailed) as info:
        ex(stub)
    shown = info.value._render_traceback_()
    assert isinstance(shown, list) and all(isinstance(s, str) for s in shown)
    assert shown[0] == "FAIL: not implemented yet: replace `raise NotImplementedError()` with your code"
    assert "double" in shown[1]
    assert not any("File " in s or "_core.py" in s or "Traceback" in s for s in shown)


def test_ipython_shows_a_failed_check_as_its_short_lines():
    """IPython's own traceback path (JupyterLab, nbclient, nbval, nbgrader all go through it)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["ex"] = _double_exercise()
    shown = []
    saved = shell._showtraceback
    shell._showtraceback = lambda etype, value, stb: shown.append((etype.__name__, str(value), stb))
    try:
        result = shell.run_cell("ex(lambda x: 3 * x)\nprint('after')")
    finally:
        shell._showtraceback = saved
    assert isinstance(result.error_in_exec, CheckFailed)
    ((ename, evalue, stb),) = shown
    assert ename == "CheckFailed" and evalue.startswith("your result differs")
    assert stb[0] == "FAIL: " + evalue and len(stb) == 2
