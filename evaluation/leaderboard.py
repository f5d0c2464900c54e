"""What ``scripts/compare.py`` writes: several evaluated runs in one leaderboard.

One row per run (name, model, epoch), one column per measure and direction, the best value of
each column in bold (the direction of "better" comes from :data:`evaluation.measures.MEASURES`;
informative measures such as the foreground change are never ranked), and one grouped bar
chart per measure. Settings that make numbers incomparable (different KID protocols, image
sizes, feature networks or classifiers) are listed above the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dominate
from dominate import tags

from evaluation.measures import MEASURES, Measure, best_indices, label_of
from evaluation.plots import grouped_bars
from evaluation.report import METRICS_JSON
from util.checkpoint import atomic_write_text
from util.errors import UserError

LEADERBOARD_MD = "leaderboard.md"
LEADERBOARD_HTML = "leaderboard.html"
FILES_DIR = "leaderboard_files"


@dataclass
class EvaluatedRun:
    """One run's ``metrics.json`` and the label it gets in the leaderboard."""

    folder: Path
    metrics: dict[str, Any]
    label: str = ""

    @property
    def run_meta(self) -> dict[str, Any]:
        return self.metrics["meta"]["run"]

    @property
    def standard_features(self) -> bool:
        features = self.metrics["meta"].get("features")
        return features is None or bool(features.get("standard"))


@dataclass(frozen=True)
class Column:
    measure: Measure
    direction: str

    def value(self, run: EvaluatedRun) -> float | None:
        entry = run.metrics["directions"].get(self.direction)
        return None if entry is None else self.measure.value(entry)

    def text(self, run: EvaluatedRun) -> str:
        entry = run.metrics["directions"].get(self.direction)
        return "n/a" if entry is None else self.measure.format(entry)


def load_runs(folders: list[Path]) -> list[EvaluatedRun]:
    """Read each folder's ``metrics.json``; a folder without one is a user error naming the fix."""
    if not folders:
        raise UserError("give at least one evaluated result folder")
    runs = []
    for folder in folders:
        path = Path(folder) / METRICS_JSON
        if not path.is_file():
            raise UserError(f"{path} not found: evaluate that run first with "
                            f"python scripts/evaluate.py --results {folder}")
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read {path}: {err}") from None
        if "directions" not in metrics or "meta" not in metrics:
            raise UserError(f"{path} is not a metrics.json written by scripts/evaluate.py")
        runs.append(EvaluatedRun(Path(folder), metrics))
    _label_runs(runs)
    return runs


def _label_runs(runs: list[EvaluatedRun]) -> None:
    for run in runs:
        meta = run.run_meta
        run.label = f"{meta.get('name')} ({meta.get('model')}, {meta.get('epoch')})"
    labels = [run.label for run in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} [{run.folder}]"


def columns_of(runs: list[EvaluatedRun]) -> list[Column]:
    """Every measure x direction that at least one run has a value for."""
    directions = sorted({d for run in runs for d in run.metrics["directions"]})
    return [Column(m, d) for m in MEASURES for d in directions
            if any(Column(m, d).value(run) is not None for run in runs)]


def comparability_notes(runs: list[EvaluatedRun]) -> list[str]:
    """Warnings about settings that differ between runs or make numbers non-standard."""
    notes = []
    checks = {
        "KID protocol": lambda m: m["kid"]["protocol"] + f", seed {m['seed']}",
        "image size": lambda m: f"{m['image_size']['width']}x{m['image_size']['height']}",
        "FID/KID features": lambda m: (m["features"] or {}).get("network", "skipped"),
        "domain classifier": lambda m: (m["classifier"] or {}).get("path") or "none",
        "dataroot": lambda m: m["dataroot"],
    }
    for what, describe in checks.items():
        seen = {describe(run.metrics["meta"]) for run in runs}
        if len(seen) > 1:
            notes.append(f"runs differ in {what} ({'; '.join(sorted(seen))}): those numbers are not directly comparable")
    stand_in = [run.label for run in runs if not run.standard_features]
    if stand_in:
        notes.append(f"FID/KID of {', '.join(stand_in)} come from a STAND-IN feature extractor, not Inception")
    return notes


def _header(column: Column, runs: list[EvaluatedRun]) -> str:
    arrow = {"lower": " ↓", "higher": " ↑", None: ""}[column.measure.better]
    standard = all(run.standard_features for run in runs)
    return f"{label_of(column.measure, standard)} {column.direction}{arrow}"


def markdown(runs: list[EvaluatedRun], columns: list[Column], notes: list[str]) -> str:
    header = ["run", "model", "epoch", *[_header(c, runs) for c in columns]]
    best = [best_indices([c.value(run) for run in runs], c.measure.better) for c in columns]
    lines = ["# Leaderboard", ""]
    lines += [f"- {note}" for note in notes]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, run in enumerate(runs):
        cells = [run.label, str(run.run_meta.get("model")), str(run.run_meta.get("epoch"))]
        for column, winners in zip(columns, best):
            text = column.text(run)
            cells.append(f"**{text}**" if i in winners else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Bold: best in its column (↓ lower is better, ↑ higher is better; unmarked columns are not ranked). "
              "KID values are x100 (mean ± std over subsets).", ""]
    lines += [f"- {run.label}: {run.folder}" for run in runs]
    return "\n".join(lines) + "\n"


def bar_charts(runs: list[EvaluatedRun], columns: list[Column], out_dir: Path) -> list[tuple[str, str]]:
    """One grouped bar chart per measure (directions on the x axis, one bar per run)."""
    charts = []
    standard = all(run.standard_features for run in runs)
    for measure in MEASURES:
        directions = [c.direction for c in columns if c.measure is measure]
        if not directions:
            continue
        series, errors = {}, {}
        for run in runs:
            entries = [run.metrics["directions"].get(d) for d in directions]
            series[run.label] = [None if e is None else measure.value(e) for e in entries]
            errors[run.label] = [None if e is None else measure.std(e) for e in entries]
        label = label_of(measure, standard)
        arrow = {"lower": " (lower is better)", "higher": " (higher is better)", None: ""}[measure.better]
        file = f"{FILES_DIR}/{measure.key}.png"
        grouped_bars(directions, series, label, label + arrow, out_dir / file,
                     errors if measure.std_path else None)
        charts.append((file, label))
    return charts


def html(runs: list[EvaluatedRun], columns: list[Column], notes: list[str], charts: list[tuple[str, str]]) -> str:
    doc = dominate.document(title="Leaderboard")
    with doc.head:
        tags.meta(charset="utf-8")
        tags.style("body{font-family:sans-serif} td,th{padding:4px 8px;text-align:center} td.best{font-weight:bold;"
                   "background:#e6f4e6} td.name{text-align:left}")
    best = [best_indices([c.value(run) for run in runs], c.measure.better) for c in columns]
    with doc:
        tags.h2("Leaderboard")
        for note in notes:
            tags.p(note)
        with tags.table(border=1):
            with tags.tr():
                for cell in ["run", "model", "epoch", *[_header(c, runs) for c in columns]]:
                    tags.th(cell)
            for i, run in enumerate(runs):
                with tags.tr():
                    tags.td(run.label, cls="name")
                    tags.td(str(run.run_meta.get("model")))
                    tags.td(str(run.run_meta.get("epoch")))
                    for column, winners in zip(columns, best):
                        tags.td(column.text(run), cls="best" if i in winners else "")
        tags.p("Bold: best in its column (↓ lower is better, ↑ higher is better; unmarked columns are not ranked). "
               "KID values are x100 (mean ± std over subsets).")
        for run in runs:
            tags.p(f"{run.label}: {run.folder}")
        for file, label in charts:
            tags.h3(label)
            tags.img(src=file, alt=label)
    return doc.render()


def write_leaderboard(folders: list[Path], out_dir: Path) -> dict[str, Path]:
    """Write ``leaderboard.md``, ``leaderboard.html`` and its charts into ``out_dir``."""
    runs = load_runs([Path(f) for f in folders])
    columns = columns_of(runs)
    notes = comparability_notes(runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = bar_charts(runs, columns, out_dir)
    paths = {"markdown": out_dir / LEADERBOARD_MD, "html": out_dir / LEADERBOARD_HTML}
    atomic_write_text(paths["markdown"], markdown(runs, columns, notes))
    atomic_write_text(paths["html"], html(runs, columns, notes, charts))
    return paths
