"""Where the submissions of a batch are graded: a local pool, or the workers of a Dask cluster.

Both executors take the function that grades one submission (``grade_fn``, which is
:func:`labkit.grading.grade.grade_one`; passed in, so that this module does not import the batch
module that imports it) and the same work, one ``(student, notebook bytes, seed)`` per submission, and yield
``(student, result)`` pairs in the order the results arrive, so that :func:`labkit.grading.grade`
writes the gradebook, the feedback and the resume manifest after each one, whatever ran it.

* :func:`local_results`: ``jobs`` threads on this machine, each waiting on the supervisor process
  of one submission (:func:`labkit.grading.grade.grade_one`). The default.
* :func:`dask_results`: every submission is sent to a worker of a running Dask scheduler with
  ``distributed.Client.submit``: the notebook's *bytes*, the instructor notebook (cut after its last
  check, sent once per batch as a task of its own), the limits and the seed, never a path. The worker
  grades it with the same :func:`grade_one` as the local pool, in its own sandbox and its own
  temporary folder, and returns the result as a dict. Workers need the kit (and bubblewrap) installed,
  nothing shared with the coordinator. When a worker is lost mid-task the scheduler gives its tasks
  to another worker (up to ``distributed.scheduler.allowed-failures`` times per task, then the
  submission gets a "grader error" row that the next run grades again).

``result`` is the result dict, or the exception a grading raised (a bug in the grader or a lost
cluster), which the batch turns into one "grader error" row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

__all__ = ["ExecutorUnavailable", "local_results", "dask_results", "grade_on_worker", "EXECUTORS"]

EXECUTORS = ("local", "dask")
PROBE_TIMEOUT = 300  # seconds for every worker to try a sandbox before the batch starts
RETRIES = 2  # re-runs of a task that *raised* on a worker (a lost worker is handled by the scheduler)
CLUSTER_HINT = 'pip install "labkit[cluster]" (dask and distributed), on the coordinator and in the workers\' image'


class ExecutorUnavailable(RuntimeError):
    """The chosen executor cannot run here (distributed not installed, scheduler unreachable); says why."""


def local_results(grade_fn, asg, work, options, jobs: int, keep_temp: bool = False) -> Iterator[tuple[str, object]]:
    """Grade ``work`` (``[(student, raw bytes, seed)]``) in ``jobs`` local supervisor processes at a time."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_fn, asg, s, raw, options, seed, keep_temp): s for s, raw, seed in work}
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except Exception as exc:  # noqa: BLE001 - a grader bug costs one row, not the batch
                yield futures[fut], exc


# --- Dask ---------------------------------------------------------------------------------------------

_ASSIGNMENTS: dict[str, object] = {}  # on a worker: the assignment of each batch, loaded once
_ASSIGNMENTS_LOCK = threading.Lock()


def _assignment_payload(name: str, nb_bytes: bytes, sha256: str) -> tuple[str, bytes, str]:
    """The task that holds the instructor notebook on the cluster (recomputed if its worker is lost)."""
    return name, nb_bytes, sha256


def _worker_assignment(payload):
    name, nb_bytes, sha256 = payload
    with _ASSIGNMENTS_LOCK:
        asg = _ASSIGNMENTS.get(sha256)
        if asg is None:
            import nbformat

            from labkit.grading.notebook import load_assignment

            asg = load_assignment(Path(name), nb=nbformat.reads(nb_bytes.decode("utf-8"), as_version=4))
            _ASSIGNMENTS.clear()  # one batch at a time is the common case: keep the memory small
            _ASSIGNMENTS[sha256] = asg
    return asg


def grade_on_worker(grade_fn, payload, student: str, raw: bytes, options, seed: int) -> dict:
    """Run on a Dask worker: grade one submission's bytes in this machine's sandbox; the result dict.

    Raises :class:`labkit.grading.sandbox.SandboxUnavailable` if the worker cannot start a sandbox
    (and ``options.sandbox`` is on): no student code runs unsandboxed because a worker lacks bwrap.
    """
    if options.sandbox:
        from labkit.grading.sandbox import check_available

        check_available()
    return grade_fn(_worker_assignment(payload), student, raw, options, seed)


def _sandbox_problem() -> str | None:
    """Run on every worker before a batch: why it cannot start a sandbox, or None (then cached there)."""
    from labkit.grading.sandbox import SandboxUnavailable, check_available

    try:
        check_available()
    except SandboxUnavailable as exc:
        return str(exc)
    return None


def connect(scheduler: str):
    """A ``distributed.Client`` on ``scheduler`` (``tcp://HOST:PORT``); :class:`ExecutorUnavailable` if not.

    Waits for the scheduler as long as Dask's ``distributed.comm.timeouts.connect`` says (30 s by
    default; environment variable ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``).
    """
    try:
        from distributed import Client
    except ImportError as exc:
        raise ExecutorUnavailable(f"--executor dask needs the cluster extra ({exc}): {CLUSTER_HINT}") from None
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(f"the Dask executor needs a scheduler address like tcp://HOST:8786, got {scheduler!r}")
    import dask

    timeout = dask.config.get("distributed.comm.timeouts.connect")
    try:
        return Client(scheduler, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorUnavailable(
            f"cannot reach the Dask scheduler at {scheduler} within {timeout} ({type(exc).__name__}: {exc}); "
            "is `dask scheduler` running there, and is its port open from this machine?"
        ) from None


def dask_results(grade_fn, asg, work, options, scheduler: str, log=print) -> Iterator[tuple[str, object]]:
    """Grade ``work`` (``[(student, raw bytes, seed)]``) on the workers of the Dask ``scheduler``.

    Each submission is one task (``pure=False``, ``retries=RETRIES``); results are yielded as they
    arrive (``distributed.as_completed``). Leaving the iterator early (an interrupted batch) closes the
    client, and the scheduler drops the tasks not yet finished.
    """
    import nbformat
    from distributed import as_completed as dask_as_completed

    client = connect(scheduler)
    try:
        workers = client.scheduler_info().get("workers", {})
        log(
            f"Dask scheduler {scheduler}: {len(workers)} workers, "
            f"{sum(w.get('nthreads', 0) for w in workers.values())} threads"
            + ("" if workers else " (tasks wait until a worker joins)")
        )
        if options.sandbox and workers:  # one probe per worker, in its task threads (it starts bwrap)
            probes = [
                client.submit(_sandbox_problem, pure=False, workers=[w], allow_other_workers=False) for w in workers
            ]
            owner, problems = dict(zip(probes, workers)), {}
            try:
                for f in dask_as_completed(probes, loop=client.loop, timeout=PROBE_TIMEOUT):
                    if f.status == "finished" and f.result():
                        problems[owner[f]] = f.result()
            except TimeoutError:  # a worker that left meanwhile: every task checks its sandbox again anyway
                client.cancel(probes)
            if problems:
                from labkit.grading.sandbox import SandboxUnavailable

                w, p = next(iter(problems.items()))
                raise SandboxUnavailable(
                    f"{len(problems)} of {len(workers)} Dask workers cannot start a sandbox (e.g. {w}: {p})"
                )
        nb_bytes = nbformat.writes(asg.nb).encode("utf-8")
        payload = client.submit(
            _assignment_payload,
            asg.path.name,
            nb_bytes,
            asg.sha256,
            pure=True,
            key=f"labkit-assignment-{asg.sha256[:16]}",
        )
        futures = {
            client.submit(grade_on_worker, grade_fn, payload, s, raw, options, seed, pure=False, retries=RETRIES): s
            for s, raw, seed in work
        }
        for fut in dask_as_completed(list(futures), loop=client.loop):
            student = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - a grader bug or a task lost too often: one row
                result = exc
            fut.release()
            yield student, result
    finally:
        client.close()
