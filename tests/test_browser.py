"""tests/browser.py: headless Chromium reports which images of a page load."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.browser import chromium_missing_reason, image_load_report

pytestmark = pytest.mark.skipif(
    chromium_missing_reason() is not None,
    reason=chromium_missing_reason() or "",
)


def write_page(folder: Path) -> Path:
    """A page with one valid 7x5 PNG and one reference to a missing file."""
    Image.new("RGB", (7, 5), (200, 30, 30)).save(folder / "good.png")
    (folder / "bad.png").write_bytes(b"not a png")
    page = folder / "index.html"
    page.write_text(
        "<!doctype html><html><body>"
        '<img src="good.png" alt="good">'
        '<img src="missing.png" alt="missing">'
        '<img src="bad.png" alt="corrupt">'
        "</body></html>"
    )
    return page


def test_report_tells_loaded_from_broken_images(tmp_path: Path) -> None:
    """A valid PNG reports its width; missing and corrupt files report 0."""
    report = image_load_report(write_page(tmp_path), timeout=30)
    by_src = {entry["src"]: entry for entry in report}
    assert list(by_src) == ["good.png", "missing.png", "bad.png"]
    assert by_src["good.png"]["naturalWidth"] == 7
    assert by_src["good.png"]["naturalHeight"] == 5
    assert by_src["missing.png"]["naturalWidth"] == 0
    assert by_src["bad.png"]["naturalWidth"] == 0
    assert all(entry["complete"] for entry in report)
