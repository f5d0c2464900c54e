"""A benchmark run's record: what stays of it when its checkpoints and translations do not.

``scripts/attention_benchmark.py --record DIR`` writes, for every run, ``DIR/<run>.json``: the
measures its summary reads (per direction), how the run was made (command, schedules scaled to
the budget, images, training seconds per machine) and the benchmark's settings. The file is a
few kilobytes, so it can be committed: a comparison whose runs are made one per session, on
machines that do not keep ``checkpoints/`` and ``results/``, is rebuilt from these files with
``--from_records`` (one summary per set of runs made with the same settings).

Beside it go ``<run>_keys.png``, the run's key images (input, translation, attention, mask), and
for models with an attention map ``<run>_attention.md`` / ``.png``, its masks over training
(``scripts/attention_over_time.py`` on the run's per-epoch checkpoints).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from util.checkpoint import atomic_write_bytes, atomic_write_text
from util.errors import UserError

RECORD_FORMAT = 1
# The summary's measures: (column name, path of keys in a direction's entry of metrics.json).
SUMMARY_MEASURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("attention IoU", ("attention", "iou_mean")),
    ("attention MAE", ("attention", "mae_mean")),
    ("background PSNR (dB)", ("background", "psnr_mean")),
    ("background L1", ("background", "l1_mean")),
    ("foreground change", ("background", "foreground_l1_mean")),
)
# Shown only where some run has them.
OPTIONAL_MEASURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("target-domain rate", ("classifier", "target_fraction")),
    ("classifier-feature KID x100", ("classifier", "feature_kid_x100", "mean")),
    ("paired PSNR (dB)", ("paired", "psnr_mean")),
    ("paired SSIM", ("paired", "ssim_mean")),
)
# The benchmark settings that make two runs' numbers comparable (one summary per distinct set).
SETTINGS = ("dataroot", "size", "max_iters", "epoch_size", "n_epochs", "n_epochs_decay", "full_network", "d_field",
            "precision", "prefix", "extra")


def measure_value(entry: dict | None, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in one direction's metrics, or None where any level is missing."""
    value: Any = entry
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def compact(entry: dict) -> dict:
    """One direction's metrics reduced to the summary's measures (the per-image lists dropped)."""
    kept: dict = {}
    for _, path in (*SUMMARY_MEASURES, *OPTIONAL_MEASURES):
        value = measure_value(entry, path)
        if value is None:
            continue
        node = kept
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return kept


def make_record(row: dict, settings: dict) -> dict:
    """The record of one benchmark row (``benchmark_model``'s metrics with its ``benchmark`` entry)."""
    classifier = (row.get("meta") or {}).get("classifier")
    benchmark = {key: value for key, value in row["benchmark"].items() if key != "train_seconds_this_call"}
    return {"format": RECORD_FORMAT, "settings": settings, "benchmark": benchmark,
            "meta": {"classifier": classifier and {"path": classifier.get("path"), "accuracy": classifier.get("accuracy")}},
            "directions": {name: compact(entry) for name, entry in row["directions"].items()}}


def write_record(directory: Path, name: str, row: dict, settings: dict) -> Path:
    """Write ``directory/<name>.json`` atomically; returns its path."""
    path = Path(directory) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(make_record(row, settings), indent=1, sort_keys=True) + "\n")
    return path


def write_key_images(directory: Path, name: str, result_dir: Path, count: int = 4) -> Path | None:
    """``directory/<name>_keys.png``: ``count`` test images of the run's first direction; None if it has none."""
    from PIL import Image

    from evaluation.leaderboard import key_image_array, load_runs

    array = key_image_array(load_runs([Path(result_dir)])[0], count)
    if array is None:
        return None
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    path = Path(directory) / f"{name}_keys.png"
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_records(paths: list[Path]) -> list[dict]:
    """Read records; a file that is not one is a :class:`UserError` naming it."""
    if not paths:
        raise UserError("give at least one record file (written by scripts/attention_benchmark.py --record DIR)")
    records = []
    for path in map(Path, paths):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read the run record {path}: {err}") from None
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or not {
                "settings", "benchmark", "directions"} <= set(record):
            raise UserError(f"{path} is not a run record of format {RECORD_FORMAT} "
                            "(written by scripts/attention_benchmark.py --record DIR)")
        records.append(record)
    return records


def group_by_settings(records: list[dict]) -> list[list[dict]]:
    """Records made with the same settings, in first-seen order (one summary each)."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        key = json.dumps({k: record["settings"].get(k) for k in SETTINGS}, sort_keys=True)
        groups.setdefault(key, []).append(record)
    return list(groups.values())
