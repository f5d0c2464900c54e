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


def attentiongan_like_page(folder: Path, rows: int = 3) -> Path:
    """A result page with attentiongan's 44 pictures per input (real, fake, rec, attention,
    9 contents and 9 masks per side) and the data's masks."""
    import torch

    from util.results import ResultWriter
    from util.visuals import Visual

    visuals = {}
    for side, other in (("A", "B"), ("B", "A")):
        visuals[f"real_{side}"] = Visual(torch.rand(rows, 3, 32, 32) * 2 - 1, side, "real")
        visuals[f"fake_{other}"] = Visual(torch.rand(rows, 3, 32, 32) * 2 - 1, side, "fake")
        visuals[f"rec_{side}"] = Visual(torch.rand(rows, 3, 32, 32) * 2 - 1, side, "rec")
        visuals[f"attention_{side}"] = Visual(torch.rand(rows, 1, 32, 32), side, "attention")
        for i in range(9):
            visuals[f"content_{side}{i}"] = Visual(torch.rand(rows, 3, 32, 32) * 2 - 1, side, "content")
            visuals[f"mask_{side}{i}"] = Visual(torch.rand(rows, 1, 32, 32), side, "mask")
    batch = {f"{side}_{key}": value for side in "AB" for key, value in (
        ("paths", [f"/data/{side}{i}.png" for i in range(rows)]), ("mask", (torch.rand(rows, 1, 32, 32) > 0.5).float()),
        ("has_mask", torch.tensor([True] * rows)))}
    writer = ResultWriter(folder, "page", {"name": "x"})
    writer.add_batch(visuals, batch)
    return writer.save()


def test_result_page_reads_at_a_glance_and_keeps_the_rest_one_click_away(tmp_path: Path) -> None:
    from tests.browser import headless_chromium, image_report, open_page

    page = attentiongan_like_page(tmp_path)
    with headless_chromium(60) as driver:
        driver.set_window_size(1400, 1000)
        open_page(driver, page.resolve().as_uri(), everything=False)
        width = driver.execute_script("return document.documentElement.scrollWidth;")
        viewport = driver.execute_script("return document.documentElement.clientWidth;")
        assert width <= viewport <= 1400, (width, viewport)  # no horizontal scrolling
        glance = driver.execute_script(
            "return Array.from(document.querySelectorAll('body > table img')).slice(0, 5).map(i => i.alt);")
        assert glance == ["real_A", "fake_B", "rec_A", "attention_A", "true mask A"]
        hidden = driver.execute_script("return Array.from(document.querySelectorAll('details img')).length;")
        assert hidden == 3 * 36  # the content images and masks, collapsed
        assert not driver.execute_script("return Array.from(document.querySelectorAll('details')).some(d => d.open);")
        from selenium.webdriver.support.ui import WebDriverWait

        driver.execute_script("document.querySelector('details').open = true;")
        assert driver.execute_script("return document.documentElement.scrollWidth;") <= viewport  # wraps, no scrolling
        for index in range(36):  # each collapsed picture loads when the reader scrolls to it
            driver.execute_script(f"document.querySelector('details').querySelectorAll('img')[{index}].scrollIntoView();")
            WebDriverWait(driver, 30).until(lambda d, i=index: d.execute_script(
                f"return document.querySelector('details').querySelectorAll('img')[{i}].complete;"))
        opened = driver.execute_script(
            "return Array.from(document.querySelector('details').querySelectorAll('img')).map(i => i.naturalWidth);")
        assert len(opened) == 36 and all(w > 0 for w in opened)
        first_row = [item for item in image_report(driver)][:5]
        assert all(item["naturalWidth"] > 0 for item in first_row)  # what a reader sees first has loaded
    assert 'loading="lazy"' in page.read_text()
