"""The page template that lets ``dvc plots show`` and ``dvc plots diff`` render with no network.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so offline every chart stays
blank. The template written here (``.dvc/offline-plots.html``, named by ``plots.html_template``
in ``.dvc/config``) inlines the three libraries' minified builds from ``client/node_modules``
(pinned in ``client/package-lock.json``, installed by ``make setup``), so a page DVC writes works
from any output folder, opened from disk or kept as a CI artifact. It has DVC's ``{plot_divs}``
and ``{refresh_tag}`` placeholders but no ``{scripts}``, so DVC adds no CDN script tags.

``make setup`` writes it (``emotion plots-page``); the file is git-ignored. When it is missing,
DVC takes the configured path itself for the template's text and stops with "HTML template has
to contain '{plot_divs}'"; :func:`check_template` says what to run instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from emotion.core.atomic import write_text
from emotion.core.errors import EmotionError

CLIENT_DIR = Path("client")
TEMPLATE_NAME = "offline-plots.html"  #: ``plots.html_template`` in ``.dvc/config``
DEFAULT_TEMPLATE = Path(".dvc") / TEMPLATE_NAME
#: npm package -> its minified browser build (UMD: sets the globals that vega-embed reads)
BUILDS = {
    "vega": "build/vega.min.js",
    "vega-lite": "build/vega-lite.min.js",
    "vega-embed": "build/vega-embed.min.js",
}
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  #: what DVC replaces in a template
SETUP_HINT = "run `make setup` (it installs client/node_modules with `npm ci` and writes the page)"
_SOURCE_MAP = re.compile(r"\s*//# sourceMappingURL=\S*\s*$")
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC plots</title>
{libraries}
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


@dataclass(frozen=True)
class Library:
    """One npm package's minified browser build, ready to inline."""

    name: str
    version: str
    license: str
    path: Path
    code: str

    def script(self) -> str:
        """A ``<script>`` element holding the code, headed by where it came from."""
        return (
            f"    <!-- {self.name} {self.version} ({self.license}) -->\n"
            f"    <script>\n{self.code}\n    </script>"
        )


def _inline(code: str, path: Path) -> str:
    """``code`` made safe inside an HTML ``<script>`` element and a DVC template."""
    for text in (*PLACEHOLDERS, "<!--"):
        if text in code:
            raise EmotionError(f"{path} contains {text!r}: it cannot be inlined in the page")
    return _SCRIPT_END.sub(r"<\\/\1", _SOURCE_MAP.sub("", code))


def load_libraries(client_dir: Path = CLIENT_DIR) -> list[Library]:
    """The builds of :data:`BUILDS` from ``client_dir/node_modules``; an :class:`EmotionError`
    naming what to run when a package is not installed."""
    found = []
    for name, build in BUILDS.items():
        package = client_dir / "node_modules" / name
        path = package / build
        if not path.is_file():
            raise EmotionError(f"{path} not found: {SETUP_HINT}")
        meta = json.loads((package / "package.json").read_text(encoding="utf-8"))
        code = _inline(path.read_text(encoding="utf-8"), path)
        found.append(Library(name, meta["version"], meta.get("license", "unknown"), path, code))
    return found


def render_page(libraries: list[Library]) -> str:
    """The template's text: DVC's page layout with ``libraries`` inlined, in order."""
    return PAGE.replace("{libraries}", "\n".join(lib.script() for lib in libraries))


def write_template(out: Path = DEFAULT_TEMPLATE, client_dir: Path = CLIENT_DIR) -> list[Library]:
    """Write the template to ``out`` (atomically); returns the libraries it inlines."""
    libraries = load_libraries(client_dir)
    write_text(out, render_page(libraries))
    return libraries


def configured_template(project: Path = Path()) -> Path | None:
    """The template DVC's config names for ``project`` (``None``: DVC's own CDN page)."""
    from dvc.config import Config  # DVC's reader: every config level, as `dvc plots` sees it

    dvc_dir = project / ".dvc"
    name = Config(dvc_dir=str(dvc_dir))["plots"].get("html_template")
    return None if name is None else dvc_dir / name


def check_template(project: Path = Path()) -> None:
    """An :class:`EmotionError` saying to run ``make setup`` when the template that ``project``'s
    DVC config names is missing (DVC itself would take its path for the template's text)."""
    template = configured_template(project)
    if template is not None and not template.is_file():
        raise EmotionError(
            f"{template} not found: `dvc plots show` and `dvc plots diff` need it (.dvc/config"
            f" plots.html_template) to draw charts; {SETUP_HINT}"
        )
