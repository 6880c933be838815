"""Checks for lab 00 (welcome and baseline)."""

import numpy as np

from .exercise import Case, Exercise, number_answer


def _count_parameters(sizes):
    return int(sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])))


def _compare_count(got, expected, case):
    sizes = case.args[0]
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
        return f"return an int, got {type(got).__name__} ({got!r})"
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if got == weights:
        return f"count_parameters({sizes}) = {got} counts the weights only; add one bias per output unit"
    if got == expected - sizes[-1]:
        return f"count_parameters({sizes}) = {got} misses the output layer's biases"
    if got != expected:
        return (
            f"count_parameters({sizes}) = {got}, expected {expected}: each layer has n_in·n_out weights + n_out biases"
        )
    return None


count_parameters = Exercise(
    "count_parameters",
    _count_parameters,
    fixed_cases=[Case(([784, 300, 100, 10],), label="LeNet-300-100"), Case(([3, 2],), label="one layer")],
    cases=lambda rng: [
        Case(([int(v) for v in rng.integers(1, 500, rng.integers(2, 6))],), label="random sizes") for _ in range(5)
    ],  # fmt: skip
    compare=_compare_count,
    pass_line="count_parameters: correct on 7 architectures (LeNet-300-100 has 266,610 parameters)",
)


def _accuracy(logits, y):
    return float(np.mean(np.argmax(logits, axis=1) == y))


def _compare_accuracy(got, expected, case):
    logits, y = case.args
    got, problem = number_answer(got)
    if problem:
        return problem
    if abs(got - 100 * expected) < 1e-9 and expected not in (0.0, 0.01):
        return f"got {got}: return a fraction in [0, 1], not a percentage"
    if abs(got - expected * len(y)) < 1e-9 and len(y) > 1 and expected > 0:
        return f"got {got}, the number of correct predictions: divide by the number of samples ({len(y)})"
    if abs(got - expected) > 1e-9:
        return f"accuracy is {got}, expected {expected} for {len(y)} samples: mean(argmax(logits, axis=1) == y)"
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
    compare=_compare_accuracy,
    pass_line="accuracy: correct on 4 batches",
)
