"""Train the domain classifier of the offline evaluation: ``<dataroot>/trainA`` vs ``trainB``.

    python scripts/train_domain_classifier.py --dataroot ./datasets/horse2zebra
    python scripts/evaluate.py --results results/h2z_att/test_latest --classifier checkpoints/domain_classifier/horse2zebra.pt

The network is :class:`util.domain_classifier.DomainClassifier` (small, CPU-friendly, 64 px by
default). The accuracy printed at the end is measured on held-out images: the dataset's
``testA``/``testB`` folders when both exist, otherwise a ``--val_fraction`` split of the
training images (the output says which). The checkpoint is saved atomically to
``checkpoints/domain_classifier/<dataset name>.pt`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

# Running as `python scripts/train_domain_classifier.py` puts scripts/ on the path, not the repository root.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data import resolve_dataroot  # noqa: E402
from data.image_folder import list_images, load_rgb  # noqa: E402
from options.base_options import parse_gpu_ids, select_device  # noqa: E402
from util.checkpoint import atomic_save  # noqa: E402
from util.domain_classifier import DomainClassifier, classifier_checkpoint, prepare_images  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataroot", default=None, help="dataset with trainA/ and trainB/ (default: the built-in synthetic one)")
    parser.add_argument("--phase", default="train", help="train on <phase>A/ and <phase>B/")
    parser.add_argument("--out", default=None, help="checkpoint path (default: CHECKPOINTS_DIR/domain_classifier/<dataset>.pt)")
    parser.add_argument("--checkpoints_dir", default="./checkpoints", help="where the default --out lives")
    parser.add_argument("--size", type=int, default=64, help="input size of the classifier (images are resized to it)")
    parser.add_argument("--width", type=int, default=32, help="channels of the first convolution")
    parser.add_argument("--n_layers", type=int, default=4, help="stride-2 convolution blocks")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training images")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (betas 0.5, 0.999)")
    parser.add_argument("--max_images", type=int, default=2000, help="at most this many images per domain (per split)")
    parser.add_argument("--val_fraction", type=float, default=0.1,
                        help="held-out share of the training images when there are no testA/testB folders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu_ids", type=parse_gpu_ids, default="0", help="GPU id; -1 for CPU (CPU when CUDA is absent)")
    parser.add_argument("--no_progress", action="store_true")
    return parser


def load_images(paths: Sequence[Path], size: int, progress: bool, desc: str) -> torch.Tensor:
    """``uint8`` N x 3 x size x size, resized exactly as the evaluation resizes (see prepare_images)."""
    images = []
    for path in tqdm(paths, desc=desc, unit="img", disable=not progress, leave=False):
        picture = torch.from_numpy(np.array(load_rgb(path), dtype=np.uint8)).permute(2, 0, 1)[None]
        scaled = (prepare_images(picture, size) + 1.0) * 127.5
        images.append(scaled.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(images)


def split_paths(root: Path, args: argparse.Namespace, rng: random.Random) -> tuple[dict, dict, str]:
    """Training and held-out file lists per domain, and which held-out set it is."""
    train = {d: list_images(root / f"{args.phase}{d}", layout_hint="DATAROOT/trainA/*.jpg and DATAROOT/trainB/*.jpg")
             for d in "AB"}
    test_folders = {d: root / f"test{d}" for d in "AB"}
    if args.phase != "test" and all(f.is_dir() for f in test_folders.values()):
        held = {d: list_images(test_folders[d]) for d in "AB"}
        description = f"the test folders {test_folders['A'].name}/ and {test_folders['B'].name}/"
    else:
        held = {}
        for d in "AB":
            shuffled = train[d][:]
            rng.shuffle(shuffled)
            n_held = max(1, int(round(len(shuffled) * args.val_fraction)))
            if len(shuffled) - n_held < 1:
                raise UserError(f"{root / (args.phase + d)} has {len(shuffled)} image(s): too few to hold some out")
            held[d], train[d] = shuffled[:n_held], shuffled[n_held:]
        description = f"{args.val_fraction:.0%} of the {args.phase} images, held out (no testA/testB folders)"
    limit = args.max_images
    return ({d: sorted(p)[:limit] for d, p in train.items()}, {d: sorted(p)[:limit] for d, p in held.items()}, description)


def accuracy(model: DomainClassifier, images: dict[str, torch.Tensor], device: torch.device, batch_size: int) -> dict:
    """Per-domain, overall and balanced accuracy (logit > 0 means B)."""
    model.eval()
    correct = {}
    with torch.no_grad():
        for d, stack in images.items():
            hits = 0
            for start in range(0, len(stack), batch_size):
                logits = model(prepare_images(stack[start:start + batch_size].to(device), model.input_size))
                hits += int(((logits > 0) == (d == "B")).sum())
            correct[d] = hits
    counts = {d: len(stack) for d, stack in images.items()}
    per_domain = {d: correct[d] / counts[d] for d in images}
    return {"accuracy": sum(correct.values()) / sum(counts.values()), "balanced_accuracy": sum(per_domain.values()) / 2,
            "A": per_domain["A"], "B": per_domain["B"], "n_A": counts["A"], "n_B": counts["B"]}


def train(args: argparse.Namespace) -> Path:
    for name, value, low in (("--size", args.size, 16), ("--epochs", args.epochs, 1), ("--batch_size", args.batch_size, 1),
                             ("--max_images", args.max_images, 1)):
        if value < low:
            raise UserError(f"{name} must be >= {low}")
    namespace = argparse.Namespace(dataroot=args.dataroot, dataset_mode="unaligned")
    resolve_dataroot(namespace)
    root = Path(namespace.dataroot)
    if not root.is_dir():
        raise UserError(f"--dataroot {root} does not exist")
    device = select_device(args.gpu_ids)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    train_paths, held_paths, held_description = split_paths(root, args, rng)
    progress = not args.no_progress
    train_images = {d: load_images(p, args.size, progress, f"train{d}") for d, p in train_paths.items()}
    held_images = {d: load_images(p, args.size, progress, f"held-out {d}") for d, p in held_paths.items()}

    model = DomainClassifier(args.size, args.width, args.n_layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    images = torch.cat([train_images["A"], train_images["B"]])
    labels = torch.cat([torch.zeros(len(train_images["A"])), torch.ones(len(train_images["B"]))])
    # Unequal domain sizes: weight B's positives so both domains count alike.
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(len(train_images["A"]) / len(train_images["B"]), device=device))
    generator = torch.Generator().manual_seed(args.seed)
    steps = args.epochs * ((len(images) + args.batch_size - 1) // args.batch_size)
    bar = tqdm(total=steps, desc="classifier", unit="step", disable=not progress, dynamic_ncols=True)
    for _epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), args.batch_size):
            index = order[start:start + args.batch_size]
            if len(index) < 2:  # batch norm needs two samples
                continue
            batch = images[index]
            flip = torch.rand(len(index), generator=generator) < 0.5
            batch[flip] = batch[flip].flip(-1)
            logits = model(prepare_images(batch.to(device), args.size))
            loss = loss_fn(logits, labels[index].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update(1)
    bar.close()

    held = accuracy(model, held_images, device, args.batch_size)
    held["held_out"] = held_description
    held["train_accuracy"] = accuracy(model, train_images, device, args.batch_size)["accuracy"]
    out = Path(args.out) if args.out else Path(args.checkpoints_dir) / "domain_classifier" / f"{root.resolve().name}.pt"
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    options["dataroot"] = str(root.resolve())
    domains = {d: str((root / f"{args.phase}{d}").resolve()) for d in "AB"}
    model.cpu()
    atomic_save(classifier_checkpoint(model, options, held, domains), out)
    print(f"held-out accuracy on {held_description}: {held['accuracy']:.3f} "
          f"(A {held['A']:.3f} of {held['n_A']}, B {held['B']:.3f} of {held['n_B']}; balanced {held['balanced_accuracy']:.3f}); "
          f"training accuracy {held['train_accuracy']:.3f}")
    print(f"saved {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: train(args), "nothing was saved")


if __name__ == "__main__":
    sys.exit(main())
