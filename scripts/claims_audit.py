"""The claims audit: every measured number a lab's prose states is one the lab itself prints.

A lab's markdown quotes results ("88.3 % of the parameters", "42.0× smaller", "235,500 weights",
"+0.28 pp [+0.20, +0.37]"). When the lab is re-executed and a result moves, prose that is not
updated becomes a false statement. This audit finds such prose: each number in the markdown that
looks like a measured result must appear in the lab's own stored outputs at the precision the prose
gives it, unless the sentence cites where it comes from (a paper or another lab).

What counts as a number that states a measured result:

* a decimal (``0.563``, ``87.82``), a percentage (``88.3 %``, ``96%``), a ratio (``42×``, ``1.6x``), or
  a count written with thousands separators (``235,500``). Bare small integers ("3 seeds",
  "10 classes", "4 bits") are settings or definitions and are not audited.
* not inside inline code (`` `0.5` ``), a fenced block or LaTeX math (``$s = 2/3$``): a lab writes
  formulas, examples and code there, not measured results.

Where the number may come from:

* the lab's stored outputs (stream text, ``text/plain``, ``text/markdown``, ``text/html``, figure alt
  text). A prose number matches an output number when the output, rounded to the prose's number of
  decimals, gives it (the output must show at least as many decimals), read as the same unit or as
  a fraction ↔ percentage (``0.8782`` ↔ ``87.82 %``);
* a literal in the lab's own code cells (``N_TRAIN = 12_000``, ``LRS = [1e-3, 3e-3]``,
  ``TARGET = {"fc1": 0.93}``): that is a setting the notebook states in code, not a measurement;
* a fact about the course's data documented in ``data/README.md`` (the sizes of the splits,
  "18,000 training images"): data/README.md is the source every lab shares;
* a sentence that cites its source — "et al.", a year (2015), "arXiv", "the paper", "Table 2",
  a link, MIT's course, the article lab 08 audits, or another lab ("lab 06", "Lab 02") — is not
  audited, nor is a question (a sentence ending in "?" asks, it does not state a result), nor a
  place in a text ("section 4.2", "§ 5.4", "4.2 step 1").

A prose number with an explicit sign (``+0.28``, ``−1.64``) must match the sign; a number without one
matches either sign ("drops by 1.64 pp" for a printed ``-1.64``).

Run it on notebooks to see what it flags::

    python scripts/claims_audit.py notebooks/06_deep_compression.ipynb

``tests/test_claims.py`` runs it on every lab in ``make test``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DATA_README = Path(__file__).resolve().parent.parent / "data" / "README.md"
MINUS = "\u2212"  # the typographic minus sign labs print
THIN_SPACES = "\u2009\u202f\u00a0"

# Regions of markdown that hold code, formulas or links' targets rather than prose claims.
_FENCE = re.compile(r"```.*?```", re.S)
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>]+>")

# A sentence that names its source: a paper, a year, a table of a paper, a link, or another lab.
_CITATION = re.compile(
    r"et al\b|\barXiv\b|\bMIT\b|\barticle\b|\bpaper'?s?\b|\bTable\s+\d|https?://|\]\(|\b(?:19|20)\d\d\b|\b[Ll]abs?\s+\d\d\b",
)

_SECTION_REF = re.compile(r"(?:\b[Ss]ections?|§)\s*$")

# Numbers. Order matters: the first alternative that matches at a position wins.
_NUMBER = re.compile(
    r"""
    (?<![\w.])                                   # not inside a word or another number
    (?P<sign>[+\-\u2212±])?
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?         # 235,500 or 1,066,440.5
        |\d+\.\d+                                # 87.82
        |\d+)                                    # 96
    (?P<exp>[eE][+\-\u2212]?\d+)?                # 1.2e-3
    (?P<unit>\s?(?:%|×|x(?![A-Za-z0-9])|pp\b))?   # 88.3 %, 42×, 1.6x, +0.28 pp
    """,
    re.X,
)
_OUT_NUMBER = re.compile(r"(?<![\w.])[+\-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+\-]?\d+)?")
_CODE_NUMBER = re.compile(r"(?<![\w.])(?:\d[\d_]*)(?:\.\d+)?(?:[eE][+\-]?\d+)?")


@dataclass(frozen=True)
class Claim:
    """One number in a lab's prose that must be backed by the lab's outputs."""

    cell: int  # index of the markdown cell in the notebook
    text: str  # the number as written, with its unit
    value: float  # signed when the prose gives a sign
    decimals: int  # digits after the decimal point, as written
    signed: bool  # the prose wrote an explicit + or −
    percent: bool  # written with %
    sentence: str  # where it stands, for the report


@dataclass(frozen=True)
class Printed:
    """One number in a lab's outputs: its value and how many decimals it was printed with."""

    value: float
    decimals: int


def _float(text: str) -> float:
    return float(text.replace(",", "").replace("_", "").replace(MINUS, "-"))


def _decimals(text: str) -> int:
    mantissa = re.split(r"[eE]", text)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def prose(markdown: str) -> str:
    """The markdown with code, math, link targets and HTML tags blanked out (not claims)."""
    for pattern in (_FENCE, _DISPLAY_MATH, _INLINE_MATH, _INLINE_CODE, _LINK_TARGET, _HTML_TAG):
        markdown = pattern.sub(" ", markdown)
    for space in THIN_SPACES:
        markdown = markdown.replace(space, " ")
    return markdown


def sentences(text: str) -> list[str]:
    """Sentences, list items and table rows: the units a citation covers."""
    pieces = []
    for line_block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*]|\d+\.)\s)|\n(?=\|)", text):
        pieces.extend(re.split(r"(?<=[.;:!?])\s+(?=[A-Z(*])", line_block))
    return [p.strip() for p in pieces if p.strip()]


def claims_in(markdown: str, cell: int = 0) -> list[Claim]:
    """The audited numbers of one markdown cell (see the module docstring for what is audited)."""
    found = []
    for sentence in sentences(prose(markdown)):
        if _CITATION.search(sentence) or sentence.rstrip("*_ )").endswith("?"):
            continue
        for m in _NUMBER.finditer(sentence):
            num, unit, exp = m["num"], (m["unit"] or "").strip(), m["exp"]
            if exp:  # 1e-3: a setting written in scientific notation
                continue
            if _SECTION_REF.search(sentence[: m.start()]) or sentence[m.end() :].startswith(" step"):
                continue  # "section 4.2", "§ 5.4", "4.2 step 1": a place in a text, not a result
            thousands = "," in num
            if not (thousands or "." in num or unit in {"%", "×", "x"}):
                continue  # bare integers ("3 seeds") and integer pp are not audited
            if unit == "x" and "." not in num and not thousands and int(num) < 2:
                continue
            sign = m["sign"] or ""
            value = _float(num) * (-1.0 if sign in ("-", MINUS) else 1.0)
            signed = sign in ("+", "-", MINUS)
            found.append(Claim(cell, m.group(0).strip(), value, _decimals(num), signed, unit == "%", sentence))
    return found


def _output_texts(cell) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]))
        for mime, payload in out.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append("".join(payload) if isinstance(payload, list) else str(payload))
        for meta in out.get("metadata", {}).values():  # figure alt text
            if isinstance(meta, dict) and "alt" in meta:
                texts.append(str(meta["alt"]))
    return texts


def printed_numbers(nb: dict) -> list[Printed]:
    """Every number in the notebook's stored outputs, with the decimals it was printed with."""
    numbers = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for text in _output_texts(cell):
            for space in THIN_SPACES:
                text = text.replace(space, " ")
            for m in _OUT_NUMBER.finditer(text):
                numbers.append(Printed(_float(m.group(0)), _decimals(m.group(0))))
    return numbers


def code_literals(nb: dict) -> list[Printed]:
    """Every numeric literal in the notebook's code cells (settings the notebook states in code)."""
    numbers = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = re.sub(r"#.*", "", "".join(cell["source"]))  # comments are prose, not code
        for m in _CODE_NUMBER.finditer(source):
            numbers.append(Printed(_float(m.group(0)), _decimals(m.group(0))))
    return numbers


def _rounds_to(x: float, shown: int, claim: Claim, scale: float, extra: int) -> bool:
    """Does ``x`` (printed with ``shown`` decimals), times ``scale``, round to the claim's number?"""
    if shown + extra < claim.decimals:  # the prose cannot be more precise than what was printed
        return False
    y = x * scale
    if not claim.signed:
        y = abs(y)
    target = claim.value if claim.signed else abs(claim.value)
    return math.isclose(round(y, claim.decimals), target, abs_tol=0.5 * 10.0 ** -(claim.decimals + 3))


def backed(claim: Claim, printed: list[Printed], literals: list[Printed]) -> bool:
    """True when an output number (or a code literal) gives the claim at its written precision."""
    for p in printed:
        if _rounds_to(p.value, p.decimals, claim, 1.0, 0):
            return True
        if claim.percent and _rounds_to(p.value, p.decimals, claim, 100.0, -2):  # 0.8782 -> 87.82 %
            return True
    for p in literals:  # a setting: the same value, or the same fraction as a percentage
        targets = {abs(claim.value)} | ({abs(claim.value) / 100} if claim.percent else set())
        if any(math.isclose(abs(p.value), t, rel_tol=1e-9, abs_tol=1e-12) for t in targets):
            return True
    return False


def data_facts(readme: Path = DATA_README) -> list[Printed]:
    """The numbers of ``data/README.md``: documented facts about the data that every lab may quote."""
    if not readme.is_file():
        return []
    return [Printed(_float(m.group(0)), _decimals(m.group(0))) for m in _OUT_NUMBER.finditer(readme.read_text("utf-8"))]


def audit(nb: dict, facts: list[Printed] | None = None) -> list[Claim]:
    """The prose numbers of a notebook (a parsed .ipynb dict) that nothing in the notebook backs."""
    printed = printed_numbers(nb) + (data_facts() if facts is None else facts)
    literals = code_literals(nb)
    unbacked = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            unbacked += [c for c in claims_in("".join(cell["source"]), index) if not backed(c, printed, literals)]
    return unbacked


def report(claims: list[Claim]) -> str:
    return "\n".join(f"  cell {c.cell}: {c.text!r} in: {c.sentence[:160]}" for c in claims)


def main(paths: list[str]) -> int:
    status = 0
    for path in paths:
        unbacked = audit(json.loads(Path(path).read_text(encoding="utf-8")))
        print(f"{path}: {len(unbacked)} number(s) in the prose that the outputs do not print")
        if unbacked:
            print(report(unbacked))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
