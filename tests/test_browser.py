"""The email in headless Chromium: no horizontal scrolling at 375 px and 600 px, dark mode applies.

Chromium will not open a window narrower than ~500 px, so a harness page holds the email in
iframes of each width, measures each iframe's document and writes the figures into its own DOM,
which `--dump-dom` prints. Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digest.render import Renderer
from tests.email_samples import LONG_URL, sample_issue, sample_settings

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = next(
    (
        path
        for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
        if (path := shutil.which(name))
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary on PATH: install it with `apt-get install -y chromium "
    "fonts-noto-cjk` (.ci/run does this in CI)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
]
WIDTHS = (375, 600)
CONTROL = (
    "<!doctype html><html><body style='margin:0'>"
    "<div style='width:700px'>a fixed 700 px block must overflow a phone</div></body></html>"
)
HARNESS = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0;display:flex;gap:16px;align-items:flex-start;background:#888">
{frames}
<pre id="result">pending</pre>
<script>
function measure(frame) {{
  var doc = frame.contentDocument, root = doc.documentElement, wide = [];
  doc.querySelectorAll("body *").forEach(function (el) {{
    var right = el.getBoundingClientRect().right;
    if (right > root.clientWidth + 0.5 && wide.length < 5) {{
      wide.push(el.tagName + " " + Math.round(right) + ": " + (el.textContent || "").slice(0, 60));
    }}
  }});
  var bg = doc.querySelector(".bg"), card = doc.querySelector(".c");
  var bullet = doc.querySelector(".c li"), link = doc.querySelector("a.ti");
  return {{
    client: root.clientWidth, scroll: root.scrollWidth, body: doc.body.scrollWidth,
    height: doc.body.getBoundingClientRect().height, text: doc.body.innerText.length, wide: wide,
    background: bg ? getComputedStyle(bg).backgroundColor : "",
    card: card ? getComputedStyle(card).backgroundColor : "",
    text_color: bullet ? getComputedStyle(bullet).color : "",
    link_color: link ? getComputedStyle(link).color : ""
  }};
}}
window.addEventListener("load", function () {{
  var out = {{}};
  document.querySelectorAll("iframe").forEach(function (f) {{ out[f.id] = measure(f); }});
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>"""


def chromium(profile: Path, *args: str) -> str:
    """Run headless Chromium once and return its standard output."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def measure(profile: Path, harness: Path, *extra: str) -> dict[str, dict]:
    """Load the harness, let it measure its iframes, and read the figures back."""
    dom = chromium(profile, "--virtual-time-budget=3000", *extra, "--dump-dom", harness.as_uri())
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert match and match.group(1) != "pending", dom[-1500:]
    return json.loads(html.unescape(match.group(1)))


def luminance(css_color: str) -> float:
    """Relative brightness 0..1 of an rgb()/rgba() CSS colour."""
    red, green, blue = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The rendered email (Korean text, long URLs and words) and the harness around it."""
    root = tmp_path_factory.mktemp("browser")
    email = root / "email.html"
    email.write_text(
        Renderer(sample_settings()).render(sample_issue(9, long_parts=True)).email_html,
        encoding="utf-8",
    )
    (root / "control.html").write_text(CONTROL, encoding="utf-8")
    frames = "".join(
        f'<iframe id="w{width}" src="email.html" width="{width}" height="9000" '
        f'style="border:0;background:#fff;flex:none"></iframe>'
        for width in WIDTHS
    )
    frames += '<iframe id="control" src="control.html" width="375" height="100" style="flex:none"></iframe>'
    harness = root / "harness.html"
    harness.write_text(HARNESS.format(frames=frames), encoding="utf-8")
    return email, harness


def test_no_horizontal_scrolling_at_phone_and_desktop_widths(pages, tmp_path: Path) -> None:
    email, harness = pages
    assert LONG_URL.replace("&", "&amp;") in email.read_text(encoding="utf-8")
    figures = measure(tmp_path / "profile", harness)
    control = figures["control"]
    assert control["scroll"] > control["client"], f"the harness must detect overflow: {control}"
    for width in WIDTHS:
        page = figures[f"w{width}"]
        assert page["client"] == width, page
        assert page["text"] > 2000, f"the email did not load at {width} px: {page}"
        assert page["scroll"] <= width and page["body"] <= width, (
            f"horizontal scrolling at {width} px: scrollWidth {page['scroll']}; widest: {page['wide']}"
        )
        assert not page["wide"], page["wide"]
        assert luminance(page["background"]) > 0.8 and luminance(page["card"]) > 0.95, page
        assert luminance(page["text_color"]) < 0.2, page
    # On a phone the column stacks and text reflows: the page gets taller, not wider.
    assert figures["w375"]["height"] > figures["w600"]["height"]


def test_dark_mode_styles_apply(pages, tmp_path: Path) -> None:
    _, harness = pages
    figures = measure(tmp_path / "profile", harness, "--blink-settings=preferredColorScheme=0")
    for width in WIDTHS:
        page = figures[f"w{width}"]
        assert luminance(page["background"]) < 0.15 and luminance(page["card"]) < 0.15, page
        assert luminance(page["text_color"]) > 0.8, page
        assert luminance(page["link_color"]) > 0.5, page
        assert page["scroll"] <= width, page


def test_screenshots_for_review(pages, tmp_path: Path) -> None:
    _, harness = pages
    ARTIFACTS.mkdir(exist_ok=True)
    for name, extra in (
        ("email-light.png", []),
        ("email-dark.png", ["--blink-settings=preferredColorScheme=0"]),
    ):
        target = ARTIFACTS / name
        target.unlink(missing_ok=True)
        chromium(
            tmp_path / "profile",
            *extra,
            "--virtual-time-budget=3000",
            f"--screenshot={target}",
            "--window-size=1000,2200",
            harness.as_uri(),
        )
        assert target.is_file() and target.stat().st_size > 10_000, target
