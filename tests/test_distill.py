"""labkit.distill: softmax with temperature, the KD loss against hand-computed values and numerical
gradients (float64), the high-temperature limit, distill() reusing fit, and bad input."""

import math

import numpy as np
import pytest
from conftest import require_torch

from labkit import distill as D
from labkit.models import mlp
from labkit.train import cross_entropy, fit


def numerical_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


# --- softmax ------------------------------------------------------------------------------------


def test_softmax_matches_definition(rng):
    z = rng.standard_normal((5, 7))
    for T in (0.5, 1.0, 3.0):
        e = np.exp(z / T)
        np.testing.assert_allclose(D.softmax(z, T), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(D.softmax(z[0], 2.0), D.softmax(z[:1], 2.0)[0])  # 1-D input works too


def test_softmax_hand_values():
    # softmax([ln 3, 0]) = [3/4, 1/4]; at T = 2 the logits [2 ln 3, 0] give the same.
    np.testing.assert_allclose(D.softmax(np.array([math.log(3), 0.0])), [0.75, 0.25])
    np.testing.assert_allclose(D.softmax(np.array([2 * math.log(3), 0.0]), T=2.0), [0.75, 0.25])


def test_softmax_stable_for_extremes():
    z = np.array([[1e4, 0.0, -1e4], [1000.0, 1000.0, 999.0]])
    for T in (1e-300, 1e-3, 1.0, 1e6, 1e300):
        p = D.softmax(z, T)
        assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(D.softmax(z, 1e-6)[0], [1.0, 0.0, 0.0])  # T -> 0: one-hot of the argmax
    np.testing.assert_allclose(D.softmax(z, 1e-9)[1], [0.5, 0.5, 0.0])  # ties share the mass
    np.testing.assert_allclose(D.softmax(z, 1e12), np.full((2, 3), 1 / 3), rtol=1e-6)  # T -> inf: uniform


def test_softmax_shift_invariant_and_dtype(rng):
    z = rng.standard_normal((3, 4)).astype(np.float32)
    p = D.softmax(z, 2.0)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p, D.softmax(z + 100.0, 2.0), rtol=1e-5)
    assert D.softmax(np.array([1, 2, 3]), 1.0).dtype == np.float64


@pytest.mark.parametrize("T", [0, -1.0, float("nan"), float("inf")])
def test_softmax_rejects_bad_temperature(T):
    with pytest.raises(ValueError, match="temperature"):
        D.softmax(np.zeros((2, 3)), T)


def test_softmax_rejects_bad_logits():
    with pytest.raises(ValueError, match="NaN or inf"):
        D.softmax(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="at least one class"):
        D.softmax(np.zeros((2, 0)))
    with pytest.raises(TypeError):
        D.softmax(np.array(["a", "b"]))


# --- kd_loss: values ----------------------------------------------------------------------------


def test_kd_loss_hand_computed_one_row():
    # T = 2: teacher logits [2 ln 3, 0] -> soft targets [3/4, 1/4]; student [0, 0] -> [1/2, 1/2].
    s = np.array([[0.0, 0.0]])
    t = np.array([[2 * math.log(3), 0.0]])
    loss, grad = D.kd_loss(s, t, np.array([0]), T=2.0, alpha=0.5)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert loss == pytest.approx(0.5 * 4 * kl + 0.5 * math.log(2), rel=1e-12)
    # soft: alpha T (p_s - p_t) = 0.5 * 2 * [-1/4, 1/4]; hard: (1 - alpha)(p_s - onehot) = 0.5 * [-1/2, 1/2]
    np.testing.assert_allclose(grad, [[-0.5, 0.5]], rtol=1e-12)


def test_kd_loss_is_a_batch_average():
    s = np.array([[0.0, 0.0], [1.0, -1.0]])
    t = np.array([[2 * math.log(3), 0.0], [0.0, 0.0]])
    y = np.array([0, 1])
    loss, grad = D.kd_loss(s, t, y, T=2.0, alpha=0.5)
    rows = [D.kd_loss(s[i : i + 1], t[i : i + 1], y[i : i + 1], T=2.0, alpha=0.5) for i in range(2)]
    assert loss == pytest.approx((rows[0][0] + rows[1][0]) / 2, rel=1e-12)
    np.testing.assert_allclose(grad, np.vstack([rows[0][1], rows[1][1]]) / 2, rtol=1e-12)
    # second row by hand: p_s(T=2) = softmax([1/2, -1/2]), teacher uniform, label 1
    ps = np.exp([0.5, -0.5]) / np.exp([0.5, -0.5]).sum()
    kl = float(np.sum(0.5 * np.log(0.5 / ps)))
    ce = -math.log(math.exp(-1) / (math.exp(1) + math.exp(-1)))
    assert rows[1][0] == pytest.approx(0.5 * 4 * kl + 0.5 * ce, rel=1e-12)


def test_kd_loss_limits(rng):
    s, t = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    y = rng.integers(0, 5, 6)
    # alpha = 0 is plain cross-entropy, whatever the teacher says
    loss, grad = D.kd_loss(s, t, y, T=3.0, alpha=0.0)
    ce, dce = cross_entropy(s, y)
    assert loss == pytest.approx(ce, rel=1e-12)
    np.testing.assert_allclose(grad, dce, rtol=1e-12)
    # a student that already equals the teacher has nothing to learn from soft targets
    loss, grad = D.kd_loss(t, t, y, T=3.0, alpha=1.0)
    assert abs(loss) < 1e-12 and np.abs(grad).max() < 1e-12
    # the KL term is never negative
    assert D.kd_loss(s, t, y, T=3.0, alpha=1.0)[0] > 0


def test_kd_loss_high_temperature_limit(rng):
    """Hinton et al. eq. (3)-(4): for large T, dL/ds -> (1/(nk)) ((s - t) - mean(s - t)) with the T^2 factor."""
    n, k = 4, 6
    s, t = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    y = rng.integers(0, k, n)
    d = s - t
    limit = (d - d.mean(axis=1, keepdims=True)) / (n * k)
    for T in (1e3, 1e4):
        _, grad = D.kd_loss(s, t, y, T=T, alpha=1.0)
        np.testing.assert_allclose(grad, limit, atol=1.0 / T)  # the error shrinks like 1/T


def test_kd_loss_matches_torch(rng):
    torch = require_torch()
    s, t = rng.standard_normal((5, 4)) * 3, rng.standard_normal((5, 4)) * 3
    y = rng.integers(0, 4, 5)
    T, alpha = 4.0, 0.7
    st = torch.tensor(s, requires_grad=True)
    F = torch.nn.functional
    soft = F.kl_div(
        F.log_softmax(st / T, 1), F.log_softmax(torch.tensor(t) / T, 1), reduction="batchmean", log_target=True
    )
    total = alpha * T * T * soft + (1 - alpha) * F.cross_entropy(st, torch.tensor(y))
    total.backward()
    loss, grad = D.kd_loss(s, t, y, T=T, alpha=alpha)
    assert loss == pytest.approx(total.item(), rel=1e-10)
    np.testing.assert_allclose(grad, st.grad.numpy(), rtol=1e-9, atol=1e-12)


# --- kd_loss: gradient --------------------------------------------------------------------------


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (20.0, 0.3), (0.5, 1.0), (4.0, 0.0)])
def test_kd_loss_gradient_matches_numerical(rng, T, alpha):
    s = rng.standard_normal((5, 4)) * 2
    t = rng.standard_normal((5, 4)) * 2
    y = rng.integers(0, 4, 5)
    _, grad = D.kd_loss(s, t, y, T=T, alpha=alpha)
    num = numerical_grad(lambda: D.kd_loss(s, t, y, T=T, alpha=alpha)[0], s)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


def test_kd_loss_stable_for_large_logits():
    s = np.array([[1e4, 0.0, -1e4]])
    t = np.array([[-1e4, 0.0, 1e4]])
    loss, grad = D.kd_loss(s, t, np.array([2]), T=1.0, alpha=0.5)
    assert math.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(0.5 * 2e4 + 0.5 * 2e4, rel=1e-9)  # KL = 2e4, CE = 2e4


def test_kd_loss_keeps_float32(rng):
    s = rng.standard_normal((3, 4)).astype(np.float32)
    _, grad = D.kd_loss(s, s + 1, np.array([0, 1, 2]))
    assert grad.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"T": 0.0}, "temperature"),
        ({"T": -2.0}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"t": np.zeros((3, 5))}, "same shape"),
        ({"y": np.array([0, 1, 4])}, r"\[0, 4\)"),
        ({"y": np.array([0, -1, 2])}, r"\[0, 4\)"),
        ({"y": np.array([0, 1])}, r"shape \(3,\)"),
        ({"s": np.zeros(4)}, r"\(n, k\)"),
        ({"s": np.array([[0.0, np.inf, 0, 0]] * 3)}, "NaN or inf"),
    ],
)
def test_kd_loss_bad_input(kwargs, match):
    args = {"s": np.zeros((3, 4)), "t": np.zeros((3, 4)), "y": np.array([0, 1, 2]), "T": 4.0, "alpha": 0.9}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        D.kd_loss(args["s"], args["t"], args["y"], T=args["T"], alpha=args["alpha"])


def test_kd_loss_bad_types():
    with pytest.raises(TypeError, match="integer"):
        D.kd_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="number"):
        D.kd_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 1]), T="4")


# --- distill ------------------------------------------------------------------------------------


class CountingTeacher:
    """Wraps a model and counts how many images it is asked about."""

    def __init__(self, model):
        self.model, self.rows = model, 0

    def predict_logits(self, X, batch_size=1000):
        self.rows += len(X)
        return self.model.predict_logits(X, batch_size)


@pytest.fixture(scope="module")
def small_task():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)).astype(np.float32)
    y = (X[:, :3].argmax(axis=1)).astype(np.int64)
    teacher = mlp([12, 32, 3], seed=1)
    fit(teacher, (X, y), epochs=20, lr=3e-3, batch_size=32, progress=False)
    return X, y, teacher


def test_distill_computes_teacher_logits_once(small_task):
    X, y, teacher = small_task
    counting = CountingTeacher(teacher)
    D.distill(mlp([12, 8, 3], seed=2), counting, (X, y), epochs=3, batch_size=32, progress=False)
    assert counting.rows == len(X)  # once per training image, not once per epoch


def test_distill_alpha0_is_fit_with_cross_entropy(small_task):
    """alpha = 0 reduces to cross-entropy: same seed, same batches, same weights (float64 models)."""
    X, y, teacher = small_task
    a = mlp([12, 8, 3], seed=3).astype(np.float64)
    b = a.copy()
    fit(a, (X.astype(np.float64), y), epochs=2, batch_size=32, seed=5, progress=False)
    D.distill(b, teacher, (X.astype(np.float64), y), T=4.0, alpha=0.0, epochs=2, batch_size=32, seed=5, progress=False)
    for (k, pa), pb in zip(a.parameters().items(), b.parameters().values()):
        np.testing.assert_allclose(pa, pb, rtol=1e-12, atol=1e-14, err_msg=k)


def test_distill_uses_batch_index_lookup(small_task):
    """The loss hook sees the teacher's logits of exactly the batch's rows: a student distilled with
    alpha = 1 from precomputed logits behaves as from the model; permuted logits give other weights."""
    X, y, teacher = small_task
    logits = D.teacher_logits(teacher, X)
    a, b, c = (mlp([12, 8, 3], seed=4) for _ in range(3))
    D.distill(a, teacher, (X, y), alpha=1.0, epochs=2, progress=False)
    D.distill(b, logits, (X, y), alpha=1.0, epochs=2, progress=False)
    D.distill(c, logits[::-1].copy(), (X, y), alpha=1.0, epochs=2, progress=False)
    np.testing.assert_array_equal(a["fc1"].W, b["fc1"].W)
    assert not np.allclose(a["fc1"].W, c["fc1"].W)


def test_distill_student_learns_from_soft_targets_alone(small_task):
    """With alpha = 1 and no labels at all, the student still learns the teacher's function."""
    X, y, teacher = small_task
    student = mlp([12, 16, 3], seed=6)
    y_unknown = np.full_like(y, -1)
    D.distill(
        student,
        teacher,
        (X, y_unknown),
        T=2.0,
        alpha=1.0,
        epochs=30,
        batch_size=32,
        lr=3e-3,
        labelled=np.zeros(len(X), bool),
        progress=False,
    )
    agree = (student.predict(X) == teacher.predict(X)).mean()
    assert agree > 0.9


def test_distill_labelled_mask(small_task):
    """Unlabelled rows get only the soft term: their labels are never read."""
    X, y, teacher = small_task
    mask = np.arange(len(X)) % 3 == 0
    y2 = np.where(mask, y, (y + 1) % 3)  # corrupt the labels of the unlabelled rows
    a, b = mlp([12, 8, 3], seed=7), mlp([12, 8, 3], seed=7)
    D.distill(a, teacher, (X, y), alpha=0.5, epochs=2, labelled=mask, progress=False)
    D.distill(b, teacher, (X, y2), alpha=0.5, epochs=2, labelled=mask, progress=False)
    np.testing.assert_array_equal(a["fc1"].W, b["fc1"].W)
    # and the masked loss is the batch average of full rows and soft-only rows
    rng = np.random.default_rng(0)
    s, t, yy = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), np.array([0, 1, 2, 0])
    m = np.array([True, False, True, False])
    loss, grad = D._kd_terms(s, t, yy, 4.0, 0.6, m)
    full = [D.kd_loss(s[i : i + 1], t[i : i + 1], yy[i : i + 1], 4.0, 0.6) for i in range(4)]
    soft = [D.kd_loss(s[i : i + 1], t[i : i + 1], yy[i : i + 1], 4.0, 1.0) for i in range(4)]
    parts = [full[i] if m[i] else (0.6 * soft[i][0], 0.6 * soft[i][1]) for i in range(4)]
    assert loss == pytest.approx(sum(p[0] for p in parts) / 4, rel=1e-12)
    np.testing.assert_allclose(grad, np.vstack([p[1] for p in parts]) / 4, rtol=1e-12)


def test_distill_bad_input(small_task):
    X, y, teacher = small_task
    st = mlp([12, 8, 3], seed=0)
    with pytest.raises(ValueError, match="temperature"):
        D.distill(st, teacher, (X, y), T=0, progress=False)
    with pytest.raises(ValueError, match="alpha"):
        D.distill(st, teacher, (X, y), alpha=2.0, progress=False)
    with pytest.raises(ValueError, match="one row per training image"):
        D.distill(st, np.zeros((5, 3)), (X, y), progress=False)
    with pytest.raises(ValueError, match="student has 4 outputs"):
        D.distill(mlp([12, 8, 4]), teacher, (X, y), progress=False)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        D.distill(st, teacher, (X, np.where(y == 0, 7, y)), progress=False)
    with pytest.raises(ValueError, match="labelled must be a boolean array"):
        D.distill(st, teacher, (X, y), labelled=np.ones(3, bool), progress=False)
    with pytest.raises(ValueError, match="same number of rows"):
        D.distill(st, teacher, (X, y[:-1]), progress=False)
    with pytest.raises(TypeError, match="Dataset or an"):
        D.distill(st, teacher, X, progress=False)
    with pytest.raises(TypeError, match="predict_logits"):
        D.distill(st, "teacher", (X, y), progress=False)


@pytest.mark.slow
def test_shipped_teacher_beats_lenet_300_100(fashion):
    from labkit.models import pretrained
    from labkit.train import evaluate

    teacher = pretrained("teacher")
    acc = evaluate(teacher, fashion.X_test, fashion.y_test)
    assert acc == pytest.approx(teacher.metadata["test_accuracy"], abs=1e-12)
    assert acc > 0.8792 + 0.005
