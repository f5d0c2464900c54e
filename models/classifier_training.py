"""Training the project's domain classifier (:mod:`models.classifier`): the routine
behind ``scripts/train_domain_classifier.py`` and ``scripts/train_cam_classifier.py``, also used by
SAAGAN to train its CAM classifier when none is given.

``train_classifier(args)`` takes the namespace those scripts parse (see their ``--help``).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from data import resolve_dataroot
from data.image_folder import find_mask, list_images, load_rgb, mask_from_image
from models.classifier import (
    BACKBONES,
    CAM_KINDS,
    DomainClassifier,
    classifier_checkpoint,
    normalised_cam,
    prepare_images,
)
from util.checkpoint import atomic_save
from util.distributed import parse_gpu_ids, select_device
from util.errors import UserError
from util.html import HTMLPage
from util.image import save_image
from util.mask_measures import attention_iou, attention_mae, resize_mask


def classifier_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The options of ``scripts/train_domain_classifier.py`` (and of SAAGAN's automatic classifier)."""
    parser = argparse.ArgumentParser(description=description or "Train a domain classifier",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataroot", default=None, help="dataset with trainA/ and trainB/, or train/<domain>/ folders "
                        "(default: the built-in synthetic one)")
    parser.add_argument("--phase", default="train", help="train on <phase>A/ and <phase>B/ (or <phase>/<domain>/)")
    parser.add_argument("--name", default=None, help="save to CHECKPOINTS_DIR/NAME/classifier.pt")
    parser.add_argument("--out", default=None, help="checkpoint path (default: see --name, else CHECKPOINTS_DIR/"
                        "domain_classifier/<dataset>.pt)")
    parser.add_argument("--checkpoints_dir", default="./checkpoints", help="where --name and the default --out live")
    parser.add_argument("--backbone", choices=BACKBONES, default="small", help="small (trains from scratch) or resnet50")
    parser.add_argument("--backbone_weights", default=None,
                        help="resnet50: torchvision's ImageNet weights file (default: looked up in the torch hub cache); "
                        "'scratch' for random initial weights")
    parser.add_argument(
        "--finetune",
        choices=("head", "all"),
        default=None,
        help="train only the new 1x1 head (SAAGAN Sec. 3.1, for a pretrained backbone) or every layer; default: head "
        "when the backbone starts from ImageNet weights, all when it starts from scratch",
    )
    parser.add_argument("--size", type=int, default=64, help="input size of the classifier (images are resized to it)")
    parser.add_argument("--width", type=int, default=32, help="small backbone: channels of the first convolution")
    parser.add_argument("--n_layers", type=int, default=4, help="small backbone: stride-2 convolution blocks")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training images")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (betas 0.5, 0.999)")
    parser.add_argument("--max_images", type=int, default=2000, help="at most this many images per domain (per split)")
    parser.add_argument("--val_fraction", type=float, default=0.1,
                        help="held-out share of the training images when there are no test folders")
    parser.add_argument("--cam_page", action="store_true", help="write a page of class activation maps on held-out images")
    parser.add_argument("--cam_images", type=int, default=12, help="held-out images per domain on the CAM page")
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


def domain_folders(root: Path, phase: str) -> dict[str, Path]:
    """Class name -> folder: ``A``/``B`` for ``<phase>A/`` + ``<phase>B/``, else the subfolders of ``<phase>/``."""
    if (root / f"{phase}A").is_dir() and (root / f"{phase}B").is_dir():
        return {d: root / f"{phase}{d}" for d in "AB"}
    multi = root / phase
    if multi.is_dir():
        folders = {p.name: p for p in sorted(multi.iterdir()) if p.is_dir() and not p.name.endswith("_mask")}
        if len(folders) >= 2:
            return folders
    raise UserError(f"{root} has neither {phase}A/ + {phase}B/ nor at least two domain folders in {phase}/")


def split_paths(root: Path, args: argparse.Namespace, rng: random.Random) -> tuple[dict, dict, str, dict]:
    """Training and held-out file lists per class, which held-out set it is, and the class folders."""
    folders = domain_folders(root, args.phase)
    train = {name: list_images(folder) for name, folder in folders.items()}
    test_folders: dict[str, Path] = {}
    if args.phase != "test":
        try:
            test_folders = domain_folders(root, "test")
        except UserError:
            pass
    if test_folders and test_folders.keys() == folders.keys():
        held = {name: list_images(folder) for name, folder in test_folders.items()}
        description = f"the test folders ({', '.join(f.name for f in test_folders.values())})"
        held_folders = test_folders
    else:
        held, held_folders = {}, folders
        for name in folders:
            shuffled = train[name][:]
            rng.shuffle(shuffled)
            n_held = max(1, int(round(len(shuffled) * args.val_fraction)))
            if len(shuffled) - n_held < 1:
                raise UserError(f"{folders[name]} has {len(shuffled)} image(s): too few to hold some out")
            held[name], train[name] = shuffled[:n_held], shuffled[n_held:]
        description = f"{args.val_fraction:.0%} of the {args.phase} images, held out (no test folders)"
    limit = args.max_images
    return ({n: sorted(p)[:limit] for n, p in train.items()}, {n: sorted(p)[:limit] for n, p in held.items()},
            description, held_folders)


def predictions(model: DomainClassifier, stack: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(prepare_images(stack[i:i + batch_size].to(device), model.input_size)).argmax(1).cpu()
                          for i in range(0, len(stack), batch_size)])


def accuracy(model: DomainClassifier, images: dict[str, torch.Tensor], device: torch.device, batch_size: int) -> dict:
    """Per-class, overall and balanced accuracy."""
    correct = {name: int((predictions(model, stack, device, batch_size) == k).sum())
               for k, (name, stack) in enumerate(images.items())}
    counts = {name: len(stack) for name, stack in images.items()}
    per_class = {name: correct[name] / counts[name] for name in images}
    result: dict[str, Any] = {"accuracy": sum(correct.values()) / sum(counts.values()),
                              "balanced_accuracy": sum(per_class.values()) / len(per_class)}
    for name in images:
        result[name], result[f"n_{name}"] = per_class[name], counts[name]
    return result


def cam_report(model: DomainClassifier, held: dict[str, list[Path]], folders: dict[str, Path], out_dir: Path,
               args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """A page of CAMs on held-out images; each CAM kind's MAE/IoU against masks where the folders have them.

    Returns ``{class: {"own": {"cam_mae", "cam_iou"}, "difference": {...}, "n_masks"}}`` (see
    :meth:`DomainClassifier.cam` for the two kinds).
    """
    page = HTMLPage(out_dir, f"class activation maps: {model.backbone} backbone, {model.input_size} px")
    scores: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for k, (name, paths) in enumerate(held.items()):
        mask_dir = folders[name].with_name(folders[name].name + "_mask")
        page.add_header(f"{name} ({folders[name]})")
        row = []
        for i, path in enumerate(paths):
            mask_path = find_mask(mask_dir if mask_dir.is_dir() else None, path, folders[name])
            if i >= args.cam_images and mask_path is None:
                continue
            picture = torch.from_numpy(np.array(load_rgb(path), dtype=np.uint8)).permute(2, 0, 1)[None]
            x = picture.float().to(device) / 127.5 - 1.0
            cams = {kind: normalised_cam(model, x, torch.tensor([k], device=device), kind)[0, 0].cpu().numpy()
                    for kind in CAM_KINDS}
            if mask_path is not None:
                with Image.open(mask_path) as mask_image:
                    mask = resize_mask(mask_from_image(mask_image, mask_path), cams["own"].shape)
                for kind, cam in cams.items():
                    scores.setdefault(name, {}).setdefault(kind, []).append((attention_mae(cam, mask),
                                                                               attention_iou(cam, mask, 0.5)))
            if i < args.cam_images:
                stem = f"{name}_{i:03d}"
                save_image(picture[0].permute(1, 2, 0).numpy(), out_dir / "images" / f"{stem}_input.png")
                row.append((f"images/{stem}_input.png", path.name))
                for kind, cam in cams.items():
                    save_image((cam * 255).astype(np.uint8), out_dir / "images" / f"{stem}_cam_{kind}.png")
                    row.append((f"images/{stem}_cam_{kind}.png", f"CAM of {name} ({kind})"))
        page.add_images(row, width=160)
    report: dict[str, Any] = {}
    for name, kinds in scores.items():
        report[name] = {kind: {"cam_mae": float(np.mean([s[0] for s in v])), "cam_iou": float(np.mean([s[1] for s in v]))}
                        for kind, v in kinds.items()}
        report[name]["n_masks"] = len(kinds["own"])
        for kind in CAM_KINDS:
            page.add_text(f"{name}, {kind} CAM: MAE {report[name][kind]['cam_mae']:.3f}, IoU at 0.5 "
                          f"{report[name][kind]['cam_iou']:.3f} over {report[name]['n_masks']} masked held-out images")
    page.save()
    return report


def trained_parameters(model: DomainClassifier, finetune: str) -> list[torch.nn.Parameter]:
    """``head``: freeze the backbone (weights and batch-norm statistics) and return the 1x1 head's
    parameters; ``all``: every parameter."""
    if finetune == "all":
        return list(model.parameters())
    model.trunk.requires_grad_(False)
    return list(model.head.parameters())


def train_classifier(args: argparse.Namespace) -> Path:
    """Train, evaluate on held-out images, save; returns the checkpoint path."""
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
    train_paths, held_paths, held_description, held_folders = split_paths(root, args, rng)
    progress = not args.no_progress
    train_images = {n: load_images(p, args.size, progress, f"train {n}") for n, p in train_paths.items()}
    held_images = {n: load_images(p, args.size, progress, f"held-out {n}") for n, p in held_paths.items()}
    try:
        model = DomainClassifier(args.size, args.width, args.n_layers, len(train_images), args.backbone,
                                 args.backbone_weights).to(device)
    except ValueError as err:
        raise UserError(f"--size {args.size}: {err}") from None
    pretrained = model.backbone_weights != "scratch"
    if args.finetune is None:
        args.finetune = "head" if pretrained else "all"
    elif args.finetune == "head" and not pretrained:
        raise UserError(f"--finetune head with a {args.backbone} backbone from random weights would train a head on "
                        f"random features; use --finetune all, or --backbone resnet50 with its ImageNet weights")
    if args.backbone == "resnet50":
        trained = "only the 1x1 head" if args.finetune == "head" else "every layer"
        print(f"ResNet-50 backbone from {model.backbone_weights}; training {trained}")
    optimizer = torch.optim.Adam(trained_parameters(model, args.finetune), lr=args.lr, betas=(0.5, 0.999))
    images = torch.cat(list(train_images.values()))
    labels = torch.cat([torch.full((len(stack),), k) for k, stack in enumerate(train_images.values())])
    # Unequal domain sizes: weight each class by its inverse frequency so all count alike.
    counts = torch.tensor([len(stack) for stack in train_images.values()], dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=(counts.sum() / counts / len(counts)).to(device))
    generator = torch.Generator().manual_seed(args.seed)
    steps = args.epochs * ((len(images) + args.batch_size - 1) // args.batch_size)
    bar = tqdm(total=steps, desc="classifier", unit="step", disable=not progress, dynamic_ncols=True)
    for _epoch in range(args.epochs):
        model.train()
        if args.finetune == "head":
            model.trunk.eval()  # the pretrained batch-norm statistics stay as they are
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), args.batch_size):
            index = order[start:start + args.batch_size]
            if len(index) < 2:  # batch norm needs two samples
                continue
            batch = images[index]
            flip = torch.rand(len(index), generator=generator) < 0.5
            batch[flip] = batch[flip].flip(-1)
            loss = loss_fn(model(prepare_images(batch.to(device), args.size)), labels[index].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update(1)
    bar.close()

    held = accuracy(model, held_images, device, args.batch_size)
    held["held_out"] = held_description
    held["train_accuracy"] = accuracy(model, train_images, device, args.batch_size)["accuracy"]
    if args.out:
        out = Path(args.out)
    elif args.name:
        out = Path(args.checkpoints_dir) / args.name / "classifier.pt"
    else:
        out = Path(args.checkpoints_dir) / "domain_classifier" / f"{root.resolve().name}.pt"
    if args.cam_page:
        held["cam"] = cam_report(model, held_paths, held_folders, out.parent / "cam_page", args, device)
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    options["dataroot"] = str(root.resolve())
    domains = {name: str(folder.resolve()) for name, folder in domain_folders(root, args.phase).items()}
    model.cpu()
    atomic_save(classifier_checkpoint(model, options, held, domains), out)
    per_class = ", ".join(f"{name} {held[name]:.3f} of {held[f'n_{name}']}" for name in held_images)
    print(f"held-out accuracy on {held_description}: {held['accuracy']:.3f} ({per_class}; balanced "
          f"{held['balanced_accuracy']:.3f}); training accuracy {held['train_accuracy']:.3f}")
    for name, values in held.get("cam", {}).items():
        kinds = "; ".join(f"{kind} MAE {values[kind]['cam_mae']:.3f}, IoU {values[kind]['cam_iou']:.3f}" for kind in CAM_KINDS)
        print(f"CAM of {name} against its masks ({values['n_masks']} images): {kinds}")
    if args.cam_page:
        print(f"CAM page: {out.parent / 'cam_page' / 'index.html'}")
    print(f"saved {out}")
    return out
