"""Read the Quarto book the way Quarto does, for tests: chapters, cells, labels, refs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```\{python\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)
OPTION = re.compile(r"^#\|\s*([\w-]+):\s*(.*)$")
REF = re.compile(r"(?<![\w@])@((?:sec|fig|tbl|eq|thm|lst)-[\w-]+)")
HEADING_ID = re.compile(r"\{#((?:sec|fig|tbl|eq)-[^\s}]+)[^}]*\}")


@dataclass
class Cell:
    """One ``{python}`` cell: its options and code."""

    options: dict[str, str]
    code: str
    line: int


@dataclass
class Chapter:
    """A parsed ``.qmd`` file."""

    path: Path
    text: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def prose(self) -> str:
        """The text outside code cells."""
        return FENCE.sub("", self.text)

    @property
    def labels(self) -> list[str]:
        """Every label defined: cell labels and heading / div ids."""
        cell = [c.options["label"] for c in self.cells if "label" in c.options]
        return cell + HEADING_ID.findall(self.prose)

    @property
    def refs(self) -> list[str]:
        """Every ``@ref`` in the prose."""
        return REF.findall(self.prose)


def parse_chapter(path: Path) -> Chapter:
    """Split a ``.qmd`` into prose and python cells with their ``#|`` options."""
    text = path.read_text(encoding="utf-8")
    ch = Chapter(path=path, text=text)
    for m in FENCE.finditer(text):
        opts, code = {}, []
        for line in m.group(1).splitlines():
            o = OPTION.match(line)
            if o and not code:
                opts[o.group(1)] = o.group(2).strip().strip('"')
            else:
                code.append(line)
        ch.cells.append(Cell(opts, "\n".join(code), text[: m.start()].count("\n") + 1))
    return ch


def book_chapters(root: Path = ROOT) -> list[Path]:
    """Every file listed in ``_quarto.yml``'s book chapters and appendices, in order."""
    cfg = yaml.safe_load((root / "_quarto.yml").read_text(encoding="utf-8"))
    out: list[Path] = []

    def walk(entries: list) -> None:
        for e in entries:
            if isinstance(e, str):
                out.append(root / e)
            elif isinstance(e, dict):
                if "part" in e and str(e["part"]).endswith(".qmd"):
                    out.append(root / e["part"])
                walk(e.get("chapters", []))

    walk(cfg["book"].get("chapters", []))
    walk(cfg["book"].get("appendices", []))
    return out


def to_notebook(ch: Chapter) -> nbformat.NotebookNode:
    """The chapter as a notebook: markdown between code cells, as Quarto's engine builds it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    pos = 0
    for m in FENCE.finditer(ch.text):
        if ch.text[pos: m.start()].strip():
            nb.cells.append(nbformat.v4.new_markdown_cell(ch.text[pos: m.start()]))
        nb.cells.append(nbformat.v4.new_code_cell(m.group(1).rstrip("\n")))
        pos = m.end()
    if ch.text[pos:].strip():
        nb.cells.append(nbformat.v4.new_markdown_cell(ch.text[pos:]))
    return nb


LINKED_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _copy_linked_images(markdown: str, source: Path, image_dir: Path) -> None:
    """Copy the image files that Markdown output links to (relative to the chapter's folder,
    where the kernel ran) into ``image_dir``, under the same relative path, as Quarto
    finds them beside the chapter."""
    import shutil

    for rel in LINKED_IMAGE.findall(markdown):
        src, dst = source / rel, image_dir / rel
        if src.is_file() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


def to_pdf_markdown(ch: Chapter, nb: nbformat.NotebookNode, image_dir: Path, *,
                    numbered: bool = True) -> str:
    """The executed chapter as the Markdown Quarto hands to pandoc for the PDF (echo off).

    Figures become labelled images, tables get their caption and label, ``asis``
    output is inlined, and cross-references become Typst references.  Used to
    compile each chapter with pandoc + Typst as a stand-in for ``quarto render``.
    """
    import base64

    code = iter(c for c in nb.cells if c.cell_type == "code")
    parts: list[str] = []
    pos = 0
    for m, cell in zip(FENCE.finditer(ch.text), ch.cells, strict=True):
        parts.append(ch.text[pos: m.start()])
        pos = m.end()
        executed = next(code)
        if cell.options.get("include") == "false":
            continue
        label = cell.options.get("label", "")
        for i, out in enumerate(executed.outputs):
            data = out.get("data", {})
            if "image/png" in data:
                img = image_dir / f"{ch.path.stem}-{label or cell.line}-{i}.png"
                img.write_bytes(base64.b64decode(data["image/png"]))
                cap = cell.options.get("fig-cap", "")
                parts.append(f"\n![{cap}]({img.name}){{#{label}}}\n" if label.startswith("fig-")
                             else f"\n![]({img.name})\n")
            elif "text/markdown" in data:
                _copy_linked_images(data["text/markdown"], ch.path.parent, image_dir)
                parts.append("\n" + data["text/markdown"] + "\n")
                if label.startswith("tbl-"):
                    parts.append(f"\n: {cell.options.get('tbl-cap', '')} {{#{label}}}\n")
    parts.append(ch.text[pos:])
    text = "".join(parts)
    text = REF.sub(lambda r: f"`@{r.group(1)}`{{=typst}}", text)
    if not numbered:
        return text
    return '```{=typst}\n#set heading(numbering: "1.1")\n```\n\n' + text
