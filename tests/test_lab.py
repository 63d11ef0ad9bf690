"""`make lab` use: in JupyterLab, the ipywidgets explorer of Chapter 2 really redraws.

Starts a JupyterLab server on a free local port over a *copy* of the chapter (so
autosave can never write outputs into the committed notebook), runs all cells in
headless Chromium, moves the mu slider and checks that the ipympl canvas shows a
different picture.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.browser
TOKEN = "reparam-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lab_server(tmp_path):
    shutil.copy(ROOT / "chapters" / "02_seeing_the_map.ipynb", tmp_path)
    port = _free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("jupyter")),
            "lab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.news_url=None",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


FIGURE_READY = """() => {
  const figure = document.querySelector('.jupyter-matplotlib-figure');
  return figure !== null && figure.getBoundingClientRect().height > 300;
}"""


# The kernel dialog, or a started kernel that is idle (before the kernel starts, the
# toolbar says "No Kernel" and its indicator already says idle).
DIALOG_OR_IDLE_KERNEL = """() => {
  if (document.querySelector('.jp-Dialog') !== null) { return true; }
  const name = document.querySelector('.jp-Toolbar-kernelName, .jp-KernelName');
  const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const kernel = name ? name.textContent.trim() : '';
  return status !== null && status.dataset.status === 'idle'
         && kernel !== '' && kernel !== 'No Kernel';
}"""


def _settled_screenshot(page, locator, interval_ms=250, tries=40) -> bytes:
    """A screenshot once three in a row, over half a second, are equal (the figure
    has finished drawing)."""
    shots = [locator.screenshot()]
    for _ in range(tries):
        page.wait_for_timeout(interval_ms)
        shots.append(locator.screenshot())
        if len(set(shots[-3:])) == 1 and len(shots) >= 3:
            return shots[-1]
    pytest.fail(f"the figure kept changing for {interval_ms * tries / 1000:.0f} s")


def test_ipywidgets_explorer_redraws_in_jupyterlab(browser, lab_server):
    page = browser.new_page(viewport={"width": 1300, "height": 1800})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and "Error setting state" in m.text
            and errors.append(m.text)
        ),
    )
    page.goto(f"{lab_server}/lab/tree/02_seeing_the_map.ipynb?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    # A fresh server may ask which kernel to start (the notebook's own, python3, is
    # preselected); otherwise the kernel starts by itself and goes idle.
    page.wait_for_function(DIALOG_OR_IDLE_KERNEL, timeout=60_000)
    select = page.locator(".jp-Dialog button:has-text('Select')")
    if select.count():
        select.click()
    page.click("text=Run", timeout=20_000)
    page.click("text=Run All Cells", timeout=20_000)
    page.wait_for_function(FIGURE_READY, timeout=120_000)
    figure = page.locator(".jupyter-matplotlib-figure").first
    figure.scroll_into_view_if_needed()
    before = _settled_screenshot(page, figure)
    page.locator(".widget-slider .noUi-handle").first.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    after = before
    for _ in range(60):  # up to 15 s for the kernel's redraw to reach the canvas
        page.wait_for_timeout(250)
        after = figure.screenshot()
        if after != before:
            break
    page.close()
    changed = after != before
    assert changed, "moving the mu slider did not change the figure within 15 s"
    assert errors == []
