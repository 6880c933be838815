"""The lab sources (notebooks/src/NN_name.py, jupytext percent format) and the committed notebooks agree.

* jupytext's reading of each source gives, cell by cell, the committed notebook's cell types, sources
  and metadata (tags, nbgrader, labkit); a source edited without rebuilding fails here;
* ``scripts/nbbuild.py --no-execute`` rebuilds the committed notebook byte for byte (outputs kept);
* the pairing in notebooks/jupytext.toml maps each notebook to its source, and jupytext writing the
  committed notebook back gives the source unchanged (what ``jupytext --sync`` and JupyterLab save);
* no formatter pragma reaches what learners read;
* the build refuses answer and check cells that break the course's conventions.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import load_script
from jupytext.config import load_jupytext_config
from jupytext.paired_paths import paired_paths

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted((NOTEBOOKS / "src").glob("[0-9][0-9]_*.py"))
NBBUILD = load_script(ROOT / "scripts" / "nbbuild.py")
# Set by running the notebook, not written in the source (nbclient's per-cell timestamps).
RUN_RECORD = {"execution"}


def _committed(src: Path):
    return nbformat.read(NOTEBOOKS / (src.stem + ".ipynb"), as_version=4)


def _content(cell) -> dict:
    return {"metadata": {k: v for k, v in cell.metadata.items() if k not in RUN_RECORD}}


def test_every_lab_has_a_source_and_a_notebook():
    assert len(SOURCES) >= 11
    notebooks = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert notebooks == [s.stem for s in SOURCES]


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_source_and_committed_notebook_agree_cell_by_cell(src):
    built, committed = NBBUILD.read_source(src).cells, _committed(src).cells
    assert len(built) == len(committed), f"{src.name}: {len(built)} cells, the notebook has {len(committed)}"
    for i, (a, b) in enumerate(zip(built, committed)):
        where = f"{src.name} cell {i} ({b.source[:50]!r})"
        assert a.cell_type == b.cell_type, where
        assert a.source == b.source, f"{where}: source differs; rebuild with scripts/nbbuild.py"
        assert _content(a) == _content(b), f"{where}: metadata differs"


def test_the_comparison_catches_an_edit_without_rebuild():
    src = SOURCES[1]
    text = src.read_text(encoding="utf-8")
    committed = _committed(src).cells
    for old, new in [
        ('"points": 2', '"points": 3'),
        ('tags=["nbval-ignore-output"]\n', "\n"),
        ("sparsity", "sparseness"),
    ]:
        assert old in text
        cells = NBBUILD.reads_source(text.replace(old, new, 1)).cells
        assert any(a.source != b.source or _content(a) != _content(b) for a, b in zip(cells, committed)), (
            f"replacing {old!r} went unnoticed"
        )


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_build_without_execution_reproduces_the_committed_notebook(src, tmp_path):
    committed = NOTEBOOKS / (src.stem + ".ipynb")
    dest = tmp_path / committed.name
    shutil.copy(committed, dest)
    assert NBBUILD.build(src, execute=False, dest=dest) == dest
    assert dest.read_bytes() == committed.read_bytes()


def test_a_fresh_build_has_the_kernelspec_and_the_source_cells(tmp_path):
    src = SOURCES[0]
    nb = nbformat.read(NBBUILD.build(src, execute=False, dest=tmp_path / "fresh.ipynb"), as_version=4)
    assert nb.metadata == {
        "jupytext": NBBUILD.pairing_metadata(),
        "kernelspec": NBBUILD.KERNELSPEC,
        "language_info": {"name": "python"},
    }
    committed = _committed(src).cells
    assert [(c.cell_type, c.source, _content(c)) for c in nb.cells] == [
        (c.cell_type, c.source, _content(c)) for c in committed
    ]
    assert all("outputs" not in c or c.outputs == [] for c in nb.cells)


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_jupytext_pairs_the_notebook_with_its_source_and_writes_it_back_unchanged(src):
    notebook = NOTEBOOKS / (src.stem + ".ipynb")
    config = load_jupytext_config(str(notebook))
    assert config is not None, "notebooks/jupytext.toml not found"
    for path, ext in [(notebook, "ipynb"), (src, "py")]:  # from either side, the same pair
        formats = load_jupytext_config(str(path)).default_formats(str(path))
        paired = [Path(p) for p, _ in paired_paths(str(path), ext, formats)]
        assert paired == [notebook, src], formats
    text = jupytext.writes(_committed(src), fmt="py:percent", config=config)
    assert text == src.read_text(encoding="utf-8"), f"{src.name} is not what jupytext --sync would write"


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_committed_notebook_carries_the_pairing_metadata(src):
    assert _committed(src).metadata.get("jupytext") == NBBUILD.pairing_metadata()


@pytest.mark.parametrize("newer", ["ipynb", "py"])
def test_jupyterlab_opens_and_saves_the_source_as_a_notebook(newer, tmp_path):
    """jupytext's contents manager (what JupyterLab with jupytext uses) opens notebooks/src/NN.py as
    the notebook with its outputs, whichever file of the pair is newer, and saving it through
    JupyterLab rewrites neither file."""
    import asyncio
    import os
    from concurrent.futures import ThreadPoolExecutor

    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

    src = SOURCES[1]
    (tmp_path / "notebooks" / "src").mkdir(parents=True)
    for rel in ["jupytext.toml", f"src/{src.name}", f"{src.stem}.ipynb"]:
        shutil.copy(NOTEBOOKS / rel, tmp_path / "notebooks" / rel)
    pair = {"py": tmp_path / "notebooks" / "src" / src.name, "ipynb": tmp_path / "notebooks" / f"{src.stem}.ipynb"}
    stamp = pair[newer].stat().st_mtime + 60
    os.utime(pair[newer], (stamp, stamp))
    before = {k: p.read_bytes() for k, p in pair.items()}
    manager = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)(root_dir=str(tmp_path))
    path = f"notebooks/src/{src.name}"

    async def open_and_save():
        model = await manager.get(path, type="notebook", content=True)
        await manager.save({"type": "notebook", "format": "json", "content": model["content"]}, path)
        return model["content"]

    # In a thread of its own: a browser test earlier in this worker (playwright's sync API) may have left
    # an event loop running in this one, and asyncio.run refuses to start inside a running loop.
    with ThreadPoolExecutor(1) as pool:
        nb = pool.submit(asyncio.run, open_and_save()).result()
    committed = _committed(src)
    assert [c.source for c in nb.cells] == [c.source for c in committed.cells]
    assert [c.get("outputs") for c in nb.cells] == [c.get("outputs") for c in committed.cells]
    assert {k: p.read_bytes() for k, p in pair.items()} == before


def test_no_formatter_pragma_in_sources_or_notebooks():
    pragma = re.compile(r"#\s*fmt:\s*(skip|off|on)")
    for src in SOURCES:
        assert not pragma.search(src.read_text(encoding="utf-8")), src.name
        for cell in _committed(src).cells:
            assert not pragma.search(cell.source), f"{src.stem}.ipynb: {cell.source[:60]!r}"


ANSWER = (
    '# %% nbgrader={"grade": false, "grade_id": "a", "locked": false, "schema_version": 3, "solution": true, '
    '"task": false}\n'
    "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
)
CHECK = (
    '# %% labkit={"answer": "a"} nbgrader={"grade": true, "grade_id": "check_a", "locked": true, "points": 1, '
    '"schema_version": 3, "solution": false, "task": false} tags=["check", "nbval-check-output"]\n'
    'print("a: ok")\n'
)


def test_conventions_accept_an_answer_and_its_check():
    cells = NBBUILD.reads_source(ANSWER + CHECK).cells
    assert [c.metadata["nbgrader"]["grade_id"] for c in cells] == ["a", "check_a"]


@pytest.mark.parametrize(
    "text,expect",
    [
        (ANSWER.replace("    ### END SOLUTION\n", ""), "lacks ### BEGIN SOLUTION / ### END SOLUTION"),
        (ANSWER + CHECK.replace('"points": 1, ', ""), "points=None"),
        (ANSWER + CHECK.replace('"check", ', ""), "tags=['nbval-check-output']"),
        (ANSWER + CHECK.replace('labkit={"answer": "a"} ', ""), "labkit.answer=None"),
        (CHECK + ANSWER, "labkit.answer='a'"),
        ("# %% [markdown] " + ANSWER[5:], "on a markdown cell"),
    ],
)
def test_conventions_refuse_a_broken_cell(text, expect):
    with pytest.raises(ValueError) as info:
        NBBUILD.reads_source(text)
    assert expect in str(info.value)


@pytest.mark.slow
def test_build_executes_and_stops_on_a_failed_check(tmp_path):
    src = tmp_path / "99_tiny.py"
    src.write_text(ANSWER + CHECK + "# %%\nprint(f() + 1)\n", encoding="utf-8")
    dest = NBBUILD.build(src, execute=True, timeout=120, dest=tmp_path / "99_tiny.ipynb")
    nb = nbformat.read(dest, as_version=4)
    assert [c.outputs[0].text for c in nb.cells[1:]] == ["a: ok\n", "2\n"]
    assert nb.metadata["jupytext"] == NBBUILD.pairing_metadata()
    src.write_text(ANSWER + CHECK.replace("a: ok", "FAIL: wrong"), encoding="utf-8")
    with pytest.raises(RuntimeError, match="check cell 1 failed: FAIL: wrong"):
        NBBUILD.build(src, execute=True, timeout=120, dest=dest)
    assert nbformat.read(dest, as_version=4).cells[1].outputs[0].text == "a: ok\n"  # not overwritten
