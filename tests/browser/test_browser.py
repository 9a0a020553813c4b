"""The rendered reports and JupyterLab, tried in a real (headless) Chromium: ``make test-browser``.

Debian's ``chromium`` package is driven by Playwright (no browser download). Outside CI a
missing Chromium skips with one line naming the package; under ``LUNGCT_REQUIRE_DATA=1``
(CI) it fails.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from lungct_utils import config

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("LUNGCT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# flags that keep Chromium from calling Google's hosts (this machine's network is closed)
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORTS = sorted(config.REPORTS.glob("*.html"))
#: Reports that hold the paper's tables (Table III in 04, Table IV in 05).
WITH_TABLES = {
    "04_evaluation.html",
    "05_cross_validation.html",
    "06_variants_and_selection.html",
    "07_study_rule_and_shipping.html",
    "08_patient_bracket.html",
    "09_external_validation.html",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        message = f"needs Chromium at {CHROMIUM}: apt-get install chromium"
        if os.environ.get("LUNGCT_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def served():
    """The reports folder over HTTP on a free local port."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=config.REPORTS)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _watch(page) -> dict:
    """Record console errors, page errors and every request that leaves the machine."""
    seen = {"errors": [], "outside": []}
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def route(r):
        host = r.request.url.split("/")[2] if "://" in r.request.url else ""
        if r.request.url.startswith(("data:", "blob:")) or host.startswith(
            ("127.0.0.1", "localhost")
        ):
            r.continue_()
        else:
            seen["outside"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return seen


def test_there_are_reports():
    """One rendered report per notebook, under the notebook's name."""
    notebooks = sorted(config.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert [p.name for p in REPORTS] == [f"{n.stem}.html" for n in notebooks]
    assert WITH_TABLES <= {p.name for p in REPORTS}


def _figures(report: Path) -> int:
    """Figures (PNG outputs) of the executed notebook a report was rendered from."""
    nb = nbformat.read(config.NOTEBOOKS / f"{report.stem}.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return sum("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.name)
def test_report_renders_offline_with_images_and_tables(browser, served, report):
    page = browser.new_page()
    seen = _watch(page)
    page.goto(f"{served}/{report.name}", wait_until="load")
    images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth)")
    assert all(images), f"{report.name}: images that did not load: {images}"
    figures = _figures(report)  # every figure of the executed notebook is shown
    assert len(images) >= figures, f"{report.name}: {len(images)} images, {figures} figures"
    tables = page.locator("table").count()
    if report.name in WITH_TABLES:
        assert tables >= 3, f"{report.name}: {tables} HTML tables"
    assert not seen["errors"], seen["errors"]
    assert not seen["outside"], seen["outside"]
    page.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``make lab`` headless on a free port, with a token and autosave off; its URL."""
    port, token = _free_port(), "lungct-browser-test"
    settings = tmp_path_factory.mktemp("lab-settings")
    plugin = settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    plugin.parent.mkdir(parents=True)
    plugin.write_text('{"autosave": false}')  # the committed notebook must not be rewritten
    args = (
        f"--no-browser --port {port} --IdentityProvider.token={token} --ServerApp.ip=127.0.0.1 "
        f"--LabApp.user_settings_dir={settings} "
        f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('lab-workspaces')}"
    )
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=config.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        os.killpg(proc.pid, 15)
        pytest.fail("make lab did not answer within 120 s")
    yield base, token
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


def test_jupyterlab_runs_the_first_cells_of_notebook_01(browser, lab):
    base, token = lab
    page = browser.new_page()
    seen = _watch(page)
    page.goto(f"{base}/lab/tree/01_eda.ipynb?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
    page.locator(".jp-Cell").first.click()
    # the goals, the imports, the parameters, the settings, a heading, the release's manifest
    for _ in range(6):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(300)
    output = page.locator(".jp-OutputArea-output", has_text="1097 originals")
    output.wait_for(timeout=180_000)
    assert page.locator(".jp-Dialog").count() == 0, "an error dialog opened"
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert "Error" not in " ".join(errors.all_inner_texts())
    assert not seen["outside"], seen["outside"]
    page.close()
