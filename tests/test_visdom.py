"""VisdomDisplay against a real ``python -m visdom.server`` on localhost.

The server is started offline-capable: its CDN files must have been provisioned
by ``scripts/provision_visdom.py`` (the fixture runs it if needed and skips only
when that fails, e.g. without npm access).
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

import scripts.provision_visdom as provisioner
from tests.browser import (
    chromium_missing_reason,
    headless_chromium,
    open_page,
    script_report,
)
from util.visdom_display import VisdomDisplay, VisdomUnavailableWarning

REPO = Path(__file__).resolve().parents[1]
PROVISION_SCRIPT = REPO / "scripts" / "provision_visdom.py"
SERVER_START_TIMEOUT = 30.0


@dataclass
class VisdomServer:
    """A running visdom server process and where it listens."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"


def _ensure_provisioned() -> None:
    """Provision visdom's static files if needed; skip the module if impossible."""
    if not provisioner.missing(provisioner.visdom_install_dir()):
        return
    proc = subprocess.run(
        [sys.executable, str(PROVISION_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(
            "visdom static files are not provisioned and "
            f"`python scripts/provision_visdom.py` failed: {proc.stderr.strip()[-500:]}"
        )


def free_port() -> int:
    """Return a localhost TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env_dir: Path) -> VisdomServer:
    """Start ``python -m visdom.server`` on a free port and wait until / answers."""
    port = free_port()
    log = env_dir / "server.log"
    command = [sys.executable, "-m", "visdom.server", "-port", str(port)]
    command += ["-env_path", str(env_dir), "-bind_local"]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = VisdomServer(process, port, log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"visdom server exited with {process.returncode}:\n{log.read_text()}")
        try:
            requests.get(server.url, timeout=1)
            return server
        except requests.ConnectionError:
            time.sleep(0.1)
    stop_server(server)
    pytest.fail(f"visdom server did not answer within {SERVER_START_TIMEOUT}s:\n{log.read_text()}")


def stop_server(server: VisdomServer) -> None:
    """Terminate the server process (kill it if it does not stop)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=5)


@pytest.fixture(scope="module")
def provisioned() -> None:
    """Visdom's static files are in place, so the server never downloads."""
    _ensure_provisioned()


@pytest.fixture(scope="module")
def visdom_server(provisioned: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VisdomServer]:
    """A provisioned visdom server with its own env dir, shared by this module."""
    server = start_server(tmp_path_factory.mktemp("visdom_env"))
    yield server
    stop_server(server)


def make_display(server: VisdomServer, env: str) -> VisdomDisplay:
    """A display connected to ``server``, asserting that it connected."""
    display = VisdomDisplay(server="http://127.0.0.1", port=server.port, env=env, ncols=2, title="run")
    assert display.available
    return display


def window(display: VisdomDisplay, win: str) -> dict:
    """Fetch one window's data from the server through the visdom client API."""
    return json.loads(display.client.get_window_data(win, env=display.env))


def decode_png(src: str) -> np.ndarray:
    """Decode a ``data:image/png;base64,...`` URL to an HxWx3 array."""
    header, payload = src.split(",", 1)
    assert header == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"))


def solid(color: tuple[int, int, int], size: int = 16) -> np.ndarray:
    """A size x size image of one colour."""
    return np.broadcast_to(np.array(color, np.uint8), (size, size, 3)).copy()


def test_page_and_scripts_are_served_offline(visdom_server: VisdomServer) -> None:
    """/ answers 200 and every script it names is served locally, not downloaded."""
    page = requests.get(visdom_server.url + "/", timeout=5)
    assert page.status_code == 200, (
        f"GET / -> {page.status_code}; visdom 0.2.4 needs tornado<6.6 "
        f"(6.6 rejects its ../user/style.css static_url)\n{visdom_server.log.read_text()[-2000:]}"
    )
    scripts = re.findall(r"<script[^>]*\ssrc=\"?([^\"\s>]+)", page.text)
    assert any("plotly-plotly.min.js" in s for s in scripts)
    for src in scripts:
        reply = requests.get(visdom_server.url + src, timeout=5)
        assert reply.status_code == 200 and reply.content, src
    log = visdom_server.log.read_text()
    assert "Downloading scripts" not in log and "while downloading" not in log, log


def test_images_shown_in_one_replaced_grid_window(visdom_server: VisdomServer) -> None:
    """show_images sends one grid window whose pixels are the images sent."""
    display = make_display(visdom_server, "test_images")
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    images = dict(zip(["real_A", "fake_B", "attention"], map(solid, colors), strict=True))
    display.show_images(images, caption="epoch 1")
    assert display.client.win_exists(display.image_win, env="test_images")
    data = window(display, display.image_win)
    assert data["type"] == "image"
    assert data["title"] == "run images"
    assert "epoch 1" in data["content"]["caption"] and "attention" in data["content"]["caption"]
    grid = decode_png(data["content"]["src"])
    # ncols=2: two cells of 16+2*2 pixels per row, two rows.
    assert grid.shape == (40, 40, 3)
    assert tuple(grid[2, 2]) == colors[0] and tuple(grid[2, 22]) == colors[1]
    assert tuple(grid[22, 2]) == colors[2] and tuple(grid[22, 22]) == (255, 255, 255)

    display.show_images({"only": solid((9, 9, 9), 8)})
    windows = json.loads(display.client.get_window_data(None, env="test_images"))
    assert list(windows) == [display.image_win]
    assert decode_png(windows[display.image_win]["content"]["src"]).shape == (12, 12, 3)


def test_losses_appended_one_line_per_loss(visdom_server: VisdomServer) -> None:
    """plot_losses appends a point to one line per loss in a single window."""
    display = make_display(visdom_server, "test_losses")
    steps = [0.25, 0.5, 0.75]
    for k, step in enumerate(steps):
        display.plot_losses(step, {"G_GAN": 1.0 - k * 0.1, "D_A": 0.5 + k})
    display.plot_losses(1.0, {"G_GAN": 0.6, "D_A": 3.0, "cycle_A": 2.0})
    data = window(display, display.loss_win)
    traces = {trace["name"]: trace for trace in data["content"]["data"]}
    assert set(traces) == {"G_GAN", "D_A", "cycle_A"}
    assert traces["G_GAN"]["x"] == [*steps, 1.0]
    assert traces["G_GAN"]["y"] == pytest.approx([1.0, 0.9, 0.8, 0.6])
    assert traces["D_A"]["y"] == pytest.approx([0.5, 1.5, 2.5, 3.0])
    assert traces["cycle_A"]["x"] == [1.0] and traces["cycle_A"]["y"] == [2.0]
    assert data["title"] == "run loss over time"


def _catch_display_warnings(calls: int, port: int) -> tuple[VisdomDisplay, list, float]:
    """Use a display ``calls`` times; return it, its warnings and elapsed seconds."""
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        display = VisdomDisplay(server="http://127.0.0.1", port=port, env="nowhere")
        for step in range(calls):
            display.show_images({"a": solid((1, 2, 3))})
            display.plot_losses(step / 10, {"G": 1.0})
    ours = [w for w in caught if issubclass(w.category, VisdomUnavailableWarning)]
    return display, ours, time.monotonic() - start


def test_unreachable_server_warns_once_and_goes_on() -> None:
    """No server: one warning saying how to fix it, no exception, no waiting."""
    port = free_port()
    display, caught, elapsed = _catch_display_warnings(5, port)
    assert not display.available
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"python -m visdom.server -port {port}" in message
    assert "scripts/provision_visdom.py" in message and "--display_id 0" in message
    assert elapsed < 3.0


def test_server_lost_mid_run_warns_once(provisioned: None, tmp_path: Path) -> None:
    """A server that goes away after connecting: one warning, then no-ops."""
    server = start_server(tmp_path)
    try:
        display = make_display(server, "lost")
        display.plot_losses(0.1, {"G": 1.0})
    finally:
        stop_server(server)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(4):
            display.plot_losses(0.2 + step, {"G": 0.5})
            display.show_images({"a": solid((1, 2, 3))})
    assert not display.available
    assert [w.category for w in caught].count(VisdomUnavailableWarning) == 1


def test_page_renders_in_headless_chromium(visdom_server: VisdomServer) -> None:
    """In Chromium every page script loads (HTTP 200) and the windows render."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    display = make_display(visdom_server, "test_browser")
    display.show_images({"a": solid((255, 0, 0)), "b": solid((0, 0, 255))})
    display.plot_losses(0.5, {"G": 1.0})
    with headless_chromium(timeout=30) as driver:
        open_page(driver, f"{visdom_server.url}/env/test_browser", timeout=30)
        scripts = script_report(driver)
        assert len(scripts) >= 10, scripts
        assert all(entry["status"] == 200 for entry in scripts), scripts
        rendered = _wait_for_windows(driver, timeout=15)
    assert rendered["images"] == [40], rendered  # 2 cells of 16+2*2 pixels
    assert rendered["plots"] == 1, rendered


def _wait_for_windows(driver: object, timeout: float) -> dict:
    """Poll until the visdom app shows an image and a plot (or time runs out)."""
    probe = (
        "return {images: Array.from(document.images).filter(i => i.src.startsWith('data:'))"
        ".map(i => i.naturalWidth), plots: document.querySelectorAll('.js-plotly-plot').length};"
    )
    deadline = time.monotonic() + timeout
    state = driver.execute_script(probe)
    while time.monotonic() < deadline and not (state["images"] and state["plots"]):
        time.sleep(0.2)
        state = driver.execute_script(probe)
    return state


def test_train_script_sends_images_and_losses_to_the_server(visdom_server: VisdomServer, tmp_path: Path) -> None:
    """A real train.py run with --display_id 1 fills the images and loss windows of its env."""

    from tests.conftest import FAST, make_unaligned, run_script

    data = make_unaligned(tmp_path / "data", n_a=3, n_b=3)
    args = [*FAST, "--display_id", "1", "--display_port", str(visdom_server.port), "--display_server", "http://127.0.0.1",
            "--display_env", "train_run", "--dataroot", str(data), "--checkpoints_dir", str(tmp_path / "ckpt"),
            "--name", "visdom_run", "--n_epochs", "1", "--n_epochs_decay", "0", "--print_freq", "1", "--display_freq", "2"]
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "VisdomUnavailable" not in result.stderr
    display = make_display(visdom_server, "train_run")
    windows = json.loads(display.client.get_window_data(None, env="train_run"))
    assert len(windows) == 2
    plots = [w for w in windows.values() if w["content"].get("data")]
    assert len(plots) == 1
    traces = {trace["name"]: trace for trace in plots[0]["content"]["data"]}
    assert {"G_A", "D_A", "cycle_A"} <= set(traces) and len(traces["G_A"]["x"]) == 3
