"""The page at / in headless Chromium (Debian's `chromium`): it loads the served models, shows the example texts'
similarity matrix (or a classifier's labels) and logs nothing to the console.

Chromium is installed with apt-get here if it is missing and we may (root, ENCODERLAB_NO_APT unset); otherwise
the test is skipped and says why."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow
NAMES = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="session")
def chromium() -> str:
    found = next((shutil.which(n) for n in NAMES if shutil.which(n)), None)
    if found:
        return found
    if os.environ.get("ENCODERLAB_NO_APT") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed (install Debian's `chromium` package to run this test)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
    install = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], env=env,
                             capture_output=True, text=True, timeout=1200)
    if install.returncode != 0 or not shutil.which("chromium"):
        pytest.skip(f"chromium is not installed and apt-get could not install it: {install.stderr[-300:]}")
    return shutil.which("chromium")


def render(browser: str, url: str) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran (fetches included), and every console message."""
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--virtual-time-budget=15000", "--enable-logging=stderr", "--v=0", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def test_the_console_messages_of_a_broken_page_are_seen(chromium):
    _, console = render(chromium, "data:text/html,<script>notDefinedAnywhere()</script>")
    assert any("notDefinedAnywhere" in line for line in console)  # so an empty list below means something


def test_the_page_shows_the_similarity_matrix_without_console_errors(chromium, server):
    dom, console = render(chromium, server.url + "/")
    assert console == []
    table = re.search(r'<table id="result">(.*?)</table>', dom, re.S)
    assert table, dom[-2000:]
    cells = re.findall(r"<td>(-?\d\.\d{3})</td>", table.group(1))
    assert len(cells) == 9 and cells[0] == cells[4] == cells[8] == "1.000"
    assert float(cells[1]) > 0.5 > float(cells[2])  # the two guitar sentences are close, the market is not
    assert 'id="error" role="alert"></div>' in dom


def test_the_page_shows_a_classifiers_labels(chromium, server):
    dom, console = render(chromium, server.url + "/?model=clf")
    assert console == []
    rows = re.findall(r'<tr><td class="t">[^<]*</td><td>(\w+)</td><td>(\d\.\d{3})</td></tr>', dom)
    assert len(rows) == 3 and {label for label, _ in rows} <= {"negative", "neutral", "positive"}
