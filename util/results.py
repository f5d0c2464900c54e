"""What test.py writes: result images, an HTML page, and a manifest for the evaluation.

``<results_dir>/<name>/<phase>_<epoch>/`` holds ``images/<row>_<visual>.png``,
``index.html`` (one row per input: every visual the model declares) and
``results.json``: run metadata plus, per row, the source files and, per visual, its
file, source domain and kind (see :class:`util.visuals.Visual`). Evaluation scripts
read the manifest, so they need no knowledge of a model's visual names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from util.checkpoint import atomic_write_text
from util.html import HTMLPage
from util.image import fit_name, save_image, tensor_to_image
from util.visuals import Visual

MANIFEST = "results.json"


class ResultWriter:
    """Accumulates translated batches into images, a page and a manifest."""

    def __init__(self, result_dir: Path, title: str, meta: dict[str, Any], aspect_ratio: float = 1.0, width: int = 256) -> None:
        self.result_dir = Path(result_dir)
        self.image_dir = self.result_dir / "images"
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self.title, self.meta, self.aspect_ratio, self.width = title, meta, aspect_ratio, width
        self.rows: list[dict[str, Any]] = []

    def add_batch(self, visuals: dict[str, Visual], batch: dict[str, Any], limit: int | None = None) -> int:
        """Save every item of the batch (at most ``limit``); returns how many were added."""
        count = next(iter(visuals.values())).image.shape[0]
        if limit is not None:
            count = min(count, limit)
        for i in range(count):
            paths = {side: str(Path(batch[f"{side}_paths"][i]).resolve()) for side in "AB" if f"{side}_paths" in batch}
            row_id = f"{len(self.rows):05d}_{fit_name(Path(paths.get('A', 'image')).stem, 100)}"
            row = {"id": row_id, "paths": paths, "visuals": {}}
            if "A_domain" in batch and self.meta.get("domain_names"):  # multi-domain data: the input's domain
                row["source_domain"] = self.meta["domain_names"][int(batch["A_domain"][i])]
            for name, visual in visuals.items():
                file = f"images/{row_id}_{name}.png"
                save_image(tensor_to_image(visual.image[i]), self.result_dir / file, self.aspect_ratio)
                row["visuals"][name] = {"file": file, "source": visual.source, "kind": visual.kind}
                if visual.target is not None:
                    row["visuals"][name]["target"] = visual.target
            for side in "AB":  # the data's own mask, for the reader (the evaluation reads the mask files)
                if f"{side}_has_mask" in batch and bool(batch[f"{side}_has_mask"][i]):
                    file = f"images/{row_id}_true_mask_{side}.png"
                    save_image(tensor_to_image(batch[f"{side}_mask"][i]), self.result_dir / file, self.aspect_ratio)
                    row.setdefault("true_masks", {})[side] = file
            self.rows.append(row)
        return count

    def save(self) -> Path:
        """Write ``index.html`` and ``results.json``; returns the page's path."""
        atomic_write_text(self.result_dir / MANIFEST, json.dumps({"meta": self.meta, "rows": self.rows}, indent=1))
        page = HTMLPage(self.result_dir, self.title)
        for name, value in self.meta.items():
            page.add_text(f"{name}: {value}")
        for row in self.rows:
            page.add_header(row["id"] + "  (" + ", ".join(f"{s}: {Path(p).name}" for s, p in row["paths"].items()) + ")")
            shown: set[str] = set()
            for side, names in glance(row["visuals"]).items():
                items = [(row["visuals"][name]["file"], name) for name in names]
                if side in row.get("true_masks", {}):
                    items.append((row["true_masks"][side], f"true mask {side}"))
                page.add_images(items, width=self.width, lazy=True)
                shown.update(names)
            rest = [(v["file"], name) for name, v in row["visuals"].items() if name not in shown]
            if rest:
                page.add_collapsed(f"{len(rest)} more pictures (content images, masks, ...)", rest, width=self.width)
        return page.save()


# What a reader compares, per input side and in this order; everything else is one click away.
GLANCE_KINDS = ("real", "fake", "rec", "attention")


def glance(visuals: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Per source side, the visuals of a row shown at a glance: its input, its translation(s), the
    reconstruction and the foreground attention (multi-domain models: one translation and
    attention per target)."""
    rows: dict[str, list[str]] = {}
    for kind in GLANCE_KINDS:
        for name, visual in visuals.items():
            if visual["kind"] == kind:
                rows.setdefault(visual["source"], []).append(name)
    return rows


def read_manifest(result_dir: Path) -> dict[str, Any]:
    """Load what :meth:`ResultWriter.save` wrote."""
    return json.loads((Path(result_dir) / MANIFEST).read_text(encoding="utf-8"))
