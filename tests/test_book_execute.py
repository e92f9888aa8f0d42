"""Execute every chapter of the book through a Jupyter kernel, as Quarto does.

Each chapter listed in ``_quarto.yml`` is turned into a notebook and run with
nbclient, with the chapter's folder as working directory (Quarto's default
``execute-dir: file``).  A cell error fails the test.  The outputs are then
checked against the chapter contract: figures are single PNGs, tables are
Markdown, and no warning text reaches the page.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pypandoc
import pytest
import typst
from nbclient import NotebookClient

from analysis.studies import get_study
from analysis.studies.movielens import MovieLensConfig
from tests.qmd import REF, ROOT, book_chapters, parse_chapter, to_notebook, to_pdf_markdown

# One test process (pytest-xdist group) executes the book, once per data source.
pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

CHAPTERS = book_chapters()


def execute(path, env: dict[str, str], cwd: Path | None = None):
    """Run one chapter (in its folder, or ``cwd``); return the parsed chapter and the
    executed notebook."""
    ch = parse_chapter(path)
    nb = to_notebook(ch)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False,
                       resources={"metadata": {"path": str(cwd or path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return ch, nb


def expected_source(ch, real_movielens: bool) -> str:
    """What a chapter's data callout must say: real only for MovieLens studies given real
    data, and "simulation" for a study that is a simulation by design."""
    m = re.search(r'setup_chapter\("(\w+)"', ch.cells[0].code if ch.cells else "")
    if m and getattr(get_study(m.group(1)), "DESIGN", "") == "simulation":
        return "simulation"
    if m and real_movielens and issubclass(get_study(m.group(1)).Config, MovieLensConfig):
        return "real"
    return "synthetic"


def check_table_converts(markdown: str, label: str) -> None:
    """Pandoc (Quarto's converter) reads the table as a table for HTML and Typst,
    and the Typst compiler accepts the result."""
    # Cross-references inside cells resolve in the whole book (compile_pdf); alone they
    # would be citations, so they stand in as plain text here.
    text = REF.sub(lambda r: r.group(1), f"{markdown}\n\n: Caption {{#{label}}}\n")
    html = pypandoc.convert_text(text, "html", format="markdown")
    assert "<table" in html, f"{label}: pandoc did not read a table"
    typ = pypandoc.convert_text(text, "typst", format="markdown")
    assert "#table(" in typ, f"{label}: no Typst table"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "table.typ"
        src.write_text(typ, encoding="utf-8")
        assert typst.compile(str(src))[:4] == b"%PDF"


def check_outputs(ch, nb, real_movielens: bool) -> None:
    """Figures: one PNG each; tables: Markdown; no stderr; the data callout names the source."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == len(ch.cells)
    for cell, executed in zip(ch.cells, code, strict=True):
        label = cell.options.get("label", f"cell at line {cell.line}")
        outputs = executed.outputs
        stderr = [o for o in outputs if o.get("name") == "stderr"]
        assert not stderr, f"{ch.path.name} {label} wrote to stderr: {stderr[0]['text'][:300]}"
        mimes = [m for o in outputs for m in o.get("data", {})]
        assert "image/svg+xml" not in mimes, f"{label}: SVG output breaks the PDF"
        if label.startswith("fig-"):
            assert mimes.count("image/png") == 1, f"{label}: expected one PNG, got {mimes}"
        if label.startswith("tbl-"):
            md = [o["data"]["text/markdown"] for o in outputs
                  if "text/markdown" in o.get("data", {})]
            assert md and "|" in md[0] and "<table" not in md[0], \
                f"{label}: tables must be Markdown pipe tables"
            check_table_converts(md[0], label)
        if "data_callout()" in cell.code:
            text = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
            source = expected_source(ch, real_movielens)
            title = {"synthetic": "## Synthetic data", "real": "## Real data",
                     "simulation": "## Simulated data with a planted truth"}[source]
            assert title in text, f"{ch.path.name}: the data callout must say {title!r}"


def compile_pdf(executed: list, workdir: Path, name: str, *, numbered: bool = True,
                variables: dict[str, str] | None = None, fmt: str = "pdf"):
    """pandoc + Typst on the executed chapters, joined as one book.

    A stand-in for Quarto's Typst render: it proves every output parses, every
    figure embeds and every cross-reference resolves.  ``variables`` are pandoc's
    Typst template variables (papersize, margin, fontsize); ``fmt="png"`` returns
    one PNG per page.  Set ``ANALYSIS_PDF_PREVIEW`` to a folder to keep the PDF.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    md = "\n\n".join(to_pdf_markdown(ch, nb, workdir, numbered=numbered)
                     for ch, nb in executed)
    src = workdir / f"{name}.typ"
    args = ["--standalone", *(f"--variable={k}:{v}" for k, v in (variables or {}).items())]
    src.write_text(pypandoc.convert_text(md, "typst", format="markdown", extra_args=args),
                   encoding="utf-8")
    if fmt == "png":
        pages = typst.compile(str(src), root=str(workdir), format="png", ppi=60)
        return pages if isinstance(pages, list) else [pages]
    pdf = typst.compile(str(src), root=str(workdir))
    keep = os.environ.get("ANALYSIS_PDF_PREVIEW")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{name}.pdf").write_bytes(pdf)
    return pdf


def book_env(cache: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a render gives the kernel: the project, a cache, inline PNG figures."""
    # The profile and configuration are set here, not left to the autouse fixture: the
    # module-scoped book fixtures run before it.
    return {"PYTHONPATH": str(ROOT), "ANALYSIS_CACHE_DIR": str(cache / "cache"),
            "ANALYSIS_CONFIG": str(ROOT / "analysis.toml"),
            "ANALYSIS_PROFILE": os.environ.get("ANALYSIS_TEST_PROFILE", "quick"),
            "MPLBACKEND": "module://matplotlib_inline.backend_inline", **(extra_env or {})}


def execute_book(cache: Path, extra_env: dict[str, str]) -> list:
    """Execute every chapter in book order with one shared cache, as a render does."""
    env = book_env(cache, extra_env)
    return [execute(path, env) for path in CHAPTERS]


@pytest.fixture(scope="module")
def book_cache(quick_runs, quick_root):
    """The session's result cache, as a render shares data/cache: the chapters read the
    quick runs, and studies that do not read MovieLens are computed once for both book
    runs."""
    quick_runs.compute()
    return quick_root


@pytest.fixture(scope="module")
def synthetic_book(book_cache):
    return execute_book(book_cache, {})


@pytest.mark.parametrize("index", range(len(CHAPTERS)), ids=[p.stem for p in CHAPTERS])
def test_chapter_executes(synthetic_book, index):
    ch, nb = synthetic_book[index]
    check_outputs(ch, nb, real_movielens=False)


def test_book_compiles_to_pdf(synthetic_book, tmp_path):
    assert compile_pdf(synthetic_book, tmp_path, "book-synthetic")[:4] == b"%PDF"


def test_chapters_execute_on_real_movielens(movielens_dir, book_cache, tmp_path):
    """Every chapter again, with the real ml-latest-small found through the env var."""
    book = execute_book(book_cache, {"ANALYSIS_MOVIELENS_DIR": str(movielens_dir)})
    for ch, nb in book:
        check_outputs(ch, nb, real_movielens=True)
    index_text = str(book[0][1].cells)
    assert "ml-latest-small" in index_text and "real" in index_text
    assert compile_pdf(book, tmp_path / "pdf", "book-real")[:4] == b"%PDF"


HANDOUT = ROOT / "handout" / "handout.qmd"


def handout_variables() -> dict[str, str]:
    """The handout's Typst page settings, read from handout/_quarto.yml."""
    import yaml

    typ = yaml.safe_load((HANDOUT.parent / "_quarto.yml").read_text())["format"]["typst"]
    return {"papersize": typ["papersize"], "fontsize": typ["fontsize"],
            "margin.x": typ["margin"]["x"], "margin.y": typ["margin"]["y"]}


def test_handout_executes_and_fits_on_two_to_four_pages(synthetic_book, book_cache, tmp_path):
    """The handout runs from the same cached results and compiles to 2-4 A4 pages."""
    ch, nb = execute(HANDOUT, book_env(book_cache), cwd=tmp_path)
    check_outputs(ch, nb, real_movielens=False)
    text = "".join(o.get("data", {}).get("text/markdown", "")
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    from analysis.studies import STUDIES, get_study

    estimating = [n for n in STUDIES if getattr(get_study(n), "RECOMMENDATION_TEMPLATE", None)]
    assert len(estimating) == 5
    for name in estimating:
        assert f"handout-figures/{name}.png" in text
        assert (tmp_path / "handout-figures" / f"{name}.png").stat().st_size > 10_000
    # each chapter's short form: the answer, the number with its interval, the decision
    for name in estimating:
        assert f"## {get_study(name).TITLE}" in text
    assert text.count("**Decision:**") == len(estimating) and "Profile `quick`" in text
    pages = compile_pdf([(ch, nb)], tmp_path, "handout", numbered=False,
                        variables=handout_variables(), fmt="png")
    assert 2 <= len(pages) <= 4, f"the handout has {len(pages)} pages; it must have 2-4"
