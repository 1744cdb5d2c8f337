"""The API reference pages (/docs, /redoc) work offline: every file they load comes from the
server itself. Checked over HTTP and in chromium with every other host unreachable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Route, expect

from emotion.serve.settings import RELEASED_MODEL

from .browser_fixtures import headless_chromium
from .serve_fixtures import FACE_MODEL, REPO, emotion_serve

PAGES = ("/docs", "/redoc")
#: src="...", href="...", url('...'), url: '...': every address a page's HTML names
ADDRESS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*[:(]\s*["']([^"']+)["']""")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    args = ("--model-dir", str(REPO / RELEASED_MODEL), "--face-model", str(FACE_MODEL))
    with emotion_serve(*args) as (url, _):
        yield url


@pytest.mark.parametrize("page", PAGES)
def test_the_reference_pages_name_only_files_of_this_server(server: str, page: str) -> None:
    response = httpx.get(f"{server}{page}")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    assert "http://" not in html
    assert "https://" not in html
    addresses = [a or b for a, b in ADDRESS.findall(html)]
    assert len(addresses) >= 2  # the script and the OpenAPI document, at least
    for address in addresses:
        assert not address.startswith("//"), address
        assert httpx.get(urljoin(f"{server}{page}", address)).status_code == 200, address


@pytest.mark.browser
@pytest.mark.parametrize(
    ("page", "operation"), [("/docs", ".opblock-post"), ("/redoc", "[data-section-id]")]
)
def test_the_reference_pages_render_with_no_other_host_reachable(
    browser: Browser, server: str, page: str, operation: str
) -> None:
    context = browser.new_context()
    blocked: list[str] = []
    errors: list[str] = []

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", offline)
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(f"{server}{page}")
    expect(tab.locator(operation).first).to_be_visible(timeout=30_000)
    expect(tab.get_by_text("/predict").first).to_be_visible()
    assert errors == []
    assert blocked == []
    context.close()
