"""`dvc plots show` pages of this repo's finished run in a browser with the network blocked.

Every plot DVC lists (``dvc plots show --json``), and every chart the page holds, must be drawn:
a vega chart (one ``.marks`` svg or canvas in its div) or a loaded image, with no page or console
error and no request leaving the disk. DVC's own page, whose libraries come from a CDN, is the
control: offline it draws no chart at all, which is what the template of
:mod:`emotion.tools.plots_page` fixes. Chromium missing: see :mod:`tests.browser_fixtures`.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dvc_render.base import Renderer
from dvc_render.html import PAGE_HTML
from playwright.sync_api import Browser, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from emotion.tools import plots_page

from .browser_fixtures import headless_chromium
from .conftest import REPO, run

pytestmark = pytest.mark.browser

DRAWN = "ids => ids.map(id => document.getElementById(id)?.querySelectorAll('.marks').length ?? 0)"
IMAGES = "() => [...document.images].map(img => [img.src, img.complete && img.naturalWidth > 0])"


@dataclass
class Offline:
    """What a page did in a browser that reaches nothing but local files."""

    charts: dict[str, int] = field(default_factory=dict)  # vega div id -> charts drawn in it
    images: list[tuple[str, bool]] = field(default_factory=list)  # src, loaded
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # requests that tried to leave the disk


@dataclass(frozen=True)
class Listed:
    """The plots ``dvc plots show --json`` lists: vega div ids and image file names."""

    charts: list[str]
    images: list[str]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as chromium:
        yield chromium


def listed_plots(out: Path) -> Listed:
    """The workspace's plots as DVC lists them (``out``: where ``--json`` copies images)."""
    done = run(["dvc", "plots", "show", "--json", "-o", str(out)], REPO)
    charts, images = [], []
    for name, renderers in json.loads(done.stdout)["data"].items():
        for renderer in renderers:
            if renderer["type"] == "vega":
                charts.append(Renderer.remove_special_chars(name))  # DVC's div id
            else:
                images.append(Path(renderer["url"]).name)
    return Listed(charts, images)


def page_charts(page_file: Path) -> list[str]:
    """The div ids the page hands to vega-embed (the scripts run as it loads)."""
    return re.findall(r"vegaEmbed\('#([^']+)'", page_file.read_text(encoding="utf-8"))


def open_offline(browser: Browser, page_file: Path) -> Offline:
    """Open ``page_file`` with every non-file request aborted; unless a script failed, wait
    (up to 20 s) until each of its vega divs holds a chart; report what it drew."""
    ids = page_charts(page_file)
    seen = Offline()
    context = browser.new_context()
    context.set_offline(True)

    def only_files(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            seen.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_files)
    page = context.new_page()
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    page.on(
        "console",
        lambda msg: seen.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    page.goto(page_file.as_uri(), wait_until="load")
    if not seen.page_errors:
        with contextlib.suppress(PlaywrightTimeout):  # what is missing is reported below
            page.wait_for_function(f"ids => ({DRAWN})(ids).every(n => n > 0)", arg=ids)
    seen.charts = dict(zip(ids, page.evaluate(DRAWN, ids), strict=True))
    seen.images = [(src, loaded) for src, loaded in page.evaluate(IMAGES)]
    context.close()
    return seen


def test_every_plot_of_the_run_is_drawn_offline(browser: Browser, tmp_path: Path) -> None:
    plots_page.check_template(REPO)  # written by `make setup`; says what to run if missing
    listed = listed_plots(tmp_path / "json")
    assert len(listed.charts) >= 10, "the repo's finished run has plots (`make repro`)"
    assert listed.images
    page = tmp_path / "page/index.html"
    run(["dvc", "plots", "show", "-o", str(page.parent)], REPO)
    ids = page_charts(page)
    assert len(set(ids)) == len(ids), "two charts share a div: one of them stays blank"
    assert set(listed.charts) <= set(ids)
    seen = open_offline(browser, page)
    assert [name for name, drawn in seen.charts.items() if drawn != 1] == []
    assert sorted(Path(src).name for src, _ in seen.images) == sorted(listed.images)
    assert [src for src, loaded in seen.images if not loaded] == []
    assert seen.page_errors == []
    assert seen.console_errors == []
    assert seen.blocked == []


def test_dvcs_own_page_draws_no_chart_offline(browser: Browser, tmp_path: Path) -> None:
    """The control: the same plots on DVC's default page (vega from a CDN) stay blank, so the
    test above fails whenever the page's own libraries do not load."""
    default = tmp_path / "default.html"
    default.write_text(PAGE_HTML)
    listed = listed_plots(tmp_path / "json")
    page = tmp_path / "page/index.html"
    run(["dvc", "plots", "show", "-o", str(page.parent), "--html-template", str(default)], REPO)
    seen = open_offline(browser, page)
    assert set(listed.charts) <= set(seen.charts)
    assert sum(seen.charts.values()) == 0
    assert "vegaEmbed is not defined" in seen.page_errors
    assert any(url.startswith("https://cdn.jsdelivr.net/npm/vega") for url in seen.blocked)
