"""Build the course notebooks from their plain-text sources and execute them.

Each lab is written as ``notebooks/src/NN_name.py`` in the "percent" format, readable and
diff-able; this script turns it into ``notebooks/NN_name.ipynb`` and executes it in place, so the
committed notebook holds the outputs nbval compares.

Cell markers (one per cell, at the start of a line):

    # %% [markdown]                      a markdown cell; its lines lose their leading "# "
    # %%                                 a code cell
    # %% ignore-output                   output not compared by nbval (timings, raw floats, progress bars)
    # %% solution=GRADE_ID               an answer cell; the solution sits between
                                         ### BEGIN SOLUTION and ### END SOLUTION
    # %% check=GRADE_ID points=N         the check cell of answer GRADE_ID: prints one line, compared by nbval

Usage::

    python scripts/nbbuild.py notebooks/src/01_magnitude_pruning.py [...]   # build + execute
    python scripts/nbbuild.py --all                                          # every source
    python scripts/nbbuild.py --no-execute ...                               # build only
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"
MARKER = re.compile(r"^# %%(.*)$")


def parse_marker(rest: str):
    rest = rest.strip()
    kind = "code"
    if rest.startswith("[markdown]"):
        kind, rest = "markdown", rest[len("[markdown]") :].strip()
    opts = {}
    for tok in rest.split():
        key, _, val = tok.partition("=")
        opts[key] = val or True
    return kind, opts


def cells_from_source(text: str):
    cells, cur = [], None
    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            if cur:
                cells.append(cur)
            kind, opts = parse_marker(m.group(1))
            cur = {"kind": kind, "opts": opts, "lines": []}
        elif cur is not None:
            cur["lines"].append(line)
    if cur:
        cells.append(cur)
    out = []
    for c in cells:
        lines = c["lines"]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if c["kind"] == "markdown":
            src = "\n".join(re.sub(r"^# ?", "", ln) if ln.startswith("#") else ln for ln in lines)
            out.append(nbformat.v4.new_markdown_cell(src))
            continue
        cell = nbformat.v4.new_code_cell("\n".join(lines))
        opts, tags = c["opts"], []
        if "ignore-output" in opts:
            tags.append("nbval-ignore-output")
        if "skip" in opts:
            tags.append("nbval-skip")
        if "solution" in opts:
            gid = opts["solution"]
            if "### BEGIN SOLUTION" not in cell.source or "### END SOLUTION" not in cell.source:
                raise ValueError(f"solution cell {gid!r} lacks ### BEGIN SOLUTION / ### END SOLUTION")
            cell.metadata["nbgrader"] = {"schema_version": 3, "grade_id": gid, "solution": True, "grade": False,
                                         "locked": False, "task": False}  # fmt: skip
        if "check" in opts:
            gid = opts["check"]
            points = int(opts.get("points", 1))
            cell.metadata["nbgrader"] = {"schema_version": 3, "grade_id": f"check_{gid}", "solution": False,
                                         "grade": True, "locked": True, "points": points, "task": False}  # fmt: skip
            cell.metadata["labkit"] = {"answer": gid}
            tags += ["check", "nbval-check-output"]
        if tags:
            cell.metadata["tags"] = tags
        out.append(cell)
    return out


def build(src: Path, execute: bool = True, timeout: int = 600) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells_from_source(src.read_text())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    dest = NB_DIR / (src.stem + ".ipynb")
    if execute:
        from nbclient import NotebookClient

        t0 = time.perf_counter()
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}}
        ).execute()
        print(f"{dest.name}: executed in {time.perf_counter() - t0:.1f} s")
        for i, cell in enumerate(nb.cells):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    raise RuntimeError(f"{dest.name}: cell {i} raised {o['ename']}: {o['evalue']}")
                if "FAIL" in "".join(o.get("text", "")) and "check" in cell.metadata.get("tags", []):
                    raise RuntimeError(f"{dest.name}: check cell {i} failed: {''.join(o['text'])}")
    nb.metadata.pop("widgets", None)  # widget state differs per run and bloats the file
    tmp = dest.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(dest)
    return dest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="*", type=Path)
    p.add_argument("--all", action="store_true")
    p.add_argument("--no-execute", action="store_true")
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    args = p.parse_args(argv)
    sources = sorted(SRC_DIR.glob("[0-9][0-9]_*.py")) if args.all else args.sources
    if not sources:
        p.error("name sources or use --all")
    for src in sources:
        build(Path(src), execute=not args.no_execute, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
