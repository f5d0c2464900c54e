"""What ``scripts/evaluate.py`` writes: ``metrics.json``, ``metrics.md`` and ``evaluation.html``.

The page holds the numbers table, two plots (per-image attention MAE histogram, background
PSNR per image) and the best and worst translations by background PSNR and by attention MAE
as input | output | attention | mask strips. Its pictures live in ``evaluation_files/`` beside
it, so the output folder can be moved as a whole. Every file is written atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.evaluate import read_mask
from evaluation.measures import MEASURES, dumps, label_of
from evaluation.plots import histograms, per_image_points
from evaluation.translations import MaskRef
from util.checkpoint import atomic_write_bytes, atomic_write_text
from util.html import HTMLPage

METRICS_JSON = "metrics.json"
METRICS_MD = "metrics.md"
EVALUATION_HTML = "evaluation.html"
FILES_DIR = "evaluation_files"
THUMB_SIDE = 96
N_EXTREMES = 3


def standard_features(result: dict[str, Any]) -> bool:
    """True unless FID/KID came from a non-standard (stand-in) feature extractor."""
    features = result["meta"].get("features")
    return features is None or bool(features.get("standard"))


def title_of(result: dict[str, Any]) -> str:
    run = result["meta"]["run"]
    return f"Evaluation: {run.get('name')} ({run.get('model')}), {run.get('phase')}, epoch {run.get('epoch')}"


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per measure that any direction has) of the numbers table."""
    directions = list(result["directions"])
    header = ["measure", *directions]
    rows = [["translated images (distinct inputs)", *[str(result["directions"][d]["n_images"]) for d in directions]]]
    standard = standard_features(result)
    for measure in MEASURES:
        entries = [result["directions"][d] for d in directions]
        if all(measure.value(e) is None for e in entries):
            continue
        arrow = {"lower": " ↓", "higher": " ↑", None: ""}[measure.better]
        rows.append([label_of(measure, standard) + arrow, *[measure.format(e) for e in entries]])
    return header, rows


def setup_lines(result: dict[str, Any]) -> list[str]:
    """How the numbers were made: features, KID protocol, sizes, classifier."""
    meta = result["meta"]
    size = meta["image_size"]
    features = meta.get("features")
    if features is None:
        reason = meta.get("fid_kid_not_computed", "--no_inception")
        feature_line = f"FID/KID: not computed ({reason}); offline measures only"
    elif features["standard"]:
        feature_line = f"FID/KID features: {features['network']}; weights: {features['weights']}"
    else:
        feature_line = (f"FID/KID features: STAND-IN ({features['network']}), NOT the Inception network: "
                        f"these FID/KID numbers are not comparable with any paper")
    kid = meta["kid"]
    classifier = meta.get("classifier")
    lines = [f"results: {meta['results_dir']}",
             f"dataroot: {meta['dataroot']}; image size {size['width']}x{size['height']}",
             feature_line]
    if features is not None or classifier:
        sizes = "; ".join(f"{d}: " + ", ".join(f"{k} {v}" for k, v in parts.items())
                          for d, parts in (kid.get("effective_subset_size") or {}).items())
        lines.append(f"KID: {kid['protocol']}, seed {meta['seed']}; effective subset sizes (capped by the set sizes): "
                     f"{sizes or 'n/a'}")
    lines += [f"reference sets: {meta['real_sets']}", f"masks: {meta['masks']}"]
    if classifier:
        accuracy = classifier.get("accuracy") or {}
        held = (f"held-out accuracy {accuracy['accuracy']:.3f}, balanced {accuracy['balanced_accuracy']:.3f}, "
                f"on {accuracy.get('held_out')}" if "accuracy" in accuracy else "accuracy unknown")
        lines.append(f"domain classifier: {classifier['path']} ({held}); classifier-feature KID is not Inception KID")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """``metrics.md``: setup, the numbers table and the notes."""
    header, rows = table_rows(result)
    lines = [f"# {title_of(result)}", ""]
    lines += [f"- {line}" for line in setup_lines(result)]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "↓ lower is better, ↑ higher is better. KID values are x100, as in the papers' tables (mean ± std "
              "over subsets).", ""]
    for name, entry in result["directions"].items():
        for note in entry.get("notes", []):
            lines.append(f"- {name}: {note}")
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- pictures
def _panel(path: Path | None, size: int, mask: np.ndarray | None = None) -> Image.Image:
    if mask is not None:
        image = Image.fromarray(mask.astype(np.uint8) * 255).convert("RGB")
    elif path is not None and Path(path).is_file():
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    else:
        return Image.new("RGB", (size, size), (235, 235, 235))
    return image.resize((size, size), Image.NEAREST if mask is not None else Image.BICUBIC)


def strip(record: dict[str, Any], results_dir: Path, path: Path) -> int:
    """input | output | attention | mask of one translation, side by side, saved as PNG; returns its width."""
    panels = [_panel(results_dir / record["input"], THUMB_SIDE), _panel(results_dir / record["output"], THUMB_SIDE)]
    if "attention" in record:
        panels.append(_panel(results_dir / record["attention"], THUMB_SIDE))
    if "mask" in record:
        mask = read_mask(MaskRef(Path(record["mask"]), record.get("mask_half"), record.get("mask_pair_width")),
                         (THUMB_SIDE, THUMB_SIDE))
        panels.append(_panel(None, THUMB_SIDE, mask))
    canvas = Image.new("RGB", (THUMB_SIDE * len(panels) + 2 * (len(panels) - 1), THUMB_SIDE), (255, 255, 255))
    for i, panel in enumerate(panels):
        canvas.paste(panel, (i * (THUMB_SIDE + 2), 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return canvas.size[0]


def extremes(records: list[dict[str, Any]], key: str, lower_is_better: bool) -> tuple[list[dict], list[dict]]:
    """The best and worst records by ``key`` (finite values; an inf PSNR counts as best)."""
    scored = [r for r in records if r.get(key) is not None and not (isinstance(r[key], float) and math.isnan(r[key]))]
    scored.sort(key=lambda r: r[key], reverse=not lower_is_better)
    return scored[:N_EXTREMES], scored[::-1][:N_EXTREMES]


def write_plots(result: dict[str, Any], out_dir: Path) -> list[tuple[str, str]]:
    """The two plots, as (relative path, caption) pairs for the page."""
    files_dir = out_dir / FILES_DIR
    plots = []
    mae = {name: [r["attention_mae"] for r in entry["per_image"] if "attention_mae" in r]
           for name, entry in result["directions"].items()}
    mae = {k: v for k, v in mae.items() if v}
    if mae:
        histograms(mae, "attention MAE (SAAGAN Eq. 15)", "Per-image attention MAE", files_dir / "attention_mae_hist.png")
        plots.append((f"{FILES_DIR}/attention_mae_hist.png", "per-image attention MAE (histogram)"))
    psnr = {name: [r["background_psnr"] for r in entry["per_image"]
                   if "background_psnr" in r and not math.isnan(r["background_psnr"])]
            for name, entry in result["directions"].items()}
    psnr = {k: v for k, v in psnr.items() if v}
    if psnr:
        per_image_points(psnr, "background PSNR (dB)", "Background PSNR per image", files_dir / "background_psnr.png")
        plots.append((f"{FILES_DIR}/background_psnr.png", "background PSNR per image"))
    return plots


def write_report(result: dict[str, Any], results_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write ``metrics.json``, ``metrics.md`` and ``evaluation.html`` (with its pictures) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / METRICS_JSON, "markdown": out_dir / METRICS_MD, "html": out_dir / EVALUATION_HTML}
    atomic_write_text(paths["json"], dumps(result))
    atomic_write_text(paths["markdown"], markdown(result))

    page = HTMLPage(out_dir, title_of(result))
    for line in setup_lines(result):
        page.add_text(line)
    header, rows = table_rows(result)
    page.add_header("Numbers (↓ lower is better, ↑ higher is better; KID x100, mean ± std over subsets)")
    page.add_table(header, rows)
    notes = [f"{name}: {note}" for name, entry in result["directions"].items() for note in entry.get("notes", [])]
    for note in notes:
        page.add_text(note)
    plots = write_plots(result, out_dir)
    if plots:
        page.add_header("Per-image distributions")
        page.add_images(plots, width=520)
    for name, entry in result["directions"].items():
        for key, label, lower_better in (("background_psnr", "background PSNR", False), ("attention_mae", "attention MAE", True)):
            best, worst = extremes(entry["per_image"], key, lower_better)
            if not best:
                continue
            for verdict, chosen in (("best", best), ("worst", worst)):
                items, width = [], THUMB_SIDE
                for rank, record in enumerate(chosen):
                    file = f"{FILES_DIR}/{name}_{key}_{verdict}_{rank}.png"
                    width = strip(record, Path(results_dir), out_dir / file)
                    items.append((file, f"{record['id']}: {label} {record[key]:.3f}"))
                page.add_header(f"{name}: {verdict} by {label} (input | output | attention | mask)")
                page.add_images(items, width=width)
    atomic_write_text(paths["html"], page.doc.render())
    return paths
