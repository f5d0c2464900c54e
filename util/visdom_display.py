"""Live training display on a running Visdom server.

The display never starts a server: start one yourself with
``python -m visdom.server -port 8097`` (run ``python scripts/provision_visdom.py``
once first on a machine without internet access).  When the server cannot be
reached the display warns once and turns into a no-op, so training goes on.
"""

from __future__ import annotations

import logging
import warnings
from urllib.parse import urlparse

import numpy as np
import requests
import visdom

# Seconds to wait for the TCP connection and for a reply.  Short, because a
# missing server must not stall training; the reply may take a little longer
# for large image grids.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 10.0

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class VisdomUnavailableWarning(UserWarning):
    """The Visdom server could not be reached; the display is switched off."""


class _QuietVisdomLog(logging.Filter):
    """Drop visdom's notice that we chose to run without the incoming socket."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record except the socketless notice."""
        return not record.getMessage().startswith("Without the incoming socket")


logging.getLogger("visdom").addFilter(_QuietVisdomLog())


class _BoundedVisdom(visdom.Visdom):
    """Visdom client whose requests time out quickly.

    visdom's own client posts without a timeout, so an unreachable host would
    hang training; visdom documents ``_handle_post`` as the hook to override.
    A server on this machine is reached directly, never via HTTP(S)_PROXY.
    """

    def __init__(self, server: str, port: int, env: str, timeout: tuple[float, float]) -> None:
        self._timeout = timeout
        self._http = requests.Session()
        # A local server must not be reached through an HTTP(S)_PROXY.
        self._http.trust_env = (urlparse(server).hostname or "") not in _LOCAL_HOSTS
        super().__init__(
            server=server,
            port=port,
            env=env,
            raise_exceptions=True,
            use_incoming_socket=False,
        )

    @property
    def session(self) -> requests.Session:
        """The HTTP session used for every request."""
        return self._http

    def _handle_post(self, url: str, data: object = None) -> str:
        """Post ``data`` to ``url`` with a timeout; raise on HTTP errors."""
        response = self._http.post(url, data=data or {}, timeout=self._timeout)
        response.raise_for_status()
        return response.text


class VisdomDisplay:
    """Show image grids and loss curves of a training run on a Visdom server."""

    def __init__(
        self,
        server: str = "http://localhost",
        port: int = 8097,
        env: str = "main",
        ncols: int = 4,
        title: str = "",
    ) -> None:
        """Connect to ``server:port``; warn once and disable if unreachable."""
        self.server = server if "://" in server else f"http://{server}"
        self.port = port
        self.env = env
        self.ncols = max(1, ncols)
        self.title = title
        self.image_win = "images"
        self.loss_win = "losses"
        self._loss_names: list[str] = []
        self._vis: visdom.Visdom | None = None
        self._warned = False
        try:
            with warnings.catch_warnings():
                # visdom logs its socketless notice via the deprecated Logger.warn
                warnings.filterwarnings("ignore", "The 'warn' method is deprecated", DeprecationWarning)
                self._vis = _BoundedVisdom(self.server, port, env, (CONNECT_TIMEOUT, READ_TIMEOUT))
        except (ConnectionError, requests.RequestException) as exc:
            self._disable(exc)

    @property
    def available(self) -> bool:
        """False once the server was found unreachable."""
        return self._vis is not None

    @property
    def client(self) -> visdom.Visdom | None:
        """The underlying visdom client, or None when the display is off."""
        return self._vis

    def show_images(self, images: dict[str, np.ndarray], caption: str = "") -> None:
        """Show HxWx3 uint8 ``images`` as one grid, replacing the last grid."""
        if self._vis is None or not images:
            return
        grid = image_grid(list(images.values()), self.ncols)
        labels = " | ".join(images)
        opts = {
            "title": f"{self.title} images".strip(),
            "caption": f"{caption}  [{labels}]" if caption else labels,
        }
        self._call(self._vis.image, grid.transpose(2, 0, 1), win=self.image_win, opts=opts)

    def plot_losses(self, step: float, losses: dict[str, float]) -> None:
        """Append one point per loss at x=``step`` (fractional epoch)."""
        if self._vis is None or not losses:
            return
        if not self._loss_names:
            self._start_loss_plot(step, losses)
        elif set(losses) == set(self._loss_names):
            row = np.array([[float(losses[name]) for name in self._loss_names]])
            self._call(
                self._vis.line,
                row,
                X=np.full_like(row, float(step)),
                win=self.loss_win,
                update="append",
            )
        else:
            # The set of losses changed: address each line by name; visdom
            # adds a line for a name it has not seen.
            for name, value in losses.items():
                if name not in self._loss_names:
                    self._loss_names.append(name)
                self._call(
                    self._vis.line,
                    np.array([float(value)]),
                    X=np.array([float(step)]),
                    win=self.loss_win,
                    update="append",
                    name=name,
                )

    def _start_loss_plot(self, step: float, losses: dict[str, float]) -> None:
        """Create (or replace) the loss window with its first point."""
        self._loss_names = list(losses)
        row = np.array([[float(v) for v in losses.values()]])
        opts = {
            "title": f"{self.title} loss over time".strip(),
            "legend": self._loss_names,
            "xlabel": "epoch",
            "ylabel": "loss",
        }
        self._call(
            self._vis.line,
            row,
            X=np.full_like(row, float(step)),
            win=self.loss_win,
            opts=opts,
        )

    def _call(self, method: object, *args: object, **kwargs: object) -> None:
        """Run a visdom client method; on a connection failure switch off."""
        try:
            method(*args, **kwargs)
        except (ConnectionError, requests.RequestException) as exc:
            self._disable(exc)

    def _disable(self, exc: BaseException) -> None:
        """Turn the display into a no-op and warn once, saying how to fix it."""
        self._vis = None
        if self._warned:
            return
        self._warned = True
        reason = exc.__context__ or exc  # visdom re-raises without the cause
        warnings.warn(
            f"Visdom server {self.server}:{self.port} is not reachable ({reason}); "
            "training continues without the live display. Start the server with "
            f"`python -m visdom.server -port {self.port}` (without internet, run "
            "`python scripts/provision_visdom.py` once first), or turn the display "
            "off with `--display_id 0`.",
            VisdomUnavailableWarning,
            stacklevel=3,
        )


def image_grid(images: list[np.ndarray], ncols: int, pad: int = 2) -> np.ndarray:
    """Tile HxWx3 uint8 images row by row on a white background.

    Images of different sizes are each placed top-left in a cell of the
    largest size; grayscale (HxW or HxWx1) images are repeated to 3 channels.
    """
    rgb = [_as_rgb_uint8(img) for img in images]
    cell_h = max(img.shape[0] for img in rgb) + 2 * pad
    cell_w = max(img.shape[1] for img in rgb) + 2 * pad
    cols = min(ncols, len(rgb))
    rows = -(-len(rgb) // cols)
    grid = np.full((rows * cell_h, cols * cell_w, 3), 255, dtype=np.uint8)
    for k, img in enumerate(rgb):
        top = (k // cols) * cell_h + pad
        left = (k % cols) * cell_w + pad
        grid[top : top + img.shape[0], left : left + img.shape[1]] = img
    return grid


def _as_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """Return ``img`` as an HxWx3 uint8 array."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxWx3 image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {arr.dtype}")
    return arr[:, :, :3]
