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
    # %% skip-grading                    a long experiment no check depends on: the grader does not run it
                                         (combine: "# %% ignore-output skip-grading")

Usage::

    python scripts/nbbuild.py notebooks/src/01_magnitude_pruning.py [...]   # build + execute
    python scripts/nbbuild.py --all                                          # every source
    python scripts/nbbuild.py --no-execute ...                               # build only
    python scripts/nbbuild.py --html build/course notebooks/NN_name.ipynb    # render to accessible HTML

``--html DIR`` renders built notebooks (``.ipynb``; with ``--execute-html`` after running them) to
HTML with the course's template (``etc/nbconvert/templates/labkit``: alt text on every figure,
prompts with enough contrast) and a syntax-highlighting style meeting WCAG AA contrast
(:data:`HIGHLIGHT_STYLE`, from accessible-pygments). ``make course`` and the accessibility tests
render through :func:`render_html`.
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
TEMPLATES = ROOT / "etc" / "nbconvert" / "templates"
TEMPLATE = "labkit"
HIGHLIGHT_STYLE = "a11y-high-contrast-light"  # accessible-pygments: WCAG AA (and AAA) contrast on white


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
        if "skip-grading" in opts:
            tags.append("skip-grading")  # the grader does not run it (labkit.grading.notebook.SKIP_TAG)
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


def html_exporter():
    """nbconvert's HTMLExporter with the course template and the accessible highlighting style."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.CSSHTMLHeaderPreprocessor.style = HIGHLIGHT_STYLE
    config.HTMLExporter.extra_template_basedirs = [str(TEMPLATES)]
    return HTMLExporter(config=config, template_name=TEMPLATE)


def render_html(notebook: Path, out_dir: Path, execute: bool = False, timeout: int = 600, exporter=None) -> Path:
    """Render ``notebook`` (an ``.ipynb``) to ``out_dir/<stem>.html``; returns the HTML's path.

    With ``execute`` the notebook is run first (in its own folder); otherwise its stored outputs are
    rendered as they are. The file is written atomically.
    """
    notebook, out_dir = Path(notebook), Path(out_dir)
    nb = nbformat.read(notebook, as_version=4)
    if execute:
        from nbclient import NotebookClient

        resources = {"metadata": {"path": str(notebook.parent.resolve())}}
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=resources).execute()
    exporter = exporter or html_exporter()
    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / (notebook.stem + ".html")
    tmp = dest.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(dest)
    return dest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="*", type=Path)
    p.add_argument("--all", action="store_true")
    p.add_argument("--no-execute", action="store_true")
    p.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    p.add_argument("--html", type=Path, metavar="DIR", help="render the given .ipynb notebooks to HTML in DIR")
    p.add_argument("--execute-html", action="store_true", help="with --html: run each notebook before rendering")
    args = p.parse_args(argv)
    if args.html:
        notebooks = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb")) if args.all else args.sources
        if not notebooks:
            p.error("name notebooks or use --all")
        exporter = html_exporter()
        for nb in notebooks:
            t0 = time.perf_counter()
            dest = render_html(Path(nb), args.html, execute=args.execute_html, timeout=args.timeout, exporter=exporter)
            print(f"{dest}: rendered in {time.perf_counter() - t0:.1f} s")
        return 0
    sources = sorted(SRC_DIR.glob("[0-9][0-9]_*.py")) if args.all else args.sources
    if not sources:
        p.error("name sources or use --all")
    for src in sources:
        build(Path(src), execute=not args.no_execute, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
