"""Where an attention model's masks go during training: object vs background, epoch by epoch.

    python train.py ... --save_epoch_freq 1                  # keep every epoch's snapshot
    python scripts/attention_over_time.py --name RUN --dataroot DATA --size 64 --out docs/images/RUN_attention.png

For every ``epoch_N.pt`` of the run, translates the test images of ``--phase``A (and B) that have
masks with the run's one-direction translator (``translate.py``'s) and reports the mean
attention on object pixels and on background pixels, and the IoU at 0.5 against the masks,
as a markdown table and a plot. A model that "keeps the background" has its background
attention near 0 while its object attention is high.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data.image_folder import find_mask, list_images, load_rgb, mask_from_image  # noqa: E402
from translate import load_translator  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402


def epochs_of(run_dir: Path) -> list[int]:
    found = sorted(int(m.group(1)) for p in run_dir.glob("epoch_*.pt") if (m := re.fullmatch(r"epoch_(\d+)\.pt", p.name)))
    if not found:
        raise UserError(f"no epoch_N.pt in {run_dir}: train with --save_epoch_freq 1 to keep every epoch")
    return found


def test_set(dataroot: Path, phase: str, side: str, size: int, limit: int) -> tuple[torch.Tensor, np.ndarray]:
    """Images (``N x 3 x size x size`` in [-1, 1]) and their masks (``N x size x size`` bool)."""
    folder = dataroot / f"{phase}{side}"
    mask_dir = folder.with_name(folder.name + "_mask")
    images, masks = [], []
    for path in list_images(folder):
        mask_path = find_mask(mask_dir if mask_dir.is_dir() else None, path, folder)
        if mask_path is None:
            continue
        from PIL import Image

        picture = np.asarray(load_rgb(path).resize((size, size), Image.BICUBIC), np.float32) / 127.5 - 1
        with Image.open(mask_path) as mask_image:
            mask = mask_from_image(mask_image.resize((size, size), Image.NEAREST), mask_path)
        images.append(torch.from_numpy(picture).permute(2, 0, 1))
        masks.append(mask)
        if len(images) >= limit:
            break
    if not images:
        raise UserError(f"no test images with masks in {folder}")
    return torch.stack(images), np.stack(masks)


def measure(args: argparse.Namespace) -> list[dict]:
    run_dir = Path(args.checkpoints_dir) / args.name
    rows = []
    for epoch in epochs_of(run_dir):
        for side, direction in (("A", "AtoB"), ("B", "BtoA")):
            try:
                images, masks = test_set(Path(args.dataroot), args.phase, side, args.size, args.limit)
            except UserError:
                continue
            namespace = argparse.Namespace(name=args.name, checkpoints_dir=args.checkpoints_dir, epoch=str(epoch),
                                           direction=direction, target_domain=None, precision="fp32", gpu_ids=[],
                                           eval=False)
            module, _, _ = load_translator(namespace)
            if "attention" not in module.output_names:
                raise UserError(f"{args.name} has no attention map")
            with torch.no_grad():
                attention = torch.cat([module(images[i:i + 8])[1] for i in range(0, len(images), 8)])[:, 0].numpy()
            on_object = float(attention[masks].mean()) if masks.any() else float("nan")
            on_background = float(attention[~masks].mean())
            predicted = attention > 0.5
            iou = float(np.logical_and(predicted, masks).sum() / max(1, np.logical_or(predicted, masks).sum()))
            rows.append({"epoch": epoch, "side": side, "object": on_object, "background": on_background, "iou": iou})
    return rows


def report(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"Attention of {args.name} on {args.dataroot} {args.phase} images with masks ({args.size} px)", "",
             "| epoch | side | mean attention on objects | on background | IoU at 0.5 |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['epoch']} | {r['side']} | {r['object']:.3f} | {r['background']:.3f} | {r['iou']:.3f} |" for r in rows]
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 3.5), dpi=100)
        for side in sorted({r["side"] for r in rows}):
            points = [r for r in rows if r["side"] == side]
            axis.plot([r["epoch"] for r in points], [r["object"] for r in points], "-o", label=f"{side}: on objects")
            axis.plot([r["epoch"] for r in points], [r["background"] for r in points], "--o", label=f"{side}: on background")
        axis.set_xlabel("epoch")
        axis.set_ylabel("mean attention")
        axis.set_ylim(0, 1)
        axis.set_title(args.name)
        axis.legend(fontsize=8)
        figure.tight_layout()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.out)
        lines += ["", f"plot: {args.out}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--dataroot", required=True)
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--phase", default="test")
    parser.add_argument("--size", type=int, default=64, help="the training crop size")
    parser.add_argument("--limit", type=int, default=100, help="test images per side")
    parser.add_argument("--out", default=None, help="also save the plot here")
    args = parser.parse_args(argv)
    return run_cli(lambda: print(report(measure(args), args)))


if __name__ == "__main__":
    sys.exit(main())
