"""A static HTML page of image rows (dominate) that opens without a server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import dominate
from dominate import tags

from util.checkpoint import atomic_write_text


class HTMLPage:
    """Headers, image rows and small tables, saved as ``<web_dir>/index.html``.

    Image paths are relative to ``web_dir`` so the folder can be moved or zipped.
    """

    def __init__(self, web_dir: Path, title: str, refresh: int = 0) -> None:
        self.web_dir = Path(web_dir)
        self.doc = dominate.document(title=title)
        with self.doc.head:
            tags.meta(charset="utf-8")
            if refresh > 0:
                tags.meta(http_equiv="refresh", content=str(refresh))
            tags.style(
                "body{font-family:sans-serif} td{text-align:center;vertical-align:top;padding:4px} p{margin:2px;font-size:13px}"
            )
        with self.doc:
            tags.h2(title)

    def add_header(self, text: str) -> None:
        with self.doc:
            tags.h3(text)

    def add_text(self, text: str) -> None:
        with self.doc:
            tags.p(text)

    def add_images(self, items: list[tuple[str, str]], width: int = 256, lazy: bool = False) -> None:
        """One row: ``(relative image path, caption)`` per cell; each image links to itself.
        ``lazy``: the browser loads an image when it scrolls into view (long pages open fast)."""
        with self.doc:
            _image_table(items, width, lazy)

    def add_collapsed(self, summary: str, items: list[tuple[str, str]], width: int = 256) -> None:
        """A row of images behind a closed ``<details>`` element: one click away, loaded when opened."""
        with self.doc:
            with tags.details():
                tags.summary(summary)
                with tags.div(style="display:flex;flex-wrap:wrap;gap:4px"):  # wraps to the window's width
                    for path, caption in items:
                        url = quote(path)
                        with tags.div(style=f"width:{width}px;text-align:center"):
                            with tags.a(href=url):
                                tags.img(style=f"width:{width}px", src=url, alt=caption, loading="lazy")
                            tags.p(caption)

    def add_table(self, header: list[str], rows: list[list[str]]) -> None:
        with self.doc:
            with tags.table(border=1):
                with tags.tr():
                    for cell in header:
                        tags.th(cell)
                for row in rows:
                    with tags.tr():
                        for cell in row:
                            tags.td(cell)

    def save(self) -> Path:
        path = self.web_dir / "index.html"
        atomic_write_text(path, self.doc.render())
        return path


def _image_table(items: list[tuple[str, str]], width: int, lazy: bool) -> None:
    with tags.table(border=1, style="table-layout: fixed;"):
        with tags.tr():
            for path, caption in items:
                url = quote(path)  # '#', '?' and '%' in file names are part of the name, not of the URL
                with tags.td(halign="center", valign="top"):
                    with tags.a(href=url):
                        tags.img(style=f"width:{width}px", src=url, alt=caption, **({"loading": "lazy"} if lazy else {}))
                    tags.br()
                    tags.p(caption)
