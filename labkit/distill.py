"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a small student learns from a teacher's soft targets.

A trained teacher's class probabilities carry more than its top-1 answer: that a shirt looks a
little like a T-shirt and not at all like a sandal. Dividing the logits by a temperature ``T > 1``
before the softmax raises the small probabilities so the student can learn from them
("dark knowledge"). The student is trained on a weighted sum of two losses::

    L = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(y, softmax(s))

with ``s`` the student's and ``t`` the teacher's logits, both averaged over the batch. The soft
term's gradient with respect to ``s`` is ``alpha * T * (softmax(s / T) - softmax(t / T))``, which
shrinks like ``1 / T`` before the ``T^2`` factor; the factor keeps the soft targets' share of the
gradient roughly constant as ``T`` changes (Hinton et al. 2015, section 2).

:func:`distill` trains a student with :func:`labkit.train.fit`, through its ``loss_fn`` hook: the
teacher's logits are computed once for every training image, and each batch looks its rows up by
``batch_index``.
"""

from __future__ import annotations

import numpy as np

from .data import Dataset
from .softmax import log_softmax, softmax
from .train import fit
from .validation import check_array, check_fraction, check_real

__all__ = ["softmax", "log_softmax", "kd_loss", "teacher_logits", "distill"]


def _check_temperature(T) -> float:
    return check_real("T", T, 0.0, lo_open=True, what=" (the temperature)")


def _check_logits(z, what) -> np.ndarray:
    z = check_array(z, what, kind="fiu")
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"{what} must have shape (n, k) with k >= 1 classes, got shape {z.shape}")
    return check_array(z, what, finite=True)


def _log_p(z, T):
    """log softmax(z / T) in float64 (distillation's losses are summed in float64)."""
    return log_softmax(z.astype(np.float64, copy=False), T)


def _kd_terms(s, t, y, T, alpha, labelled=None):
    """Shared body of :func:`kd_loss`: loss and gradient, with an optional mask of labelled rows.

    Rows where ``labelled`` is False contribute only the soft-target term; the loss stays an
    average over all ``n`` rows of the batch.
    """
    n, k = s.shape
    log_ps = _log_p(s, T)  # student at temperature T
    log_pt = _log_p(t, T)  # teacher at temperature T
    pt = np.exp(log_pt)
    # KL(p_t || p_s) per row; p_t log p_t is 0 where p_t underflows to 0 (0 * finite = 0).
    kl = (pt * (log_pt - log_ps)).sum(axis=1)
    log_p1 = _log_p(s, 1.0)  # student at T = 1 for the hard-label term
    rows = np.arange(n)
    ce = -log_p1[rows, y]
    hard = np.ones(n, bool) if labelled is None else labelled
    loss = (alpha * T * T * kl + (1.0 - alpha) * np.where(hard, ce, 0.0)).sum() / n
    # d/ds of T^2 KL = T (p_s^T - p_t^T); d/ds of CE = p_s^1 - onehot(y).
    grad = alpha * T * (np.exp(log_ps) - pt)
    g_ce = np.exp(log_p1)
    g_ce[rows, y] -= 1.0
    grad += (1.0 - alpha) * g_ce * hard[:, None]
    return float(loss), grad / n


def _check_labels(y, n, k, what="y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{what} must have shape ({n},) to match the logits, got shape {y.shape}")
    if n and y.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer class labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"{what} must be class indices in [0, {k}), got values in [{y.min()}, {y.max()}]")
    return y.astype(np.intp, copy=False)


def kd_loss(student_logits, teacher_logits, y, T: float = 4.0, alpha: float = 0.9):
    """Hinton et al.'s distillation loss and its gradient with respect to the student's logits.

    ``loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(y, softmax(s))``,
    each term averaged over the batch (KL in nats, natural log).

    Parameters
    ----------
    student_logits : ndarray, shape (n, k)
    teacher_logits : ndarray, shape (n, k)
    y : ndarray of int, shape (n,)
        True labels in [0, k).
    T : float > 0
        Temperature of the soft targets (the hard-label term always uses T = 1).
    alpha : float in [0, 1]
        Weight of the soft term; ``alpha = 0`` is plain cross-entropy, ``alpha = 1`` ignores labels.

    Returns
    -------
    loss : float
    grad : ndarray, shape (n, k)
        ``alpha * T * (softmax(s/T) - softmax(t/T)) / n + (1 - alpha) * (softmax(s) - onehot(y)) / n``,
        in the student logits' float dtype (float64 for integer input).
    """
    T, alpha = _check_temperature(T), check_fraction("alpha", alpha)
    s = _check_logits(student_logits, "student_logits")
    t = _check_logits(teacher_logits, "teacher_logits")
    if s.shape != t.shape:
        raise ValueError(f"student and teacher logits must have the same shape (n, k), got {s.shape} and {t.shape}")
    if s.shape[0] == 0:
        raise ValueError("kd_loss got an empty batch (0 rows)")
    yy = _check_labels(y, s.shape[0], s.shape[1])
    loss, grad = _kd_terms(s, t, yy, T, alpha)
    return loss, grad.astype(s.dtype if s.dtype.kind == "f" else np.float64, copy=False)


def teacher_logits(teacher, X, batch_size: int = 1000) -> np.ndarray:
    """The teacher's logits for every row of X, computed once in inference mode (dropout off).

    Parameters
    ----------
    teacher : labkit.nn.Sequential
    X : ndarray, shape (n, 784)

    Returns
    -------
    ndarray, shape (n, k), float32
    """
    if not hasattr(teacher, "predict_logits"):
        raise TypeError(f"teacher must be a labkit model with predict_logits, got {type(teacher).__name__}")
    return np.asarray(teacher.predict_logits(X, batch_size), dtype=np.float32)


def _transfer_set(data) -> tuple:
    """(X, y) of a Dataset's training split or an (X, y) pair, checked: same rows, not empty."""
    if isinstance(data, Dataset):
        X, y = data.X_train, data.y_train
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = np.asarray(data[0]), np.asarray(data[1])
    else:
        raise TypeError(f"data must be a Dataset or an (X, y) pair, got {type(data).__name__}")
    if len(y) != len(X) or y.ndim != 1:
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and {y.shape}")
    if len(X) == 0:
        raise ValueError("the transfer set is empty")
    return X, y


def _teacher_rows(teacher, X) -> np.ndarray:
    """The teacher's logits for every row of X (float32 (n, k)), computed or given."""
    if not isinstance(teacher, np.ndarray):
        return teacher_logits(teacher, X)
    t_all = _check_logits(teacher, "teacher logits").astype(np.float32, copy=False)
    if len(t_all) != len(X):
        raise ValueError(f"teacher logits must have one row per training image ({len(X)}), got {len(t_all)} rows")
    return t_all


def _labelled_rows(labelled, n: int) -> np.ndarray:
    """Which rows have a usable label (bool (n,)); all of them by default."""
    if labelled is None:
        return np.ones(n, bool)
    mask = np.asarray(labelled)
    if mask.dtype != bool or mask.shape != (n,):
        raise ValueError(f"labelled must be a boolean array of shape ({n},), got {mask.dtype} {mask.shape}")
    return mask


def distill(
    student,
    teacher,
    data,
    T: float = 4.0,
    alpha: float = 0.9,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 128,
    optimizer="adam",
    seed: int = 0,
    labelled=None,
    callbacks=(),
    progress: bool = True,
    lr_schedule=None,
    weight_decay: float = 0.0,
    eval_data=None,
):
    """Train ``student`` on the teacher's soft targets plus the true labels (in place); returns the history.

    The teacher's logits are computed once for the whole training set; every batch of
    :func:`labkit.train.fit` looks its rows up through ``batch_index``. Everything else (shuffling,
    optimizer, schedule, callbacks) is ``fit``'s, so a distilled and a hard-label student trained
    with the same arguments and seed see the same batches in the same order.

    Parameters
    ----------
    student : labkit.nn.Sequential
        Trained in place.
    teacher : labkit.nn.Sequential or ndarray of shape (n, k)
        A trained model, or its logits for the training rows already computed (to reuse them
        across many runs, e.g. in a sweep; see :func:`teacher_logits`).
    data : Dataset or (X, y)
        The transfer set: X of shape (n, ...) and integer labels y of shape (n,).
    T, alpha : float
        As in :func:`kd_loss`.
    epochs, lr, batch_size, optimizer, seed, callbacks, progress, lr_schedule, weight_decay, eval_data
        Passed to :func:`labkit.train.fit`.
    labelled : ndarray of bool, shape (n,), optional
        Which training rows have a usable label. Unlabelled rows contribute only the soft term
        (their ``y`` is ignored, e.g. -1); labelled rows the full loss. Default: all labelled.

    Returns
    -------
    dict
        ``fit``'s history (``loss``, ``train_acc`` and, with ``eval_data``, ``eval_acc`` per epoch).
        ``train_acc`` counts only labelled rows as correct when ``labelled`` is given.
    """
    T, alpha = _check_temperature(T), check_fraction("alpha", alpha)
    X, y = _transfer_set(data)
    n = len(X)
    t_all = _teacher_rows(teacher, X)
    k = t_all.shape[1]
    k_student = student.forward(np.asarray(X[:1])).shape[-1]
    if k_student != k:
        raise ValueError(f"student has {k_student} outputs but the teacher has {k} classes")
    mask = _labelled_rows(labelled, n)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    # Labels of unlabelled rows are never read; give them a valid placeholder so fit can index them.
    y_lab = y[mask]
    if len(y_lab) and (y_lab.min() < 0 or y_lab.max() >= k):
        raise ValueError(f"labels must be in [0, {k}), got values in [{y_lab.min()}, {y_lab.max()}]")
    y_fit = np.where(mask, y, -1).astype(np.int64)
    y_safe = np.where(mask, y, 0).astype(np.intp)

    def loss_fn(logits, y_batch, batch_index):
        loss, grad = _kd_terms(logits, t_all[batch_index], y_safe[batch_index], T, alpha, mask[batch_index])
        return loss, grad.astype(logits.dtype, copy=False)

    return fit(
        student,
        (X, y_fit),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
        seed=seed,
        callbacks=callbacks,
        progress=progress,
        loss_fn=loss_fn,
        lr_schedule=lr_schedule,
        weight_decay=weight_decay,
        eval_data=eval_data,
    )
