"""Driving JupyterLab like a person: open a notebook, use the menus, type into a cell, read what shows.

Everything here reads the page (the DOM JupyterLab renders), except :func:`saved_notebook`, which
saves through the UI and reads the file back to see the outputs' types exactly as the browser held
them. Waits poll the page and are generous: on a busy 2-core machine a lab takes minutes.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # playwright is imported only when a browser test really runs
    from playwright.sync_api import Page

# The cells of the notebook on show (JupyterLab hides, but keeps, the other tabs' notebooks).
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Notebook-cell"


def js(code: str) -> str:
    """``code`` with the selector of the cells on show in place of the word CELLS."""
    return code.replace("CELLS", repr(CELLS))


# A code cell's prompt: "[ ]:" not run, "[*]:" queued or running, "[12]:" done.
PROMPTS_JS = js("""() => [...document.querySelectorAll(CELLS)]
    .filter(c => c.classList.contains('jp-CodeCell'))
    .map(c => (c.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim())""")

CELLS_JS = js("""() => [...document.querySelectorAll(CELLS)].map(c => ({
    type: c.classList.contains('jp-CodeCell') ? 'code' : (c.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw'),
    prompt: (c.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim(),
    outputs: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => ({
        mime: o.getAttribute('data-mime-type') || '',
        text: o.textContent,
    })),
    images: [...c.querySelectorAll('.jp-OutputArea-output img')].map(i => ({
        ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth, height: i.naturalHeight,
    })),
    math: c.querySelectorAll('.jp-RenderedMarkdown mjx-container').length,
    mathErrors: c.querySelectorAll('.jp-RenderedMarkdown mjx-merror, .jp-RenderedMarkdown [data-mjx-error]').length,
}))""")

STATUS_JS = """() => {
    const e = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
    return e ? e.getAttribute('data-status') : null;
}"""

# Anything floating over the notebook: notifications (the news question, update notices) and dialogs.
POPUPS_JS = """() => [...document.querySelectorAll('.Toastify__toast, .jp-toast, .jp-Dialog')]
    .map(e => e.textContent.trim().slice(0, 200))"""

# A line a Python traceback ends with ("ZeroDivisionError: ...", "NameError: name 'x' ...").
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*[A-Za-z_][\w.]*(Error|Exception)(: |$)", re.M)
# Inline or display math in markdown source, after code spans and fences are removed.
MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\s][^$]*?(?<!\\)\$", re.S)
CODE = re.compile(r"```.*?```|`[^`]*`", re.S)


def source(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def output_text(cell) -> str:
    """The stream and text/plain text a cell has stored in an .ipynb, joined."""
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(source({"source": o.get("text", "")}))
        elif "text/plain" in o.get("data", {}):
            parts.append(source({"source": o["data"]["text/plain"]}))
    return "".join(parts)


def has_math(markdown: str) -> bool:
    return bool(MATH.search(CODE.sub("", markdown)))


def is_check(cell) -> bool:
    return "check" in cell.get("metadata", {}).get("tags", [])


def open_notebook(page: Page, url: str, n_cells: int, timeout: float = 180) -> None:
    """Open ``url`` and wait until the notebook shows ``n_cells`` cells and its kernel is idle."""
    page.goto(url, timeout=timeout * 1000)
    page.wait_for_function(
        js("n => document.querySelectorAll(CELLS).length === n"),
        arg=n_cells,
        timeout=timeout * 1000,
        polling=500,
    )
    wait_kernel_idle(page, timeout)


def wait_kernel_idle(page: Page, timeout: float = 180) -> None:
    page.wait_for_function(f"() => ({STATUS_JS})() === 'idle'", timeout=timeout * 1000, polling=500)


def menu(page: Page, top: str, item: str) -> None:
    """Click ``top`` in the menu bar, then its entry ``item`` (exact labels, as a person reads them)."""
    page.wait_for_selector(".lm-Menu", state="detached", timeout=10_000)  # no menu still open
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    entry = page.locator(".lm-Menu-content .lm-Menu-item:not(.lm-mod-disabled)").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$"))
    )
    entry.first.click()
    page.wait_for_selector(".lm-Menu", state="detached", timeout=10_000)


def run_all(page: Page, clear_first: bool = True, timeout: float = 180) -> None:
    """Clear every output (Edit menu) so that nothing stale remains, then Run > Run All Cells.

    Returns once the run has visibly started (a cell queued, running or done). The first cell waits
    for the kernel to start, which on a loaded 2-core machine once took over 60 s.
    """
    if clear_first:
        menu(page, "Edit", "Clear Outputs of All Cells")
        page.wait_for_function(f"() => ({PROMPTS_JS})().every(p => p === '[ ]:')", timeout=30_000, polling=250)
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    started = f"() => ({PROMPTS_JS})().some(p => p !== '[ ]:' && p !== '')"
    # Run All marks every cell queued ([*]) at once, even while the kernel starts; when no prompt has
    # changed a minute later the menu click was lost, and clicking again cannot run a cell twice.
    for attempt in range(3):
        menu(page, "Run", "Run All Cells")
        try:
            page.wait_for_function(started, timeout=timeout * 1000 / 3, polling=100)
            return
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise


def wait_run_finished(page: Page, timeout: float, settle: float = 2.0) -> list[str]:
    """Wait until no cell is queued or running and the kernel is idle, for ``settle`` seconds on end.

    Returns the prompts. Raises TimeoutError (with the prompts) if the run is not over in ``timeout``.
    """
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS_JS)
        done = "[*]:" not in prompts and page.evaluate(STATUS_JS) == "idle"
        if done:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return prompts
        else:
            quiet_since = None
        page.wait_for_timeout(1000)
    raise TimeoutError(f"the notebook was still running after {timeout:.0f} s; prompts: {page.evaluate(PROMPTS_JS)}")


def cells(page: Page) -> list[dict]:
    """What each cell shows now: type, prompt, outputs (mime type, text), images, rendered math."""
    return page.evaluate(CELLS_JS)


def popups(page: Page) -> list[str]:
    """The text of every notification or dialog on the page (none, when the kit's settings work)."""
    return page.evaluate(POPUPS_JS)


def shown_errors(shown: list[dict]) -> list[str]:
    """Error tracebacks, "Error displaying widget" and the like, as seen in the outputs."""
    found = []
    for i, c in enumerate(shown):
        for o in c["outputs"]:
            bad = o["mime"] == "application/vnd.jupyter.stderr" and TRACEBACK.search(o["text"])
            if bad or "Error displaying widget" in o["text"]:
                found.append(f"cell {i} {c['prompt']} shows: {o['text'].strip()[:400]}")
    return found


def wait_math(page: Page, cell_indexes: list[int], timeout: float = 60) -> None:
    """Wait until MathJax has typeset math in every one of ``cell_indexes`` (markdown cells)."""
    typeset = js("""idx => { const cs = document.querySelectorAll(CELLS);
        return idx.every(i => cs[i] && cs[i].querySelector('.jp-RenderedMarkdown mjx-container')); }""")
    page.wait_for_function(typeset, arg=cell_indexes, timeout=timeout * 1000, polling=500)


def save(page: Page) -> None:
    """File > Save Notebook, then wait until the tab no longer shows unsaved changes."""
    menu(page, "File", "Save Notebook")
    page.wait_for_function(
        "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')", timeout=60_000, polling=250
    )


def saved_notebook(page: Page, path: Path) -> dict:
    """Save through the UI and read the notebook file back (outputs exactly as the browser held them)."""
    before = path.stat().st_mtime_ns
    save(page)
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    return json.loads(path.read_text())


def next_frames(page: Page, n: int = 3) -> None:
    """Wait until the browser has drawn ``n`` more frames: layout and paint caught up with the last change.

    Lumino lays widgets out in an animation-frame callback after a resize or a click, so a few frames
    later the page shows the change (instead of a fixed sleep that is too long on a fast machine and
    too short on a busy one).
    """
    frames = "n => new Promise(done => { const step = k => (k ? requestAnimationFrame(() => step(k - 1)) : done());"
    page.evaluate(frames + " step(n); })", n)


def full_page_screenshot(page: Page, path: Path, width: int = 1280, max_height: int = 32_000) -> int:
    """Photograph the whole notebook: hide the side bar, grow the window to the notebook's height.

    JupyterLab fixes its page to the window and scrolls the notebook inside it, so a "full page"
    screenshot only shows the window; making the window as tall as the notebook shows everything.
    Returns the height in pixels.
    """
    # Fold the file browser away (a click on the open side-bar tab): the notebook gets the width.
    side = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if side.count():
        side.first.click()
        next_frames(page)
    outer = "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"
    chrome = page.evaluate(f"() => window.innerHeight - {outer}.clientHeight")
    inner = page.evaluate(f"() => {outer}.scrollHeight")
    height = min(int(chrome + inner + 20), max_height)
    page.set_viewport_size({"width": width, "height": height})
    next_frames(page)  # relayout
    page.evaluate(f"() => {{ {outer}.scrollTop = 0; }}")
    next_frames(page)  # repaint
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return height


def cell_editor(page: Page, index: int):
    """The CodeMirror editor of cell ``index`` (0-based, all cells counted)."""
    return page.locator(CELLS).nth(index).locator(".cm-content")


def editor_text(page: Page, index: int) -> str:
    """The text in the editor of cell ``index``, line by line as CodeMirror holds it."""
    return page.evaluate(
        js("""i => { const c = document.querySelectorAll(CELLS)[i];
            return [...c.querySelectorAll('.cm-content .cm-line')].map(l => l.textContent).join('\\n'); }"""),
        index,
    )


def type_into_cell(page: Page, index: int, code: str) -> None:
    """Replace the text of cell ``index`` by ``code``, typed key by key into its CodeMirror editor.

    Click into the editor, select all, then type line by line. After each Enter the editor indents
    the new line itself; Shift+Home selects that indentation so that the line typed (with its own
    indentation) replaces it. Read the text back with :func:`editor_text` to be sure.
    """
    cell_editor(page, index).click()
    page.keyboard.press("Control+a")
    for n, line in enumerate(code.split("\n")):
        if n:
            page.keyboard.press("Enter")
            page.keyboard.press("Shift+Home")
        if line:
            page.keyboard.type(line)
        else:
            page.keyboard.press("Delete")  # the selected indentation, if any (we are at the end of the text)
