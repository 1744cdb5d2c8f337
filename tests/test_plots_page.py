"""The offline page template of `dvc plots`: what it inlines, its errors, its wiring in the repo.

Its rendering in a browser with no network is in ``test_plots_browser.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from dvc_render.vega_templates import LinearTemplate

from emotion.core.errors import EmotionError
from emotion.tools import plots_page
from emotion.tools.cli import main as cli_main

from .conftest import REPO, run

CLIENT = REPO / plots_page.CLIENT_DIR


class Scripts(HTMLParser):
    """Every ``<script>`` element of a page: its attributes and its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[dict[str, str | None], str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append((dict(attrs), ""))

    def handle_data(self, data: str) -> None:
        if self.lasttag == "script" and self.found and not self.found[-1][1]:
            self.found[-1] = (self.found[-1][0], data)


def fake_client(root: Path, code: dict[str, str]) -> Path:
    """An npm project whose packages' builds hold ``code`` (package name -> JavaScript)."""
    for name, build in plots_page.BUILDS.items():
        package = root / "node_modules" / name
        (package / build).parent.mkdir(parents=True, exist_ok=True)
        (package / build).write_text(code.get(name, f"var {name.replace('-', '_')} = 1;"))
        (package / "package.json").write_text(json.dumps({"version": "0.0.1"}))
    return root


def test_cli_writes_a_page_with_the_three_libraries_inlined_and_no_network_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / ".dvc" / plots_page.TEMPLATE_NAME
    cli_main(["plots-page", "--out", str(out), "--client-dir", str(CLIENT)])
    html = out.read_text(encoding="utf-8")
    versions = {}
    for name, build in plots_page.BUILDS.items():
        package = CLIENT / "node_modules" / name
        versions[name] = json.loads((package / "package.json").read_text())["version"]
        code = (package / build).read_text(encoding="utf-8")
        body = code.rsplit("//# sourceMappingURL=", 1)[0].rstrip()
        assert body in html, f"{name}'s build is not inlined whole"
        assert f"<!-- {name} {versions[name]} (" in html
    pinned = json.loads((CLIENT / "package.json").read_text())["dependencies"]
    assert versions == {name: pinned[name] for name in plots_page.BUILDS}
    assert html.count("{plot_divs}") == 1
    assert "{scripts}" not in html  # DVC would put its CDN script tags there
    assert "cdn.jsdelivr" not in html
    assert "sourceMappingURL" not in html
    scripts = Scripts(html).found
    assert [attrs for attrs, _ in scripts] == [{}, {}, {}]  # inline, none with src=
    assert all(len(text) > 50_000 for _, text in scripts)
    assert capsys.readouterr().out.startswith(f"{out}: `dvc plots show`")
    schema = LinearTemplate.DEFAULT_CONTENT["$schema"]  # what dvc_render's specs declare
    assert schema.endswith(f"/vega-lite/v{versions['vega-lite'].split('.')[0]}.json")


def test_a_missing_library_names_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "page.html"
    with pytest.raises(SystemExit) as failed:
        cli_main(["plots-page", "--out", str(out), "--client-dir", str(tmp_path / "client")])
    assert failed.value.code == 2
    err = capsys.readouterr().err
    assert "client/node_modules/vega/build/vega.min.js not found" in err
    assert "run `make setup`" in err
    client = fake_client(tmp_path / "partial", {})
    shutil.rmtree(client / "node_modules/vega-embed")
    with pytest.raises(EmotionError, match=r"vega-embed/build/vega-embed.min.js not found: run `"):
        plots_page.write_template(out, client)
    assert not out.exists()


def test_code_that_would_end_the_script_element_is_escaped_and_placeholders_are_refused(
    tmp_path: Path,
) -> None:
    client = fake_client(
        tmp_path / "a", {"vega": 'var s = "</SCRIPT><b>";\n//# sourceMappingURL=v.map'}
    )
    html = plots_page.render_page(plots_page.load_libraries(client))
    assert 'var s = "<\\/SCRIPT><b>";' in html
    assert "sourceMappingURL" not in html
    for text in ("{plot_divs}", "{scripts}", "<!--"):
        client = fake_client(tmp_path / text.strip("{}<!-"), {"vega-lite": f"x = '{text}';"})
        with pytest.raises(EmotionError, match="cannot be inlined"):
            plots_page.load_libraries(client)


def dvc_project(root: Path, template: str | None) -> Path:
    """An empty DVC project with one plot, its config naming ``template`` (relative to .dvc/)."""
    root.mkdir()
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    if template is not None:
        run(["dvc", "config", "plots.html_template", template], root)
    (root / "loss.csv").write_text("step,loss\n1,0.9\n2,0.5\n")
    return root


def test_a_missing_template_fails_with_what_to_run_where_dvc_would_not_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = dvc_project(tmp_path / "project", plots_page.TEMPLATE_NAME)
    # DVC reads a path that is not a file as the template's text: a puzzling error
    done = run(["dvc", "plots", "show", "loss.csv", "-o", "out"], project, check=False)
    assert done.returncode != 0
    assert "HTML template has to contain '{plot_divs}'" in done.stdout + done.stderr
    template = project / ".dvc" / plots_page.TEMPLATE_NAME
    assert plots_page.configured_template(project) == template
    with pytest.raises(EmotionError, match=r"offline-plots.html not found: .*run `make setup`"):
        plots_page.check_template(project)
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as failed:  # before any git or DVC work
        cli_main(["report", "--base", "HEAD", "--plots-dir", str(tmp_path / "plots")])
    assert failed.value.code == 2
    assert "run `make setup`" in capsys.readouterr().err
    # the written template: DVC takes it, and its page has the plot and no CDN script
    plots_page.write_template(template, CLIENT)
    plots_page.check_template(project)
    run(["dvc", "plots", "show", "loss.csv", "-o", "out"], project)
    page = (project / "out/index.html").read_text(encoding="utf-8")
    assert "vegaEmbed('#loss_csv'" in page
    assert "cdn.jsdelivr" not in page


def test_without_a_configured_template_nothing_is_required(tmp_path: Path) -> None:
    project = dvc_project(tmp_path / "plain", None)
    assert plots_page.configured_template(project) is None
    plots_page.check_template(project)


def test_the_repo_configures_the_template_that_setup_writes_and_git_ignores_it() -> None:
    assert plots_page.configured_template(REPO) == REPO / plots_page.DEFAULT_TEMPLATE
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(plots_page.DEFAULT_TEMPLATE)], cwd=REPO, check=False
    )
    assert ignored.returncode == 0
    dry_run = subprocess.run(
        ["make", "-n", "-B", str(plots_page.DEFAULT_TEMPLATE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"emotion plots-page --out {plots_page.DEFAULT_TEMPLATE}" in dry_run
    setup = subprocess.run(
        ["make", "-n", "-p", "setup"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert any(
        line.startswith("setup:") and str(plots_page.DEFAULT_TEMPLATE) in line
        for line in setup.splitlines()
    )
