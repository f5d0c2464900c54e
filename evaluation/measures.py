"""The measures of ``metrics.json`` that reports and leaderboards show, and which way is better.

One table, shared by ``scripts/evaluate.py``'s report and ``scripts/compare.py``'s
leaderboard, so a measure has the same name, unit and ranking everywhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measure:
    """A number of one direction's entry in ``metrics.json``.

    ``path``: keys leading to the value; ``std_path``: to its spread, if any; ``better``:
    ``"lower"``, ``"higher"`` or None (informative only, never ranked); ``feature_based``:
    computed on the FID/KID feature extractor (labelled when that is a stand-in).
    """

    key: str
    label: str
    path: tuple[str, ...]
    better: str | None
    std_path: tuple[str, ...] | None = None
    feature_based: bool = False
    digits: int = 3

    def value(self, entry: dict[str, Any]) -> float | None:
        return _lookup(entry, self.path)

    def std(self, entry: dict[str, Any]) -> float | None:
        return _lookup(entry, self.std_path) if self.std_path else None

    def format(self, entry: dict[str, Any]) -> str:
        value = self.value(entry)
        if value is None:
            return "n/a"
        text = f"{value:.{self.digits}f}"
        std = self.std(entry)
        return f"{text} ± {std:.{self.digits}f}" if std is not None else text


def _lookup(entry: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = entry
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


MEASURES: tuple[Measure, ...] = (
    Measure("fid", "FID", ("fid",), "lower", feature_based=True, digits=2),
    Measure("kid_x100", "KID x100", ("kid_x100", "mean"), "lower", ("kid_x100", "std"), feature_based=True, digits=2),
    Measure("mean_kid_x100", "mean KID x100", ("mean_kid_x100", "mean"), "lower", ("mean_kid_x100", "std"),
            feature_based=True, digits=2),
    Measure("attention_mae", "attention MAE", ("attention", "mae_mean"), "lower"),
    Measure("attention_iou", "attention IoU@0.5", ("attention", "iou_mean"), "higher"),
    Measure("background_psnr", "background PSNR (dB)", ("background", "psnr_mean"), "higher", digits=2),
    Measure("background_l1", "background L1", ("background", "l1_mean"), "lower", digits=4),
    Measure("foreground_change", "foreground change (L1)", ("background", "foreground_l1_mean"), None, digits=4),
    Measure("classifier_target_fraction", "classifier: fraction judged target", ("classifier", "target_fraction"), "higher"),
    Measure("classifier_real_target_fraction", "classifier: real target images judged target",
            ("classifier", "real_target_fraction"), None),
    Measure("classifier_feature_kid_x100", "classifier-feature KID x100 (not Inception)",
            ("classifier", "feature_kid_x100", "mean"), "lower", ("classifier", "feature_kid_x100", "std"), digits=2),
    Measure("paired_psnr", "paired PSNR (dB)", ("paired", "psnr_mean"), "higher", digits=2),
    Measure("paired_ssim", "paired SSIM", ("paired", "ssim_mean"), "higher", digits=4),
)


def label_of(measure: Measure, standard_features: bool) -> str:
    """The measure's label; FID/KID on anything but the standard Inception network say so."""
    if measure.feature_based and not standard_features:
        return f"{measure.label} [STAND-IN features, not Inception]"
    return measure.label


def best_indices(values: list[float | None], better: str | None) -> set[int]:
    """Indices of the best value (all of them on a tie); empty when unranked or fewer than two values to rank."""
    present = [v for v in values if v is not None]
    if better is None or len(present) < 2:
        return set()
    best = min(present) if better == "lower" else max(present)
    return {i for i, v in enumerate(values) if v is not None and v == best}


def json_safe(value: Any) -> Any:
    """Replace inf/nan (not valid JSON) by None, recursively; the summaries count what they were."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Strict JSON text of a metrics structure."""
    return json.dumps(json_safe(value), indent=1, allow_nan=False) + "\n"
