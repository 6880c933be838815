"""labkit.validation: wrong type → TypeError, wrong value → ValueError, the message names both."""

import numpy as np
import pytest

from labkit import kernels, quant, validation
from labkit.validation import (
    check_array,
    check_axis,
    check_bits,
    check_bool,
    check_choice,
    check_int,
    check_matrix,
    check_real,
    check_sparsity,
)


@pytest.mark.parametrize("good", [0, 5, np.int64(3), np.uint8(7)])
def test_check_int_accepts_ints_and_returns_python_int(good):
    out = check_int("n", good, lo=0)
    assert out == int(good) and type(out) is int


@pytest.mark.parametrize("bad", [True, np.bool_(False), 2.0, "2", None, np.float32(1)])
def test_check_int_wrong_type(bad):
    with pytest.raises(TypeError, match=r"^n must be an int, got "):
        check_int("n", bad)


def test_check_int_bounds_say_expected_and_given():
    with pytest.raises(ValueError, match=r"^n must be >= 1, got 0$"):
        check_int("n", 0, lo=1)
    with pytest.raises(ValueError, match=r"^n must be <= 3, got 4$"):
        check_int("n", 4, hi=3)
    with pytest.raises(ValueError, match=r"^n must be in \[1, 3\] \(a count\), got 9$"):
        check_int("n", 9, 1, 3, what=" (a count)")


def test_check_real():
    assert check_real("x", np.float32(0.5), 0, 1) == 0.5 and type(check_real("x", 1)) is float
    with pytest.raises(TypeError, match="x must be a real number, got str '1'"):
        check_real("x", "1")
    with pytest.raises(TypeError):
        check_real("x", True)
    with pytest.raises(ValueError, match=r"x must be a finite number in \(0, 1\), got nan"):
        check_real("x", float("nan"), 0, 1, lo_open=True, hi_open=True)
    with pytest.raises(ValueError, match=r"x must be in \(0, 1\], got 0.0"):
        check_real("x", 0.0, 0, 1, lo_open=True)
    with pytest.raises(ValueError, match=r"x must be > 0"):
        check_real("x", -1, 0, lo_open=True)


def test_check_bits_and_sparsity():
    assert check_bits(8) == 8 and check_bits(np.int32(16)) == 16
    with pytest.raises(ValueError, match=r"bits must be in \[1, 16\], got 17"):
        check_bits(17)
    with pytest.raises(TypeError, match="bits must be an int, got str '8'"):
        check_bits("8")
    assert check_sparsity(0) == 0.0 and check_sparsity(np.float64(0.9)) == 0.9
    for bad in (1.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            check_sparsity(bad)
    with pytest.raises(TypeError):
        check_sparsity("0.5")


def test_check_bool_and_choice():
    assert check_bool("relu", np.bool_(True)) is True
    with pytest.raises(TypeError, match="relu must be True or False, got int 1"):
        check_bool("relu", 1)
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"^mode must be 'a', 'b' or 'c', got 'd'$"):
        check_choice("mode", "d", ("a", "b", "c"))
    with pytest.raises(ValueError, match="mode must be"):
        check_choice("mode", ["unhashable"], {"a"})


def test_check_array():
    a = check_array([[1.0, 2.0]], "W", ndim=2, kind="f", finite=True, non_empty=True)
    assert isinstance(a, np.ndarray) and a.shape == (1, 2)
    x = np.zeros(3)
    assert check_array(x, "x") is x and check_array(x, "x", copy=True) is not x
    with pytest.raises(TypeError, match="W must be a floating-point array, got dtype int64"):
        check_array(np.zeros(2, np.int64), "W", kind="f")
    with pytest.raises(TypeError, match="W must be a numpy array, got list"):
        check_array([1.0], "W", ndarray_only=True)
    with pytest.raises(TypeError, match="must be an array"):
        check_array([[1, 2], [3]], "W")
    with pytest.raises(ValueError, match=r"W must be 2-D, got shape \(3,\)"):
        check_array(np.zeros(3), "W", ndim=2)
    with pytest.raises(ValueError, match="W must not be empty"):
        check_array(np.zeros((0, 2)), "W", non_empty=True)
    with pytest.raises(ValueError, match="W must be finite, got 2 NaN or inf values"):
        check_array(np.array([np.nan, 1.0, np.inf]), "W", finite=True)
    assert check_array(np.array([1, 2]), "q", finite=True).dtype.kind == "i"  # integers are always finite


def test_check_axis_and_matrix():
    assert check_axis("axis", -1, 3) == 2
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for a 2-D array, got 2"):
        check_axis("axis", 2, 2)
    with pytest.raises(TypeError):
        check_axis("axis", 0.0, 2)
    with pytest.raises(ValueError, match=r"X must be a 2-D array of shape \(n, 4\), got shape \(3, 5\)"):
        check_matrix(np.zeros((3, 5)), "X", n_cols=4, rows="n")
    with pytest.raises(TypeError):
        check_matrix(np.zeros((2, 2)).tolist())


def test_same_mistake_same_exception_across_modules():
    """bits="8" is a TypeError in quant and kernels alike; bits=0 a ValueError in both."""
    x = np.ones(4, np.float32)
    for bad, exc in (("8", TypeError), (0, ValueError)):
        with pytest.raises(exc, match="bits"):
            quant.quantize(x, 0.1, 0, bits=bad)
        with pytest.raises(exc, match="bits"):
            kernels.quantize_per_tensor(x, 0.1, 0, bits=bad)
        with pytest.raises(exc, match="bits"):
            quant.int_range(bad)


def test_messages_show_numpy_scalars_as_plain_numbers():
    with pytest.raises(TypeError, match=r"got float64 3\.5$"):
        validation.check_int("bits", np.float64(3.5))
    with pytest.raises(ValueError, match=r"got 40$"):
        validation.check_bits(np.int64(40))
    with pytest.raises(ValueError, match=r"got 'l3'$"):
        validation.check_choice("norm", np.str_("l3"), ("l1", "l2"))
    assert validation.show((np.float32(0.5), [np.int8(3)])) == "(0.5, [3])"
