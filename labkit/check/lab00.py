"""Checks for lab 00 (welcome and baseline)."""

import numpy as np

from .answers import number_answer, show
from .exercise import Case, Exercise
from .hints import Hints


def _count_parameters(sizes):
    return int(sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])))


def _not_an_int(a):
    if isinstance(a.got, (bool, np.bool_)) or not isinstance(a.got, (int, np.integer)):
        return f"return an int, got {type(a.got).__name__} ({show(a.got)})"
    return None


def _weights_only(a):
    sizes = a.args[0]
    if a.got == sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])):
        return f"count_parameters({sizes}) = {a.got} counts the weights only; add one bias per output unit"
    return None


def _no_output_biases(a):
    sizes = a.args[0]
    return (
        f"count_parameters({sizes}) = {a.got} misses the output layer's biases"
        if a.got == a.expected - sizes[-1]
        else None
    )


def _wrong_count(a):
    if a.got != a.expected:
        return (
            f"count_parameters({a.args[0]}) = {a.got}, expected {a.expected}: each layer has n_in·n_out weights + "
            "n_out biases"
        )
    return None


def _count_cases(rng):
    return [Case(([int(v) for v in rng.integers(1, 500, rng.integers(2, 6))],), label="random sizes") for _ in range(5)]


count_parameters = Exercise(
    "count_parameters",
    _count_parameters,
    fixed_cases=[Case(([784, 300, 100, 10],), label="LeNet-300-100"), Case(([3, 2],), label="one layer")],
    cases=_count_cases,
    compare=Hints(_not_an_int, _weights_only, _no_output_biases, _wrong_count),
    pass_line="count_parameters: correct on 7 architectures (LeNet-300-100 has 266,610 parameters)",
)


def _accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))


def _not_a_number(a):
    return number_answer(a.got)[1]


def _percentage(a):
    got = number_answer(a.got)[0]
    if abs(got - 100 * a.expected) < 1e-9 and a.expected not in (0.0, 0.01):
        return f"got {got}: return a fraction in [0, 1], not a percentage"
    return None


def _count_of_correct(a):
    got, y = number_answer(a.got)[0], a.args[1]
    if abs(got - a.expected * len(y)) < 1e-9 and len(y) > 1 and a.expected > 0:
        return f"got {got}, the number of correct predictions: divide by the number of samples ({len(y)})"
    return None


def _wrong_accuracy(a):
    got, y = number_answer(a.got)[0], a.args[1]
    if abs(got - a.expected) > 1e-9:
        return f"accuracy is {got}, expected {a.expected} for {len(y)} samples: mean(argmax(logits, axis=1) == y)"
    return None


def _accuracy_cases(rng):
    cases = []
    for n, k in [(7, 3), (50, 10), (1, 4)]:
        cases.append(
            Case(
                (rng.standard_normal((n, k)).astype(np.float32), rng.integers(0, k, n)),
                label=f"{n} samples, {k} classes",
            )
        )
    return cases


accuracy = Exercise(
    "accuracy",
    _accuracy,
    fixed_cases=[
        Case(
            (np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]], np.float32), np.array([0, 1, 1])),
            label="3 samples, 2 right",
        )
    ],
    cases=_accuracy_cases,
    compare=Hints(_not_a_number, _percentage, _count_of_correct, _wrong_accuracy),
    pass_line="accuracy: correct on 4 batches",
)
