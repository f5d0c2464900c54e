"""Headless Debian Chromium for tests, driven through Selenium and chromedriver.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the PyPI
package ``selenium``.  Tests call :func:`chromium_missing_reason` (or
:func:`chromium_available`) and skip when the browser is not installed.
The browser runs with background networking off, so a page can only load
what it names explicitly (local files or a local server).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMEDRIVER_NAMES = ("chromedriver",)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # required when running as root
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1280,1024",
)

_IMAGES_SETTLED_JS = "return Array.from(document.images).every(img => img.complete);"

_IMAGE_REPORT_JS = """
return Array.from(document.images).map(img => ({
  src: img.getAttribute('src'),
  url: img.currentSrc || img.src,
  complete: img.complete,
  naturalWidth: img.naturalWidth,
  naturalHeight: img.naturalHeight,
}));
"""

_SCRIPT_REPORT_JS = """
const entries = performance.getEntriesByType('resource');
return Array.from(document.querySelectorAll('script[src]')).map(s => {
  const entry = entries.find(e => e.name === s.src);
  return {
    src: s.getAttribute('src'),
    url: s.src,
    status: entry && entry.responseStatus ? entry.responseStatus : null,
  };
});
"""


def _find(names: tuple[str, ...]) -> str | None:
    """Return the first executable among ``names`` on PATH."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_missing_reason() -> str | None:
    """Say what is missing for headless Chromium tests, or None if all is there."""
    missing = []
    if _find(CHROMIUM_NAMES) is None:
        missing.append("Debian package `chromium`")
    if _find(CHROMEDRIVER_NAMES) is None:
        missing.append("Debian package `chromium-driver` (chromedriver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("PyPI package `selenium`")
    if not missing:
        return None
    return "headless Chromium unavailable; install " + ", ".join(missing)


def chromium_available() -> bool:
    """True when Chromium, chromedriver and selenium are all installed."""
    return chromium_missing_reason() is None


@contextlib.contextmanager
def headless_chromium(timeout: float = 60) -> Iterator[Any]:
    """Start headless Chromium with a fresh profile; yield the Selenium driver."""
    reason = chromium_missing_reason()
    if reason:
        raise RuntimeError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = _find(CHROMIUM_NAMES)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # Explicit driver and browser paths keep Selenium Manager from
        # trying to download either.
        service = Service(executable_path=_find(CHROMEDRIVER_NAMES), log_output=subprocess.DEVNULL)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.set_page_load_timeout(timeout)
            driver.set_script_timeout(timeout)
            yield driver
        finally:
            driver.quit()


# Lazy images load only when scrolled into view, and pictures behind a closed <details> only when
# opened: a report on every image asks for them all at once.
_LOAD_EVERYTHING_JS = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
document.querySelectorAll('img[loading="lazy"]').forEach(img => { img.loading = 'eager'; });
"""


def open_page(driver: Any, url: str, timeout: float = 60, everything: bool = True) -> None:
    """Load ``url``; with ``everything``, open collapsed sections, load lazy images and wait until
    every <img> finished loading or failing (otherwise the page is as a reader first sees it)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)  # returns after the load event
    if everything:
        driver.execute_script(_LOAD_EVERYTHING_JS)
        WebDriverWait(driver, timeout).until(lambda d: d.execute_script(_IMAGES_SETTLED_JS))


def image_report(driver: Any) -> list[dict]:
    """Report every <img> of the open page (see :func:`image_load_report`)."""
    return driver.execute_script(_IMAGE_REPORT_JS)


def script_report(driver: Any) -> list[dict]:
    """Report every <script src> of the open page (see :func:`script_load_report`)."""
    return driver.execute_script(_SCRIPT_REPORT_JS)


def image_load_report(html_path: Path, timeout: float = 60) -> list[dict]:
    """Open a local HTML file; for each <img> report its src and natural size.

    Each entry has ``src`` (the attribute as written), ``url`` (resolved),
    ``complete``, ``naturalWidth`` and ``naturalHeight``; a broken image has
    ``naturalWidth == 0``.
    """
    with headless_chromium(timeout) as driver:
        open_page(driver, Path(html_path).resolve().as_uri(), timeout)
        return image_report(driver)


def script_load_report(url: str, timeout: float = 60) -> list[dict]:
    """Open ``url``; for each <script src> report its HTTP status.

    Each entry has ``src`` (as written), ``url`` (resolved) and ``status``
    (the HTTP status of the fetch, or None if it was never answered).
    """
    with headless_chromium(timeout) as driver:
        open_page(driver, url, timeout)
        return script_report(driver)
