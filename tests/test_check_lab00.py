"""Lab 00's checks pass the reference and fail the stub and plausible wrong answers."""

import sys

import numpy as np
import pytest
from hint_battery import assert_every_check_uses_hints, assert_every_hint_reached

from labkit.check import lab00


def stub(*args):
    raise NotImplementedError()


def test_count_parameters():
    ex = lab00.count_parameters
    assert ex.passes(lambda s: sum(a * b + b for a, b in zip(s[:-1], s[1:])))
    assert "not implemented" in ex.verdict(stub)
    assert "weights only" in ex.verdict(lambda s: sum(a * b for a, b in zip(s[:-1], s[1:])))
    assert "output layer" in ex.verdict(lambda s: sum(a * b + b for a, b in zip(s[:-2], s[1:-1])) + s[-2] * s[-1])
    assert "int" in ex.verdict(lambda s: float(sum(a * b + b for a, b in zip(s[:-1], s[1:]))))
    assert "n_out biases" in ex.verdict(lambda s: sum(a * b + a for a, b in zip(s[:-1], s[1:])))  # biases per input
    assert "n_out biases" in ex.verdict(lambda s: sum((a + 1) * b for a, b in zip(s[:-2], s[1:-1])))  # no last layer
    assert "int" in ex.verdict(lambda s: str(sum(a * b + b for a, b in zip(s[:-1], s[1:]))))


def test_accuracy():
    ex = lab00.accuracy
    assert ex.passes(lambda z, y: float(np.mean(z.argmax(1) == y)))
    assert "not implemented" in ex.verdict(stub)
    assert "percentage" in ex.verdict(lambda z, y: 100 * float(np.mean(z.argmax(1) == y)))
    assert "number of correct" in ex.verdict(lambda z, y: int((z.argmax(1) == y).sum()))
    assert "mean(argmax(logits, axis=1) == y)" in ex.verdict(lambda z, y: float(np.mean(z.argmin(1) == y)))
    assert "mean(argmax(logits, axis=1) == y)" in ex.verdict(lambda z, y: float(np.mean(z.max(1) == y)))  # max
    assert "one number" in ex.verdict(lambda z, y: (z.argmax(1) == y).astype(float))
    assert "return a float, got str" in ex.verdict(lambda z, y: str(float(np.mean(z.argmax(1) == y))))


def test_check_prints_one_line_and_hides_student_output(capsys):
    def noisy(s):
        print("debug output")
        import warnings

        warnings.warn("a warning", stacklevel=2)
        return sum(a * b + b for a, b in zip(s[:-1], s[1:]))

    assert lab00.count_parameters(noisy) is None
    out = capsys.readouterr()
    assert out.out == lab00.count_parameters.pass_line + "\n" and out.err == ""


def test_keyboard_interrupt_goes_through():
    def interrupted(s):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lab00.count_parameters(interrupted)


def test_every_hint_is_reached_by_the_battery():
    assert_every_check_uses_hints(lab00)
    assert_every_hint_reached(sys.modules[__name__], lab00)
