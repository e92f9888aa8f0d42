"""Publishing: the GitHub Actions workflow and the site settings in _quarto.yml.

The workflow cannot run here; these tests check its structure and that it runs the
README's commands, so a rename in one place cannot silently break the other.
"""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"


def load_workflow() -> dict:
    wf = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    return wf


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line.split("#")[0].strip() for b in blocks for line in b.splitlines()
            if line.strip()]


def test_workflow_runs_on_push_to_main_and_deploys_pages():
    wf = load_workflow()
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert set(wf["jobs"]) == {"build", "deploy"}
    assert wf["jobs"]["deploy"]["needs"] == "build"
    uses = [s.get("uses", "") for s in wf["jobs"]["deploy"]["steps"]]
    assert any(u.startswith("actions/deploy-pages@") for u in uses)


def test_workflow_sets_up_python_and_quarto_and_restores_the_cache():
    steps = load_workflow()["jobs"]["build"]["steps"]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert "actions/setup-python" in uses and "quarto-dev/quarto-actions/setup" in uses
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert uses["actions/cache"]["with"]["path"] == "data/cache"
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_book"


def test_workflow_and_ci_install_as_the_readme_says():
    runs = "\n".join(s.get("run", "") for s in load_workflow()["jobs"]["build"]["steps"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for where, text in (("the workflow", runs), (".ci/run", ci)):
        install = re.search(r'python -m pip install [^\n]*-e "\.\[[\w,]+\]"', text).group(0)
        install = re.sub(r"--(quiet|disable-pip-version-check) ", "", install)
        assert install in readme, f"{where} installs with `{install}`, which the README lacks"
    assert "python -m pytest" in readme_commands() and "python -m pytest" in ci


def test_workflow_renders_with_the_readme_commands():
    runs = "\n".join(s.get("run", "") for s in load_workflow()["jobs"]["build"]["steps"])
    readme = readme_commands()
    for command in ("quarto render", "quarto render handout"):
        assert any(command in c for c in readme), f"the README must document `{command}`"
        assert command in runs
    assert "cp handout/_output/handout.pdf _book/handout.pdf" in runs


def test_site_settings():
    cfg = yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))
    book = cfg["book"]
    assert book["search"] is True and book["downloads"] == ["pdf"]
    assert (ROOT / book["favicon"]).is_file()
    for card in ("open-graph", "twitter-card"):
        assert book[card]["description"] and (ROOT / book[card]["image"]).is_file()
    assert book["output-file"] == "does-it-really-work"
    index = (ROOT / "index.qmd").read_text(encoding="utf-8")
    assert f"({book['output-file']}.pdf)" in index and "(handout.pdf)" in index
    text = (ROOT / "_quarto.yml").read_text(encoding="utf-8")
    assert "# site-url:" in text and "# repo-url:" in text  # documented for the user


def test_handout_is_its_own_project_outside_the_books_render_list():
    cfg = yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))
    assert not any("handout" in r for r in cfg["project"]["render"])
    handout = yaml.safe_load((ROOT / "handout" / "_quarto.yml").read_text(encoding="utf-8"))
    assert handout["project"]["type"] == "default"
    assert handout["format"]["typst"]["papersize"] == "a4"
