"""The claims audit (scripts/claims_audit.py): the prose of every lab quotes only numbers the lab prints.

Each lab's markdown is read for measured results (decimals, percentages, × ratios, counts with
thousands separators); each must appear in that lab's stored outputs at the precision the prose gives,
unless the sentence cites its source. Re-executing a lab whose results move then fails here until
its prose is updated. The audit itself is tested on small notebooks: a planted stale number is
caught, and each of its exemptions holds only where it should.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
AUDIT = load_script(ROOT / "scripts" / "claims_audit.py")
LABS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook(markdown: str, output: str = "", code: str = "x = 1") -> dict:
    """A two-cell notebook: one markdown cell, one code cell whose stdout is ``output``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(code)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), cell]
    return json.loads(nbformat.writes(nb))


def flagged(markdown: str, output: str = "", code: str = "x = 1") -> list[str]:
    return [c.text for c in AUDIT.audit(notebook(markdown, output, code), facts=[])]


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_every_number_the_prose_states_is_printed_by_the_lab(lab):
    unbacked = AUDIT.audit(json.loads(lab.read_text(encoding="utf-8")))
    if unbacked:
        pytest.fail(
            f"{lab.name}: numbers in the prose that the lab's outputs do not print (re-run the lab and update "
            f"the text, print the number, or cite its source):\n{AUDIT.report(unbacked)}",
            pytrace=False,
        )


def test_a_planted_stale_number_in_a_real_lab_is_caught():
    lab = json.loads(LABS[0].read_text(encoding="utf-8"))
    planted = copy.deepcopy(lab)
    first_md = next(c for c in planted["cells"] if c["cell_type"] == "markdown")
    first_md["source"] = "".join(first_md["source"]) + "\n\nThe baseline reaches 91.37 % on validation.\n"
    before = [c.text for c in AUDIT.audit(lab)]
    after = [c.text for c in AUDIT.audit(planted)]
    assert after == before + ["91.37 %"] or after == ["91.37 %"] + before


def test_a_result_that_moves_on_re_execution_makes_its_sentence_stale():
    md = "Validation accuracy: 87.95 %, and the file is 42.0× smaller."
    assert flagged(md, "val accuracy 0.8795\nratio 42.03x\n") == []
    assert flagged(md, "val accuracy 0.8790\nratio 42.03x\n") == ["87.95 %"]  # the run moved by 0.05 pp
    assert flagged(md, "val accuracy 0.8795\nratio 41.2x\n") == ["42.0×"]


def test_what_counts_as_a_measured_result():
    out = "nothing relevant"
    assert flagged("We train 3 seeds for 10 epochs at 4 bits.", out) == []  # bare integers: settings
    assert flagged("It keeps 96% of the parameters.", out) == ["96%"]
    assert flagged("It moves 235,500 weights.", out) == ["235,500"]
    assert flagged("The ratio is 0.563.", out) == ["0.563"]
    assert flagged("It is 3.9× smaller, a gain of +0.28 pp.", out) == ["3.9×", "+0.28 pp"]


def test_precision_units_and_signs():
    assert flagged("It keeps 88.3 % of them.", "fraction 0.8829") == []  # fraction printed, percent in prose
    assert flagged("It keeps 88.29 % of them.", "88.3 %") == ["88.29 %"]  # more precise than printed
    assert flagged("It keeps 88 % of them.", "88.3 %") == []  # rounded from what was printed
    assert flagged("Accuracy drops by 1.64 pp.", "diff -1.64 pp") == []  # no sign in prose: either sign
    assert flagged("The difference is +1.64 pp.", "diff -1.64 pp") == ["+1.64 pp"]
    assert flagged("The difference is \u22121.64 pp.", "diff -1.64 pp") == []  # the typographic minus


def test_cited_sentences_code_math_and_questions_are_not_audited():
    out = "nothing relevant"
    assert flagged("Han et al. keep 8.2 % of the weights.", out) == []
    assert flagged("The 2015 paper reports 40× on LeNet-300-100.", out) == []
    assert flagged("Lab 06 measured 42.0× for this pipeline.", out) == []
    assert flagged("Set `sparsity=0.926` and compare $3(1 - s) < 4$ for 0.5 < s.", out) == ["0.5"]
    assert flagged("How would 0.2 pp of seed noise change the verdict?", out) == []
    assert flagged("Section 4.2 says so; the threshold of 4.2 step 2 is wrong.", out) == []
    # the citation covers its own sentence only
    assert flagged("Han et al. keep 8.2 % of the weights. We keep 7.4 %.", out) == ["7.4 %"]


def test_settings_stated_in_code_and_documented_data_facts_back_the_prose():
    md = "We retrain on 12,000 images at 50% of the target, with lr 0.005."
    assert flagged(md, "", code="N_TRAIN = 12_000\nSTEPS = [(0.5, 1)]\nLR = 5e-3") == []
    assert flagged(md, "", code="x = 1") == ["12,000", "50%", "0.005"]
    nb = notebook("The split holds 18,000 training images.", "")
    assert AUDIT.audit(nb, facts=[]) != [] and AUDIT.audit(nb) == []  # data/README.md documents 18,000
