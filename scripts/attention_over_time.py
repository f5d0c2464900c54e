"""Where an attention model's masks go during training: object vs background, epoch by epoch.

    python train.py ... --save_epoch_freq 1                  # keep every epoch's snapshot
    python scripts/attention_over_time.py --name RUN --dataroot DATA --size 64 --out docs/images/RUN_attention.png

For every ``epoch_N.pt`` of the run, translates the test images of ``--phase``A (and B) that have
masks with the run's one-direction translator (``translate.py``'s) and reports the mean
attention on object pixels and on background pixels, and the IoU at 0.5 against the masks,
as a markdown table and a plot. A model that "keeps the background" has its background
attention near 0 while its object attention is high.

A run trained on a few masks (``--mask_fraction``/``--max_masks``) is checked for memorising them
with ``--phase train --split_training_masks``: the training images whose masks it used and the
training images with a mask file it did not use are reported apart (the same subset the run drew,
from its saved seed and options). Masks that hold on the first set and fade on the second were
learnt by heart.
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

from data.datasets import UnalignedDataset, mask_folder  # noqa: E402
from data.image_folder import find_mask, list_images, load_rgb, mask_from_image  # noqa: E402
from translate import load_translator  # noqa: E402
from util.checkpoint import load_checkpoint  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402


def epochs_of(run_dir: Path) -> list[int]:
    found = sorted(int(m.group(1)) for p in run_dir.glob("epoch_*.pt") if (m := re.fullmatch(r"epoch_(\d+)\.pt", p.name)))
    if not found:
        raise UserError(f"no epoch_N.pt in {run_dir}: train with --save_epoch_freq 1 to keep every epoch")
    return found


# Which images a row measures: every image with a mask, or (``--split_training_masks``) one of two sets.
ALL_IMAGES = "all"
MASK_TRAINED = "mask trained on"
MASK_UNUSED = "mask not used"


def training_mask_sets(run_dir: Path, epoch: int, dataroot: Path) -> dict[str, dict[str, set[Path]]]:
    """Per dataset folder side, the training images whose masks the run used and the other
    training images, rebuilt from the run's saved options (seed, ``--mask_fraction``, ...)."""
    options = load_checkpoint(run_dir / f"epoch_{epoch}.pt").get("options", {})
    if options.get("attention_prior") != "masks":
        raise UserError(f"{run_dir.name} was not trained with --attention_prior masks: it used no training masks")
    if options.get("dataset_mode", "unaligned") != "unaligned":
        raise UserError(f"--split_training_masks reads unaligned datasets; {run_dir.name} used {options['dataset_mode']}")
    opt = argparse.Namespace(**{**options, "dataroot": str(dataroot), "phase": "train", "isTrain": True})
    dataset = UnalignedDataset(opt)
    swapped = opt.direction == "BtoA"  # the dataset's A side is then the folder trainB
    sets = {}
    for dataset_side, sample in dataset.sides.items():
        folder_side = {"A": "B", "B": "A"}[dataset_side] if swapped else dataset_side
        used = set(sample.masks)
        mask_dir = mask_folder(sample.folder)  # images with no mask file at all are in neither set
        unused = {path for path in sample.paths if path not in used and find_mask(mask_dir, path, sample.folder)}
        sets[folder_side] = {MASK_TRAINED: used, MASK_UNUSED: unused}
    if not any(s[MASK_UNUSED] for s in sets.values()):
        raise UserError(f"{run_dir.name} trained on every mask it had: nothing is held out to compare with")
    return sets


def test_set(dataroot: Path, phase: str, side: str, size: int, limit: int,
             among: set[Path] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Images (``N x 3 x size x size`` in [-1, 1]) and their masks (``N x size x size`` bool),
    only those in ``among`` when given."""
    folder = dataroot / f"{phase}{side}"
    mask_dir = folder.with_name(folder.name + "_mask")
    images, masks = [], []
    for path in list_images(folder):
        if among is not None and path not in among:
            continue
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
        raise UserError(f"no {phase} images with masks in {folder}" + (" among those asked for" if among else ""))
    return torch.stack(images), np.stack(masks)


def image_sets(args: argparse.Namespace, run_dir: Path, epochs: list[int]) -> dict[str, dict[str, set[Path] | None]]:
    """Per folder side, the named image sets to measure (``None``: every image with a mask)."""
    if not args.split_training_masks:
        return {side: {ALL_IMAGES: None} for side in "AB"}
    if args.phase != "train":
        raise UserError(f"--split_training_masks compares training images: use --phase train (not {args.phase})")
    return training_mask_sets(run_dir, epochs[-1], Path(args.dataroot))


def measure(args: argparse.Namespace) -> list[dict]:
    run_dir = Path(args.checkpoints_dir) / args.name
    epochs = epochs_of(run_dir)
    sets = image_sets(args, run_dir, epochs)
    loaded = {}
    for side, named in sets.items():
        for label, among in named.items():
            try:
                loaded[side, label] = test_set(Path(args.dataroot), args.phase, side, args.size, args.limit, among)
            except UserError:
                continue
    if not loaded:
        raise UserError(f"no {args.phase} images with masks under {args.dataroot}")
    rows = []
    for epoch in epochs:
        for side, direction in (("A", "AtoB"), ("B", "BtoA")):
            if not any(key[0] == side for key in loaded):
                continue
            namespace = argparse.Namespace(name=args.name, checkpoints_dir=args.checkpoints_dir, epoch=str(epoch),
                                           direction=direction, target_domain=None, precision="fp32", gpu_ids=[],
                                           eval=False)
            module, _, _ = load_translator(namespace)
            if "attention" not in module.output_names:
                raise UserError(f"{args.name} has no attention map")
            for (image_side, label), (images, masks) in loaded.items():
                if image_side == side:
                    rows.append({"epoch": epoch, "side": side, "images": label, "count": len(images),
                                 **attention_on(module, images, masks)})
    return rows


def attention_on(module: torch.nn.Module, images: torch.Tensor, masks: np.ndarray) -> dict[str, float]:
    """Mean attention on object and background pixels, and the IoU of attention > 0.5 with the masks."""
    with torch.no_grad():
        attention = torch.cat([module(images[i:i + 8])[1] for i in range(0, len(images), 8)])[:, 0].numpy()
    predicted = attention > 0.5
    return {"object": float(attention[masks].mean()) if masks.any() else float("nan"),
            "background": float(attention[~masks].mean()),
            "iou": float(np.logical_and(predicted, masks).sum() / max(1, np.logical_or(predicted, masks).sum()))}


def report(rows: list[dict], args: argparse.Namespace) -> str:
    split = any(r["images"] != ALL_IMAGES for r in rows)
    lines = [f"Attention of {args.name} on {args.dataroot} {args.phase} images with masks ({args.size} px)", ""]
    if split:
        counts = sorted({(r["side"], r["images"], r["count"]) for r in rows})
        lines += ["Images: " + "; ".join(f"{side}, {label}: {count}" for side, label, count in counts), "",
                  "| epoch | side | images | mean attention on objects | on background | IoU at 0.5 |",
                  "| --- | --- | --- | --- | --- | --- |"]
    else:
        lines += ["| epoch | side | mean attention on objects | on background | IoU at 0.5 |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['epoch']} | {r['side']} | " + (f"{r['images']} | " if split else "")
              + f"{r['object']:.3f} | {r['background']:.3f} | {r['iou']:.3f} |" for r in rows]
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 3.5), dpi=100)
        for side, label in sorted({(r["side"], r["images"]) for r in rows}):
            points = [r for r in rows if (r["side"], r["images"]) == (side, label)]
            name = side if label == ALL_IMAGES else f"{side}, {label}"
            axis.plot([r["epoch"] for r in points], [r["object"] for r in points], "-o", label=f"{name}: on objects")
            axis.plot([r["epoch"] for r in points], [r["background"] for r in points], "--o", label=f"{name}: on background")
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
    parser.add_argument("--limit", type=int, default=100, help="images per side (per set with --split_training_masks)")
    parser.add_argument("--split_training_masks", action="store_true",
                        help="with --phase train: report the images whose masks the run trained on apart from the rest")
    parser.add_argument("--out", default=None, help="also save the plot here")
    args = parser.parse_args(argv)
    return run_cli(lambda: print(report(measure(args), args)))


if __name__ == "__main__":
    sys.exit(main())
