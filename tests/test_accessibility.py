"""The rendered course is accessible (WCAG 2.1 AA).

* every image output in a committed lab notebook carries alternative text (output metadata ``alt``,
  written by ``labkit.plot.show``), and the course's HTML puts it on the ``<img>``;
* the code-highlighting style of ``make course`` meets AA contrast (4.5:1) for every token colour;
* every committed lab notebook, rendered to HTML the way ``make course`` does (without re-running:
  stored outputs), has 0 serious or critical violations in an axe-core audit (axe-playwright-python,
  which bundles axe-core) run in Debian's Chromium. The template's own markup counts too.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import load_script, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
LABS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")


def _nbbuild():
    return load_script(ROOT / "scripts" / "nbbuild.py")


NBBUILD = _nbbuild()


def images_without_alt(nb) -> list[str]:
    """``"cell N (image/png)"`` for every image output whose metadata has no non-empty ``alt``."""
    missing = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            for mime in IMAGE_TYPES:
                if mime in out.get("data", {}):
                    alt = out.get("metadata", {}).get(mime, {}).get("alt", "")
                    if not (isinstance(alt, str) and alt.strip()):
                        missing.append(f"cell {i} ({mime})")
    return missing


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_every_image_output_has_alt_text(lab):
    nb = nbformat.read(lab, as_version=4)
    assert images_without_alt(nb) == [], f"{lab.name}: images without alt text (show figures with labkit.plot.show)"


def test_alt_text_check_fails_on_an_image_without_alt():
    png = "iVBORw0KGgo="
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x")]
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    assert images_without_alt(nb) == ["cell 0 (image/png)"]
    nb.cells[0].outputs[0].metadata = {"image/png": {"alt": "  "}}
    assert images_without_alt(nb) == ["cell 0 (image/png)"]
    nb.cells[0].outputs[0].metadata = {"image/png": {"alt": "a rising line"}}
    assert images_without_alt(nb) == []


def test_course_html_puts_alt_text_on_the_image(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import base64
    import io

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    alt = 'A rising line: "accuracy" grows <fast> & steadily'
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot.show(fig, alt=...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(buf.getvalue()).decode(), "text/plain": alt},
            metadata={"image/png": {"alt": alt}},
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), cell]
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    html = NBBUILD.render_html(path, tmp_path / "html").read_text()
    from bs4 import BeautifulSoup

    (img,) = BeautifulSoup(html, "html.parser").select("img")
    assert img["alt"] == alt
    assert '<html lang="en">' in html and "<main>" in html


def test_highlighting_style_meets_aa_contrast():
    from pygments.styles import get_style_by_name

    from labkit.plot import contrast_ratio

    style = get_style_by_name(NBBUILD.HIGHLIGHT_STYLE)
    background = style.background_color or "#ffffff"
    low = {}
    for token, st in style:
        if st["color"]:
            ratio = contrast_ratio("#" + st["color"], background)
            if ratio < 4.5:
                low[str(token)] = round(ratio, 2)
    assert not low, f"{NBBUILD.HIGHLIGHT_STYLE}: token colours below 4.5:1 on {background}: {low}"
    # the check can fail: pygments' default style has low-contrast tokens
    default = get_style_by_name("default")
    assert any(s["color"] and contrast_ratio("#" + s["color"], default.background_color) < 4.5 for _, s in default)


@pytest.fixture(scope="module")
def browser_page(browser):
    """A page of the session's Chromium (tests/conftest.py) and axe-core."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError as exc:
        skip_or_fail("LABKIT_REQUIRE_BROWSER", f"axe-playwright-python not installed ({exc}; extra 'dev')")
    page = browser.new_page()
    try:
        yield page, Axe()
    finally:
        page.close()


def serious_violations(page, axe, html_path: Path) -> dict:
    """``{rule id: number of elements}`` of axe's serious and critical violations on one page."""
    page.goto(html_path.resolve().as_uri())
    results = axe.run(page)
    return {
        v["id"]: len(v["nodes"]) for v in results.response["violations"] if v.get("impact") in ("serious", "critical")
    }


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_rendered_lab_has_no_serious_axe_violations(lab, browser_page, tmp_path):
    page, axe = browser_page
    html = NBBUILD.render_html(lab, tmp_path)
    found = serious_violations(page, axe, html)
    assert found == {}, f"{lab.name}: axe-core finds serious/critical violations {found}"


@pytest.mark.slow
@pytest.mark.browser
def test_axe_audit_catches_low_contrast(browser_page, tmp_path):
    page, axe = browser_page
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main>'
        '<p style="color:#b0b0b0;background:#fff">In [1]:</p></main></body></html>'
    )
    assert serious_violations(page, axe, bad) == {"color-contrast": 1}
