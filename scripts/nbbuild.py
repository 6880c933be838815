"""Build the course notebooks from their jupytext sources, execute them, render them to HTML.

Each lab is written as ``notebooks/src/NN_name.py`` in jupytext's percent format, readable and
diff-able, and paired with ``notebooks/NN_name.ipynb`` by ``notebooks/jupytext.toml``. A cell
starts at a ``# %%`` line that carries the cell's type and metadata the jupytext way::

    # %% [markdown]                              a markdown cell; its lines lose their leading "# "
    # %%                                         a code cell
    # %% tags=["nbval-ignore-output"]            output not compared by nbval (timings, raw floats, ...)
    # %% nbgrader={"grade": false, "grade_id": "ID", "locked": false, "schema_version": 3,
    #              "solution": true, "task": false}
    #                                            an answer cell (one line in the source); the solution
    #                                            sits between ### BEGIN SOLUTION and ### END SOLUTION
    # %% labkit={"answer": "ID"} nbgrader={"grade": true, "grade_id": "check_ID", "locked": true,
    #              "points": N, "schema_version": 3, "solution": false, "task": false}
    #    tags=["check", "nbval-check-output"]    the check cell of answer ID (one line in the source)

jupytext reads the source (:func:`read_source`); this script adds only what jupytext does not do:
it checks the course's cell conventions (:func:`check_cells`), keeps the notebook's existing
outputs, cell ids and run metadata for the cells it can match (jupytext's own combination, as
``jupytext --sync`` does), executes the notebook in place so the committed notebook holds the
outputs nbval compares, and renders HTML.

Usage::

    python scripts/nbbuild.py notebooks/src/01_magnitude_pruning.py [...]   # build + execute
    python scripts/nbbuild.py --all                                          # every source
    python scripts/nbbuild.py --no-execute ...                               # inputs only, outputs kept
    python scripts/nbbuild.py --html build/course notebooks/NN_name.ipynb    # render to accessible HTML

``--no-execute`` updates the notebook's inputs from the source and keeps the stored outputs (the
same notebook as ``jupytext --sync notebooks/src/NN_name.py`` writes); re-run without it whenever
code changed.

``--html DIR`` renders built notebooks (``.ipynb``; with ``--execute-html`` after running them) to
HTML with the course's template (``etc/nbconvert/templates/labkit``: alt text on every figure,
prompts with enough contrast) and a syntax-highlighting style meeting WCAG AA contrast
(:data:`HIGHLIGHT_STYLE`, from accessible-pygments). ``make course`` and the accessibility tests
render through :func:`render_html`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs
from jupytext.config import load_jupytext_configuration_file

from labkit.grading.cells import cell_problems

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"
SOURCE_FORMAT = "py:percent"
TEMPLATES = ROOT / "etc" / "nbconvert" / "templates"
TEMPLATE = "labkit"
HIGHLIGHT_STYLE = "a11y-high-contrast-light"  # accessible-pygments: WCAG AA (and AAA) contrast on white
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# jupytext's notes on a cell's layout in the text file (blank lines and the like), not content
LAYOUT_METADATA = ("lines_to_next_cell", "lines_to_end_of_cell_marker", "cell_marker", "skipline", "noskipline")


def pairing_metadata() -> dict:
    """The notebook's ``jupytext`` metadata: the metadata filters of ``notebooks/jupytext.toml``.

    With them in the notebook, jupytext writes the notebook back as exactly its source whichever
    of the pair is newer, so JupyterLab opens either file (jupytext's contents manager compares
    the two when the notebook is the more recent) and saving changes neither.
    """
    config = load_jupytext_configuration_file(str(NB_DIR / "jupytext.toml"))
    return {
        "cell_metadata_filter": config.cell_metadata_filter,
        "notebook_metadata_filter": config.notebook_metadata_filter,
    }


def reads_source(text: str) -> nbformat.NotebookNode:
    """The notebook a lab source's text stands for (jupytext, percent format), conventions checked.

    Cells carry exactly the metadata written on their ``# %%`` line (jupytext's notes on blank
    lines are dropped). The sources have no notebook-level metadata: ``nb.metadata`` only holds
    jupytext's own entry; :func:`build` gives the notebook its kernelspec and
    :func:`pairing_metadata`.
    """
    nb = jupytext.reads(text, fmt=SOURCE_FORMAT)
    for cell in nb.cells:
        for key in LAYOUT_METADATA:
            cell.metadata.pop(key, None)
    check_cells(nb.cells)
    return nb


def read_source(src: Path) -> nbformat.NotebookNode:
    """:func:`reads_source` of the file ``src``."""
    return reads_source(Path(src).read_text(encoding="utf-8"))


def check_cells(cells) -> None:
    """Raise ValueError on a cell that breaks the course's notebook rules (docs/CONTRIBUTING.md).

    The rules are the grader's own (:func:`labkit.grading.cells.cell_problems`): an answer cell
    (nbgrader ``solution``) holds ``### BEGIN SOLUTION`` / ``### END SOLUTION``; a graded check cell
    has ``points``, the ``check`` and ``nbval-check-output`` tags and ``labkit.answer`` naming an
    answer cell before it; neither is tagged ``skip-grading``.
    """
    problems = cell_problems(cells)
    if problems:
        raise ValueError("; ".join(problems))


def build(src: Path, execute: bool = True, timeout: int = 600, dest: Path | None = None) -> Path:
    """Build ``notebooks/<src stem>.ipynb`` (or ``dest``) from the source ``src``; returns its path.

    An existing notebook keeps its notebook metadata and, for the cells jupytext matches to the
    source's (by content, then by position), their ids, outputs and run metadata
    (:func:`jupytext.combine.combine_inputs_with_outputs`, as ``jupytext --sync``); with ``execute``
    the notebook then runs top to bottom in ``notebooks/`` and must end without an error or a failed
    check. The notebook's ``jupytext`` metadata is :func:`pairing_metadata`.
    Written atomically.
    """
    src = Path(src)
    nb = read_source(src)
    dest = Path(dest) if dest is not None else NB_DIR / (src.stem + ".ipynb")
    if dest.exists():  # the notebook's metadata (kernelspec, language_info) and unchanged cells' outputs
        nb = combine_inputs_with_outputs(nb, nbformat.read(dest, as_version=4), fmt=SOURCE_FORMAT)
    else:
        nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.metadata["jupytext"] = pairing_metadata()
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
    nbformat.validate(nb)
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
    p.add_argument("--no-execute", action="store_true", help="update inputs only; keep the stored outputs")
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
