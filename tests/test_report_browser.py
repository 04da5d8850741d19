"""report.html in a real headless browser: every embedded figure decodes and renders, offline."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from harness.report import build_report
from harness.report.synthetic import SyntheticSuite, write_run

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Appended to a copy of the report: after load, writes "<rendered>/<total>" images into the DOM.
IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const rendered = images.filter((img) => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0);
  const result = document.createElement("div");
  result.id = "image-check";
  result.textContent = rendered.length + "/" + images.length;
  document.body.appendChild(result);
});
</script>"""


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Chromium with no network, no GPU, no first-run work and a throwaway profile."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("browser")
    suite = SyntheticSuite(variants=("ast+llama", "dass+mamba"), lengths=(5, 30, 120, 600), batches=(1, 4),
                           tasks=False, train=False)
    return build_report([write_run(base / "run", suite)], base / "report")


@pytest.fixture(scope="module")
def browser() -> str:
    found = find_browser()
    if found is None:
        pytest.skip(f"no headless Chromium installed (looked for {', '.join(BROWSERS)}); "
                    "install it, e.g. `apt-get install chromium`, to run the browser tests")
    return found


def test_every_image_renders(report, browser, tmp_path):
    html = (report / "report.html").read_text()
    expected = len(re.findall(r"<img\b", html))
    assert expected >= 5
    page = tmp_path / "checked.html"
    page.write_text(html.replace("</body>", IMAGE_CHECK + "</body>"))
    done = headless(browser, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    found = re.search(r'<div id="image-check">(\d+)/(\d+)</div>', done.stdout)
    assert found, f"the check did not run: {done.stderr[-500:]}"
    assert (int(found[1]), int(found[2])) == (expected, expected)


def test_screenshot_shows_the_report(report, browser, tmp_path):
    shot = tmp_path / "report.png"
    headless(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,4000",
             (report / "report.html").as_uri())
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1200)
    # Figures put many colours on the page; a blank or broken page has a handful.
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 500
