"""What training shows: the run's HTML page, the loss log and curve, and Visdom.

``checkpoints/NAME/web/index.html`` holds the latest pictures of every epoch and the
loss curve, refreshed every ``--display_freq`` images. ``loss_log.txt`` is for people,
``loss_log.jsonl`` for programs (one record per ``--print_freq``); the curve
``loss_curve.png`` is drawn from the latter. Visdom is used only when a server runs.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import time
from pathlib import Path
from typing import Any

from util.checkpoint import atomic_write_bytes, atomic_write_text
from util.errors import UserError
from util.html import HTMLPage
from util.image import save_image, tensor_to_image
from util.loggers import experiment_loggers
from util.visuals import Visual

_EPOCH_IMAGE = re.compile(r"epoch(\d+)_(.+)\.png$")


def visuals_to_images(visuals: dict[str, Visual], index: int = 0) -> dict[str, Any]:
    """The ``index``-th picture of every visual, as ``H x W x 3`` uint8 arrays."""
    return {name: tensor_to_image(visual.image[index]) for name, visual in visuals.items()}


class TrainingVisualizer:
    """Loss log, loss curve, training web page and (optional) Visdom display of one run."""

    def __init__(self, opt: argparse.Namespace, run_dir: Path, resume_total_iters: int | None = None) -> None:
        self.opt = opt
        self.run_dir = Path(run_dir)
        self.web_dir = self.run_dir / "web"
        self.image_dir = self.web_dir / "images"
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self.log_txt = self.run_dir / "loss_log.txt"
        self.log_jsonl = self.run_dir / "loss_log.jsonl"
        self.records = self._read_records(resume_total_iters)
        with self.log_txt.open("a", encoding="utf-8") as handle:
            note = f"resumed at {resume_total_iters} images" if resume_total_iters is not None else "new run"
            handle.write(f"================ Training loss ({time.strftime('%c')}, {note}) ================\n")
        self.visual_order: list[str] = []
        self.loggers = experiment_loggers(opt, self.run_dir)
        self.visdom = None
        if opt.display_id > 0:
            from util.visdom_display import VisdomDisplay

            self.visdom = VisdomDisplay(
                server=opt.display_server, port=opt.display_port, env=opt.display_env, ncols=opt.display_ncols, title=opt.name
            )

    def _read_records(self, resume_total_iters: int | None) -> list[dict[str, Any]]:
        """Earlier loss records; on resume, drop those logged after the checkpoint was written."""
        if resume_total_iters is None or not self.log_jsonl.exists():
            atomic_write_text(self.log_jsonl, "")
            return []
        records = []
        lines = [line for line in self.log_jsonl.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise UserError(
                        f"{self.log_jsonl} line {number} is not JSON (the file was edited?); fix or delete that line"
                    ) from None
                print(f"note: dropped the torn last line of {self.log_jsonl} (a write cut short by the interruption)")
        kept = [r for r in records if r["total_iters"] <= resume_total_iters]
        atomic_write_text(self.log_jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    # ------------------------------------------------------------------ losses
    def log_losses(
        self,
        *,
        epoch: int,
        epoch_progress: float,
        total_iters: int,
        losses: dict[str, float],
        lr: float,
        seconds_per_image: float,
    ) -> str:
        """Append one record to both logs (and the Visdom plot); return the text line."""
        record = {"epoch": epoch, "progress": epoch - 1 + epoch_progress, "total_iters": total_iters, "lr": lr,
                  "seconds_per_image": round(seconds_per_image, 4), "losses": losses}
        self.records.append(record)
        with self.log_jsonl.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        line = f"(epoch: {epoch}, iters: {total_iters}, lr: {lr:.7f}, time/img: {seconds_per_image:.3f}s) " + " ".join(
            f"{name}: {value:.3f}" for name, value in losses.items()
        )
        with self.log_txt.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        if self.visdom is not None:
            self.visdom.plot_losses(record["progress"], losses)
        for logger in self.loggers:
            logger.log_scalars(total_iters, {**losses, "lr": lr})
        return line

    def save_loss_curve(self) -> Path | None:
        """Draw every logged loss against (fractional) epoch into ``loss_curve.png``."""
        if not self.records:
            return None
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
        names = sorted({name for record in self.records for name in record["losses"]})
        for name in names:
            points = [(r["progress"], r["losses"][name]) for r in self.records if name in r["losses"]]
            axis.plot([p[0] for p in points], [p[1] for p in points], label=name, linewidth=1)
        axis.set_xlabel("epoch")
        axis.set_ylabel("loss")
        axis.set_title(f"{self.opt.name} loss over time")
        axis.legend(fontsize=8, ncol=2)
        axis.grid(alpha=0.3)
        buffer = io.BytesIO()
        figure.tight_layout()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        path = self.run_dir / "loss_curve.png"
        atomic_write_bytes(path, buffer.getvalue())
        atomic_write_bytes(self.web_dir / "loss_curve.png", buffer.getvalue())
        return path

    # ------------------------------------------------------------------ pictures
    def display(self, visuals: dict[str, Visual], epoch: int, total_iters: int = 0) -> None:
        """Show the current pictures in Visdom, on the training page and in the experiment loggers."""
        images = visuals_to_images(visuals)
        self.visual_order = list(images)
        if self.visdom is not None:
            self.visdom.show_images(images, caption=f"epoch {epoch}")
        for logger in self.loggers:
            logger.log_images(total_iters, images)
        if not self.opt.no_html:
            for name, image in images.items():
                save_image(image, self.image_dir / f"epoch{epoch:03d}_{name}.png")
            self.save_loss_curve()
            self.write_page()

    def write_page(self) -> Path:
        """Rewrite ``web/index.html``: loss curve, then each epoch's pictures, newest first."""
        by_epoch: dict[int, list[str]] = {}
        for path in self.image_dir.glob("epoch*.png"):
            match = _EPOCH_IMAGE.match(path.name)
            if match:
                by_epoch.setdefault(int(match.group(1)), []).append(match.group(2))
        rank = {name: i for i, name in enumerate(self.visual_order)}
        for names in by_epoch.values():
            names.sort(key=lambda name: (rank.get(name, len(rank)), name))
        page = HTMLPage(self.web_dir, f"Experiment name = {self.opt.name}", refresh=60)
        if (self.web_dir / "loss_curve.png").exists():
            page.add_header("losses")
            page.add_images([("loss_curve.png", "loss curve")], width=640)
        for epoch in sorted(by_epoch, reverse=True):
            page.add_header(f"epoch [{epoch}]")
            page.add_images(
                [(f"images/epoch{epoch:03d}_{name}.png", name) for name in by_epoch[epoch]], width=self.opt.display_winsize
            )
        return page.save()

    def close(self) -> None:
        """Close the experiment loggers (flushes their files)."""
        for logger in self.loggers:
            logger.close()
        self.loggers = []
