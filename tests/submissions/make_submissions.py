"""Write the synthetic lab-00 submissions in tests/submissions/lab00/ (committed; re-run to refresh).

They are stored as ``<student>.ipynb.json`` so that neither ``pytest --nbval`` (which would run the
hostile ones: one freezes its parent process) nor ruff treats them as notebooks of the project;
:func:`copy_as_notebooks` puts them in a folder as ``<student>.ipynb`` for grading.

Each submission is the released student notebook of lab 00 with its answer cells (and, for some,
other cells) replaced the way a real or a hostile student might. ``EXPECTED`` (imported by
tests/test_grading_batch.py) holds the score each must get and what it shows.

    .venv/bin/python tests/submissions/make_submissions.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "lab00"
ASSIGNMENT = ROOT / "notebooks" / "00_welcome_and_baseline.ipynb"
DAEMON_MARKER = "labkit-test-daemon-7f3a"
SUFFIX = ".ipynb.json"


def copy_as_notebooks(dest: Path, names=None) -> Path:
    """Copy the committed submissions (all, or ``names``) into ``dest`` as ``<student>.ipynb``."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(HERE.glob(f"*{SUFFIX}")):
        name = src.name[: -len(SUFFIX)]
        if names is None or name in names:
            (dest / f"{name}.ipynb").write_bytes(src.read_bytes())
    return dest


COUNT = "def count_parameters(sizes):\n    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))"
ACC = "def accuracy(logits, y):\n    return float(np.mean(np.argmax(logits, axis=1) == y))"
ACC_PERCENT = "def accuracy(logits, y):\n    return 100 * float(np.mean(np.argmax(logits, axis=1) == y))"
STUB_COUNT = "def count_parameters(sizes):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
STUB_ACC = "def accuracy(logits, y):\n    # YOUR CODE HERE\n    raise NotImplementedError()"

NOISY_COUNT = """import warnings
from tqdm.auto import tqdm
from IPython.display import display, HTML
print("working on it..." * 50)
warnings.warn("a top-level warning")

def count_parameters(sizes):
    print("debug:", sizes)
    warnings.warn("careful")
    display(HTML("<b>rich output from inside the function</b>"))
    import os, sys
    os.write(1, b"straight to fd 1\\n")
    print("to the real stdout", file=sys.__stdout__)
    total = 0
    for a, b in tqdm(list(zip(sizes[:-1], sizes[1:])), desc="layers"):
        total += a * b + b
    return total"""
NOISY_ACC = """from tqdm import tqdm as text_tqdm

def accuracy(logits, y):
    import sys
    for _ in text_tqdm(range(3), file=sys.stderr):
        pass
    print("accuracy called with", logits.shape, file=sys.stderr)
    return float(np.mean(np.argmax(logits, axis=1) == y))

for _ in text_tqdm(range(100)):
    pass"""

WRITE_OUT = """import os, pathlib
def _find_out():
    pid = os.getpid()
    for _ in range(20):
        try:
            args = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\\0")
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        if b"--out" in args:
            return pathlib.Path(args[args.index(b"--out") + 1].decode())
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
        if pid <= 1:
            return None
_out = _find_out()
print("found the grader's output folder:", _out is not None)
if _out is not None:
    (_out / "gradebook.csv").write_text("student,total,max\\nwrites_output_folder,100,2\\n")
    (_out / ".labkit-grades.json").write_text('{"forged": true}')
    (_out / "feedback").mkdir(exist_ok=True)
    (_out / "feedback" / "correct.md").write_text("forged feedback")
    (_out / "attack-was-here").write_text("the answer cell wrote into the output folder")

def count_parameters(sizes):
    return 0"""

FAKE_MODULE = """import sys, types
import labkit.check

class _Fake:
    def __getattr__(self, name):
        from labkit.check import exercises
        ex = exercises("lab00")[name]
        return lambda fn: print(ex.pass_line)

fake = _Fake()
labkit.check.lab00 = fake
sys.modules["labkit.check.lab00"] = fake

def count_parameters(sizes):
    return 0"""

MONKEYPATCH = """import labkit.check._core as core
core.Exercise.__call__ = lambda self, fn: print(self.pass_line)

def count_parameters(sizes):
    return 1"""

PATCH_EVALUATE = """from labkit.check import Exercise
Exercise.evaluate = lambda self, fn, cases: None   # the real check would then print its pass line

def accuracy(logits, y):
    return 0.5"""

PRINT_PASS = """import sys
from labkit.check import lab00

class _Rewrite:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        if text.startswith("FAIL: "):
            text = lab00.count_parameters.pass_line
        return self.stream.write(text)
    def flush(self):
        self.stream.flush()
    def __getattr__(self, name):
        return getattr(self.stream, name)

sys.stdout = _Rewrite(sys.stdout)
print(lab00.count_parameters.pass_line)

def count_parameters(sizes):
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))   # weights only: wrong"""

FORGE_RECORD = """import json, os
import labkit.check._core as core
# write a record by hand: a pickle-style exploit and a plausible-looking list of outputs
path = os.environ.get("LABKIT_GRADE_RECORD")
if path:
    with open(path, "a") as f:
        exploit = {"__obj__": "os:system", "state": {"cmd": "touch /tmp/pwned"}}
        f.write(json.dumps({"grade_id": "count_parameters", "seed": 0, "outputs": [{"ok": exploit}]}) + "\\n")
        f.write(json.dumps({"grade_id": "accuracy", "seed": 0, "outputs": [{"ok": 0.5}] * 4}) + "\\n")
        f.write("this line is not JSON\\n")
core.Exercise._record_for_grader = lambda self, fn: None
core.Exercise.evaluate = lambda self, fn, cases: None

def count_parameters(sizes):
    return 0"""

SPEC_TAMPER = """import json
import pathlib

# the grader's per-submission folder is the parent of the working directory: rewrite its spec
spec = pathlib.Path.cwd().parent / "spec.json"
if spec.exists():
    d = json.loads(spec.read_text())
    for c in d["checks"]:
        c["points"] = 100
    spec.write_text(json.dumps(d))
(pathlib.Path.cwd().parent / "cells.jsonl").write_text(
    "".join(json.dumps({"cell": i, "outcome": "passed", "message": "", "output": ""}) + "\\n" for i in range(40))
)


def count_parameters(sizes):
    return 0"""


def memorized_source():
    """A function that only knows the answers to the notebook's own (fixed-seed) cases."""
    from labkit.check import lab00

    ex = lab00.count_parameters
    table = {tuple(c.args[0]): int(ex.reference(*c.args)) for c in ex.cases()}
    return f"_ANSWERS = {table!r}\n\ndef count_parameters(sizes):\n    return _ANSWERS.get(tuple(sizes), 0)"


DAEMON = f'''import subprocess, sys
# a detached process (new session) that would outlive the grading if nothing killed it
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{DAEMON_MARKER}"],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

{COUNT}'''

# --- escaping the sandbox (tests/test_grading_sandbox.py): each attack is tried, then the answer is right -----
ATTACK_MARKER = "labkit-sandbox-attack-5c1e"
LISTEN_PORT = 47913  # the test listens on 127.0.0.1 here; the submission tries to connect

_ATTACK_HELPERS = f'''import glob, os, pathlib
import labkit

MARK = "{ATTACK_MARKER}"
KIT = pathlib.Path(labkit.__file__).resolve().parent
REPO = KIT.parent


def _ancestor_arg(flag):
    """The value of `flag` on an ancestor's command line (the grader's), as a hostile cell would find it."""
    pid = os.getpid()
    for _ in range(30):
        try:
            args = pathlib.Path(f"/proc/{{pid}}/cmdline").read_bytes().split(b"\\0")
            stat = pathlib.Path(f"/proc/{{pid}}/stat").read_text()
        except OSError:
            return None
        if flag in args:
            return pathlib.Path(args[args.index(flag) + 1].decode())
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
        if pid <= 1:
            return None


def _pytest_dirs(name):
    """Folders called `name` in pytest's temporary folders (with or without pytest-xdist's popen-gwN)."""
    return glob.glob(f"/tmp/pytest-of-*/pytest-*/*/{{name}}") + glob.glob(f"/tmp/pytest-of-*/pytest-*/*/*/{{name}}")


def output_folders():
    found = [_ancestor_arg(b"--out")] + [pathlib.Path(p) for p in _pytest_dirs("out")]
    return [p for p in found if p is not None and p.is_dir()]


def submission_files():
    found = [_ancestor_arg(b"--submissions")] + [pathlib.Path(p) for p in _pytest_dirs("subs")]
    files = [f for d in found if d is not None and d.is_dir() for f in d.glob("*.ipynb")]
    return files + sorted((REPO / "tests" / "submissions" / "lab00").glob("*.ipynb.json"))
'''

SANDBOX_WRITES = (
    _ATTACK_HELPERS
    + """
targets = [KIT / f"{MARK}.py", KIT / "check" / "__init__.py", REPO / f"{MARK}.txt",
           pathlib.Path("/tmp") / f"{MARK}.txt", pathlib.Path(os.path.expanduser("~")) / f"{MARK}.txt",
           pathlib.Path("/root") / f"{MARK}.txt"]
targets += [d / f"{MARK}.txt" for d in output_folders()]
written = []
for t in targets:
    try:
        with open(t, "a") as f:
            f.write("# written by a student's answer cell\\n")
        written.append(str(t))
    except OSError:
        pass
print("files written:", len(written))

def count_parameters(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))"""
)

SANDBOX_READS = (
    _ATTACK_HELPERS
    + """
stolen = []
for f in [REPO / "notebooks" / "00_welcome_and_baseline.ipynb",
          REPO / "notebooks" / "src" / "00_welcome_and_baseline.py", *submission_files()]:
    try:
        stolen.append(f.read_bytes()[:100])
    except OSError:
        pass
print("files read:", len(stolen))

def count_parameters(sizes):
    # right only when nothing could be read: a sandbox that leaks costs this submission its point
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])) + len(stolen)"""
)

SANDBOX_NETWORK = f'''import socket
reached = []
for host, port in [("127.0.0.1", {LISTEN_PORT}), ("localhost", {LISTEN_PORT}), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        s.sendall(b"{ATTACK_MARKER}")
        reached.append(host)
    except OSError:
        pass
    finally:
        s.close()
print("hosts reached:", len(reached))

def count_parameters(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])) + len(reached)'''

SANDBOX_DISK = """import os, tempfile
written_mb = 0
chunk = b"\\0" * 2**20
for folder in (".", tempfile.gettempdir(), "/tmp"):
    try:
        with open(os.path.join(folder, "filler.bin"), "wb") as f:
            for _ in range(4096):          # up to 4 GiB in each folder, unless something stops it
                f.write(chunk)
                written_mb += 1
    except OSError:
        pass
print("wrote until refused")

def count_parameters(sizes):
    # right only if the writes were refused well before 3 GiB in total
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])) + (written_mb >= 3 * 1024)"""

# --- calling labkit's own reference implementation instead of writing the answer ---------------------
REF_IMPORT_COUNT = "from labkit.check.lab00 import _count_parameters as count_parameters"
REF_IMPORT_ACC = """import sys
import labkit.check.lab00

accuracy = sys.modules["labkit.check.lab00"].accuracy.reference   # through the Exercise object"""
REF_DYNAMIC_COUNT = """import importlib
_mod = importlib.import_module("labkit." + "check." + "lab" + "0" * 2)
_impl = getattr(_mod, "_count" + "_param" + "eters")

def count_parameters(sizes):
    return _impl(list(sizes))"""
REF_DYNAMIC_ACC = """from labkit.check import exercises   # another labkit module hands out the exercise

def accuracy(logits, y):
    return exercises("lab00")["accuracy"].reference(logits, y)"""

# name: (answers {answer_id: source, None = delete the cell}, expected points, expected status words, note)
SUBMISSIONS = {
    "correct": ({"count_parameters": COUNT, "accuracy": ACC}, 2, [], "both right"),
    "partly_wrong": ({"count_parameters": COUNT, "accuracy": ACC_PERCENT}, 1, [], "accuracy as a percentage"),
    "noisy_correct": ({"count_parameters": NOISY_COUNT, "accuracy": NOISY_ACC}, 2, [], "prints, warnings, bars"),
    "metadata_lost": ({"count_parameters": COUNT, "accuracy": ACC}, 2, [], "answer cells lost their metadata"),
    "duplicated_answer": ({"count_parameters": COUNT, "accuracy": ACC}, 2, [], "answer cell copied, last one right"),
    "untouched": ({"count_parameters": STUB_COUNT, "accuracy": STUB_ACC}, 0, [], "the release as handed out"),
    "malformed_json": (None, 0, ["malformed"], "truncated file"),
    "missing_answer": ({"count_parameters": COUNT, "accuracy": None}, 1, [], "accuracy answer cell deleted"),
    "crash_first_cell": ({"count_parameters": "raise RuntimeError('boom')\n" + COUNT, "accuracy": ACC}, 1,
                         ["errors in"], "first answer cell raises before defining"),
    "loop_top_level": ({"count_parameters": COUNT, "accuracy": "while True:\n    pass\n" + ACC}, 1,
                       ["cell timeout"], "infinite loop at top level"),
    "loop_in_function": ({"count_parameters": "def count_parameters(sizes):\n    while True:\n        pass",
                          "accuracy": ACC}, 1, ["cell timeout"], "infinite loop inside the function"),
    "os_exit": ({"count_parameters": COUNT, "accuracy": "import os\n\ndef accuracy(logits, y):\n    os._exit(3)"}, 1,
                ["kernel died"], "os._exit inside the checked function"),
    "output_flood": ({"count_parameters": "print('x' * 8_000_000)\nfor i in range(20000):\n    print(i, 'y' * 200)\n"
                      + COUNT, "accuracy": ACC}, 2, [], "megabytes of output"),
    "huge_allocation": ({"count_parameters": "def count_parameters(sizes):\n    hog = []\n    while True:\n"
                         "        hog.append(np.ones(10**7))", "accuracy": ACC}, 1, [], "allocates until refused"),
    "writes_output_folder": ({"count_parameters": WRITE_OUT, "accuracy": ACC}, 1, [], "overwrites the gradebook"),
    "fake_check_module": ({"count_parameters": FAKE_MODULE, "accuracy": STUB_ACC}, 0, [], "replaces lab00"),
    "monkeypatch_check": ({"count_parameters": MONKEYPATCH, "accuracy": STUB_ACC}, 0, [], "patches Exercise"),
    "patch_evaluate": ({"count_parameters": COUNT, "accuracy": PATCH_EVALUATE}, 1, [], "patches evaluate only"),
    "print_pass_line": ({"count_parameters": PRINT_PASS, "accuracy": STUB_ACC}, 0, [], "rewrites FAIL lines"),
    "edit_expected_output": ({"count_parameters": STUB_COUNT, "accuracy": STUB_ACC}, 0, [], "check cells edited"),
    "memorized_cases": ({"count_parameters": None, "accuracy": ACC}, 1, [], "lookup table of the notebook's cases"),
    "forge_record": ({"count_parameters": FORGE_RECORD, "accuracy": STUB_ACC}, 0, [], "hand-written record"),
    "stop_grader": ({"count_parameters": COUNT + "\n\nimport os, signal\nos.kill(os.getppid(), signal.SIGSTOP)",
                     "accuracy": ACC}, 0, ["timeout"], "freezes nbval: only the overall timeout ends it"),
    "grader_files": ({"count_parameters": SPEC_TAMPER, "accuracy": ACC}, 1, [], "rewrites the grader's spec/results"),
    "daemon": ({"count_parameters": DAEMON, "accuracy": ACC}, 2, [], "leaves a detached process behind"),
    "ref_import": ({"count_parameters": REF_IMPORT_COUNT, "accuracy": REF_IMPORT_ACC}, 2, ["calls labkit's reference"],
                   "imports the reference / takes it from the Exercise (0 with --forbid-reference)"),
    "ref_dynamic": ({"count_parameters": REF_DYNAMIC_COUNT, "accuracy": REF_DYNAMIC_ACC}, 2,
                    ["calls labkit's reference"], "importlib + getattr with built names / labkit.check.exercises"),
}

# Run by tests/test_grading_sandbox.py in one batch with `correct`, `daemon` and the two `ref_*` above.
SANDBOX_SUBMISSIONS = {
    "sandbox_writes": ({"count_parameters": SANDBOX_WRITES, "accuracy": ACC}, 2, ["flagged: wrote outside"],
                       "writes into the kit, the repository, the output folder, /tmp, $HOME"),
    "sandbox_reads": ({"count_parameters": SANDBOX_READS, "accuracy": ACC}, 2, [],
                      "reads the instructor notebook and other submissions (point lost if any read works)"),
    "sandbox_network": ({"count_parameters": SANDBOX_NETWORK, "accuracy": ACC}, 2, ["opened a network connection"],
                        "connects to a listener on 127.0.0.1 and to the internet"),
    "sandbox_disk": ({"count_parameters": SANDBOX_DISK, "accuracy": ACC}, 2, [], "fills its folder, TMPDIR and /tmp"),
}


def build(name, answers):
    from labkit.grading.notebook import answer_cells, is_check, student_notebook

    nb = student_notebook(nbformat.read(ASSIGNMENT, as_version=4))
    if name == "memorized_cases":
        answers = {**answers, "count_parameters": memorized_source()}
    idx = answer_cells(nb)
    for gid, src in answers.items():
        if src is not None:
            nb.cells[idx[gid][0]].source = src
    if name == "metadata_lost":
        for gid in answers:
            del nb.cells[idx[gid][0]].metadata["nbgrader"]
    if name == "duplicated_answer":
        i = idx["count_parameters"][0]
        wrong = nbformat.from_dict(json.loads(json.dumps(nb.cells[i])))
        wrong.source = "def count_parameters(sizes):\n    return 0"
        wrong["id"] = "duplicated-answer"
        nb.cells.insert(i, wrong)
    if name == "edit_expected_output":
        for cell in nb.cells:
            if is_check(cell):
                line = cell.outputs[0]["text"]
                cell.source = f"print({line.strip()!r})"
                cell.metadata["nbgrader"]["points"] = 100
        # and re-point: a check cell's copy claims to be the answer cell of `accuracy`
        forged = nbformat.v4.new_code_cell("print('accuracy: correct on 4 batches')")
        forged.metadata["nbgrader"] = {"grade_id": "accuracy", "solution": True, "grade": False, "locked": False}
        nb.cells.append(forged)
    deletions = sorted((idx[gid][0] for gid, src in answers.items() if src is None), reverse=True)
    for i in deletions:
        del nb.cells[i]
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_check(cell):
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nb)


def main():
    sys.path.insert(0, str(ROOT))
    HERE.mkdir(parents=True, exist_ok=True)
    for name, (answers, *_rest) in {**SUBMISSIONS, **SANDBOX_SUBMISSIONS}.items():
        path = HERE / f"{name}{SUFFIX}"
        if answers is None:
            text = build("correct", {"count_parameters": COUNT, "accuracy": ACC})
            path.write_text(text[: len(text) // 2])  # cut mid-file: invalid JSON
        else:
            path.write_text(build(name, answers))
    print(f"wrote {len(SUBMISSIONS) + len(SANDBOX_SUBMISSIONS)} submissions to {HERE}")


if __name__ == "__main__":
    main()
