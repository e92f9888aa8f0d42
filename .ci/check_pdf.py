"""Check what `quarto render` and `quarto render handout` produced (run by .ci/render).

The site's index and one page per chapter listed in _quarto.yml, the book's PDF, and the
handout's PDF with 2 to 4 pages (counted by ``pdfinfo``).  Exits non-zero naming what is wrong.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def chapter_files(config: dict) -> list[str]:
    """Every chapter and appendix listed under ``book:`` in _quarto.yml."""
    found: list[str] = []

    def walk(items: list) -> None:
        for item in items:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, dict):
                walk(item.get("chapters", []))

    book = config["book"]
    walk(book.get("chapters", []))
    walk(book.get("appendices", []))
    return found


def pdf_pages(path: Path) -> int:
    """The page count ``pdfinfo`` reports."""
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def problems(root: Path = ROOT) -> list[str]:
    """What is missing or wrong in the rendered output."""
    config = yaml.safe_load((root / "_quarto.yml").read_text())
    out = root / config["project"].get("output-dir", "_book")
    wrong = []
    for qmd in chapter_files(config):
        page = out / Path(qmd).with_suffix(".html")
        if not page.is_file():
            wrong.append(f"missing page {page.relative_to(root)}")
    book_pdf = out / f"{config['book']['output-file']}.pdf"
    if not book_pdf.is_file():
        wrong.append(f"missing book PDF {book_pdf.relative_to(root)}")
    handout = root / "handout" / "_output" / "handout.pdf"
    if not handout.is_file():
        wrong.append(f"missing handout {handout.relative_to(root)}")
    else:
        n = pdf_pages(handout)
        if not 2 <= n <= 4:
            wrong.append(f"the handout has {n} pages, not 2 to 4")
    return wrong


if __name__ == "__main__":
    bad = problems()
    for line in bad:
        print(line, file=sys.stderr)
    if not bad:
        print("site pages, book PDF and handout (2-4 pages) are all there")
    sys.exit(1 if bad else 0)
