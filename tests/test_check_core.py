"""labkit.check._core: every lab's reference answer passes the grader's cases for any seed, and a
hint heuristic never rejects an answer equal to the reference."""

import importlib

import numpy as np
import pytest

from labkit.check import Exercise

LABS = [f"lab{i:02d}" for i in range(11)]


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


@pytest.mark.parametrize("name,ex", EXERCISES, ids=[f"{n}.{e.grade_id}" for n, e in EXERCISES])
def test_reference_passes_grader_cases_for_many_seeds(name, ex):
    failures = []
    for seed in range(40):
        hint = ex.evaluate(ex.reference, ex.grading_cases(seed))
        if hint is not None:
            failures.append((seed, hint))
    assert not failures, f"{name}.{ex.grade_id}: the reference fails for seeds {failures[:3]}"


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
