"""What ``scripts/compare.py`` writes: several evaluated runs in one leaderboard.

One row per run (name, model, epoch), one column per measure and direction, the best value of
each column in bold (the direction of "better" comes from :data:`evaluation.measures.MEASURES`;
informative measures such as the foreground change are never ranked), and one grouped bar
chart per measure. Settings that make numbers incomparable (different KID protocols, image
sizes, feature networks or classifiers) are listed above the table.

With ``group_by_model`` (runs of one model with different seeds) a first table gives, per
model, the mean over its runs and the spread (half the range) of every measure. With
``key_images`` each model gets a strip of that many test images: input, translation, its
attention map and the ground-truth mask, so a reader sees what the numbers mean.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dominate
from dominate import tags

from evaluation.measures import MEASURES, Measure, best_indices, label_of
from evaluation.plots import grouped_bars
from evaluation.report import METRICS_JSON
from util.checkpoint import atomic_write_text
from util.errors import UserError

if TYPE_CHECKING:
    import numpy as np

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
        cells = [markdown_text(run.label), markdown_text(str(run.run_meta.get("model"))),
                 markdown_text(str(run.run_meta.get("epoch")))]
        for column, winners in zip(columns, best):
            text = column.text(run)
            cells.append(f"**{text}**" if i in winners else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Bold: best in its column (↓ lower is better, ↑ higher is better; unmarked columns are not ranked). "
              "KID values are x100 (mean ± std over subsets).", ""]
    lines += [f"- {markdown_text(run.label)}: {markdown_text(str(run.folder))}" for run in runs]
    return "\n".join(lines) + "\n"


def markdown_text(text: str) -> str:
    """A run's name (or folder) as markdown text: HTML in a name is shown, not rendered, and a '|'
    stays inside its table cell."""
    return html_escape(text).replace("|", "\\|")


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


def html(runs: list[EvaluatedRun], columns: list[Column], notes: list[str], charts: list[tuple[str, str]],
         grouped: str = "", strips: dict[str, str] | None = None) -> str:
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
        if grouped:
            tags.h3("Per model (mean ± half the range over runs)")
            _markdown_table_as_html(grouped)
            tags.h3("Per run")
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
        for label, file in (strips or {}).items():
            tags.h3(f"{label}: input, translation, attention, ground-truth mask")
            tags.img(src=file, alt=label)
        for file, label in charts:
            tags.h3(label)
            tags.img(src=file, alt=label)
    return doc.render()


def _markdown_table_as_html(text: str) -> None:
    """Render the pipe table of :func:`grouped_markdown` inside the current dominate context."""
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    with tags.table(border=1):
        for i, row in enumerate(rows):
            with tags.tr():
                for cell in row:
                    cell = cell.strip()
                    bold = cell.startswith("**")
                    (tags.th if i == 0 else tags.td)(cell.strip("*"), cls="best" if bold else "")


def model_groups(runs: list[EvaluatedRun]) -> dict[str, list[EvaluatedRun]]:
    """Runs by model, in first-seen order."""
    groups: dict[str, list[EvaluatedRun]] = {}
    for run in runs:
        groups.setdefault(str(run.run_meta.get("model")), []).append(run)
    return groups


def mean_and_spread(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean of the known values and half their range (0 for one value)."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return None, None
    return sum(known) / len(known), (max(known) - min(known)) / 2


def grouped_markdown(runs: list[EvaluatedRun], columns: list[Column]) -> str:
    """Per model: mean ± half-range over its runs (seeds) for every column; best mean in bold."""
    groups = model_groups(runs)
    stats = {model: [mean_and_spread([c.value(r) for r in members]) for c in columns] for model, members in groups.items()}
    best = [best_indices([stats[m][j][0] for m in groups], c.measure.better) for j, c in enumerate(columns)]
    header = ["model", "runs", *[_header(c, runs) for c in columns]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, (model, members) in enumerate(groups.items()):
        cells = [model, str(len(members))]
        for j, _column in enumerate(columns):
            mean, spread = stats[model][j]
            text = "-" if mean is None else (f"{mean:.3f}" if len(members) == 1 else f"{mean:.3f} ± {spread:.3f}")
            cells.append(f"**{text}**" if i in best[j] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nMean over the runs of each model (± half the range between them); bold: best mean.\n"


def key_image_array(run: EvaluatedRun, count: int, tile: int = 96) -> np.ndarray | None:
    """``count`` test images of the run's first direction, a row each: input | translation | attention | mask
    (an RGB uint8 array), or None where the run has no translations with masks."""
    import numpy as np
    from PIL import Image

    from evaluation.evaluate import read_mask
    from evaluation.translations import group_translations

    try:
        groups = group_translations(run.folder)
    except UserError:
        return None
    if not groups.groups:
        return None
    translations = [t for t in next(iter(groups.groups.values())).translations if t.mask is not None][:count]
    if not translations:
        return None
    rows = []
    for t in translations:
        tiles = []
        for path in (t.input_file, t.output_file, t.attention_file):
            if path is None:
                tiles.append(np.full((tile, tile, 3), 255, np.uint8))
                continue
            with Image.open(path) as image:
                tiles.append(np.asarray(image.convert("RGB").resize((tile, tile), Image.BICUBIC)))
        mask = read_mask(t.mask, (tile, tile))
        tiles.append(np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def key_image_strip(run: EvaluatedRun, out_dir: Path, count: int, tile: int = 96) -> str | None:
    """Save :func:`key_image_array` under ``out_dir``; returns its path relative to ``out_dir``, or None."""
    from PIL import Image

    array = key_image_array(run, count, tile)
    if array is None:
        return None
    file = f"{FILES_DIR}/keys_{run.run_meta.get('name')}.png"
    (out_dir / FILES_DIR).mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(out_dir / file)
    return file


def key_images_markdown(strips: dict[str, str]) -> str:
    lines = ["## Key images", "", "Per row: input, translation, attention map (white: none saved), ground-truth mask.", ""]
    for label, file in strips.items():
        lines += [f"**{label}**", "", f"![{label}]({file})", ""]
    return "\n".join(lines)


def write_leaderboard(folders: list[Path], out_dir: Path, group_by_model: bool = False,
                      key_images: int = 0) -> dict[str, Path]:
    """Write ``leaderboard.md``, ``leaderboard.html`` and its charts into ``out_dir``."""
    runs = load_runs([Path(f) for f in folders])
    columns = columns_of(runs)
    notes = comparability_notes(runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = bar_charts(runs, columns, out_dir)
    strips: dict[str, str] = {}
    if key_images:
        for model, members in model_groups(runs).items():
            file = key_image_strip(members[0], out_dir, key_images)
            if file:
                strips[f"{model} ({members[0].run_meta.get('name')})"] = file
    paths = {"markdown": out_dir / LEADERBOARD_MD, "html": out_dir / LEADERBOARD_HTML}
    text = markdown(runs, columns, notes)
    if group_by_model:
        text = text.replace("# Leaderboard\n", "# Leaderboard\n\n## Per model\n\n" + grouped_markdown(runs, columns)
                            + "\n## Per run\n", 1)
    if strips:
        text += "\n" + key_images_markdown(strips)
    atomic_write_text(paths["markdown"], text)
    atomic_write_text(paths["html"], html(runs, columns, notes, charts, grouped_markdown(runs, columns) if group_by_model
                                          else "", strips))
    return paths
