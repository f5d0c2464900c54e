"""Translate a folder with a trained model: ``python translate.py --name h2z_att --input my_photos/ --output out/``.

Reads the run's checkpoint (``--epoch``, default latest) and its saved options, so only the run
name is needed; builds the one-direction translator of any registered model
(``BaseModel.inference_module``) and loads only the networks it uses. Every image keeps its
size and aspect ratio (``--preprocess none`` pads it to the generator's multiple and crops the
result back) unless ``--load_size W`` resizes it to width W first. Output files mirror the
input names (sub-folders kept); ``--save_masks`` adds ``<name>_attention.png`` for models with
attention. Unreadable files are reported by name and skipped; the exit status is 1 if any was.

    python translate.py --name h2z_att --input my_photos/ --output out/ --direction BtoA --save_masks
    python translate.py --name pat --input photos/ --output out/ --target_domain striped    # multi-domain
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from data.image_folder import is_image_file, load_rgb, walk_once
from models import BaseModel, create_model, get_model_class, networks
from options import parse_test_options
from options.base_options import adopt_checkpoint_options
from util.checkpoint import atomic_write_bytes, checkpoint_path, load_checkpoint, non_finite_entries
from util.distributed import parse_gpu_ids, select_device
from util.errors import UserError, run_cli
from util.image import fit_name
from util.precision import PRECISIONS, Precision


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--name", required=True, help="the training run (CHECKPOINTS_DIR/NAME)")
    parser.add_argument("--input", required=True, type=Path, help="an image or a folder of images (searched recursively)")
    parser.add_argument("--output", required=True, type=Path, help="where the translations go (names mirror the input's)")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--epoch", default="latest", help="checkpoint: latest or an epoch number")
    parser.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"),
                        help="AtoB: the input is of the dataset's A domain (trainA); BtoA: of its B domain")
    parser.add_argument("--target_domain", default=None, help="multi-domain models: the domain to translate to")
    parser.add_argument("--save_masks", action="store_true", help="also save the attention map as <name>_attention.png")
    parser.add_argument("--preprocess", default="none", choices=("none",),
                        help="none: keep each image's size (pad to the generator's multiple, crop the result back)")
    parser.add_argument("--load_size", type=int, default=0,
                        help="resize each image to this width first, keeping its aspect ratio (0: keep the size)")
    parser.add_argument("--batch_size", type=int, default=1, help="images per batch (images of one size go together)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--gpu_ids", type=parse_gpu_ids, default="0", help="GPU id; -1 for the CPU")
    parser.add_argument("--eval", action="store_true", help="eval mode (batch norm statistics, no dropout), as test.py --eval")
    parser.add_argument("--num_threads", type=int, default=2, help="image loading workers")
    parser.add_argument("--no_progress", action="store_true")
    return parser


def model_options(checkpoint: dict[str, Any], args: argparse.Namespace) -> argparse.Namespace:
    """test.py's options for the checkpoint's model, overlaid with the run's saved architecture and options."""
    model = checkpoint["model"]
    get_model_class(model)  # an unknown model name is a clear error
    opt = parse_test_options(["--model", model, "--name", args.name, "--checkpoints_dir", args.checkpoints_dir,
                              "--gpu_ids", "-1", "--no_progress"])
    adopt_checkpoint_options(opt, checkpoint)
    opt.direction = checkpoint.get("options", {}).get("direction", "AtoB")  # the training run's
    opt.precision = args.precision
    return opt


def used_networks(model: BaseModel, module: torch.nn.Module) -> list[str]:
    """The model's networks that ``module`` is built from (the only ones to load)."""
    inside = {id(m) for m in module.modules()}
    return [name for name, runner in model.networks.items() if id(runner.network) in inside]


def load_translator(args: argparse.Namespace) -> tuple[torch.nn.Module, argparse.Namespace, torch.device]:
    path = checkpoint_path(Path(args.checkpoints_dir) / args.name, args.epoch)
    checkpoint = load_checkpoint(path)
    opt = model_options(checkpoint, args)
    device = select_device(args.gpu_ids)
    model = create_model(opt.model, opt, device)
    model.prepare_from_checkpoint(checkpoint)
    # The run may have been trained with --direction BtoA: its A side is then the dataset's B.
    side = args.direction if opt.direction == "AtoB" else ("BtoA" if args.direction == "AtoB" else "AtoB")
    module = model.inference_module(side, args.target_domain)
    names = used_networks(model, module)
    saved = checkpoint["state"]["networks"]
    broken = non_finite_entries({n: saved[n] for n in names if n in saved})
    if broken:
        raise UserError(f"checkpoint {path} holds non-finite weights ({', '.join(broken[:3])}); use another --epoch")
    try:
        model.load_networks(saved, names)
    except (KeyError, RuntimeError) as err:
        raise UserError(f"checkpoint {path} does not fit its own options: {err}") from None
    module.train(not args.eval).to(device)
    print(f"{opt.model} from {path}: {args.direction}"
          + (f" to {args.target_domain}" if args.target_domain else "") + f", networks {', '.join(names)}")
    return module, opt, device


def image_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UserError(f"--input {source} does not exist")
    files = [p for p in walk_once(source) if is_image_file(p.name)]
    if not files:
        raise UserError(f"no images found in --input {source}")
    return sorted(files)


class Images(torch.utils.data.Dataset):
    """Input files as ``[-1, 1]`` tensors padded to the generator's multiple; failures as messages."""

    def __init__(self, files: list[Path], channels: int, multiple: int, load_size: int) -> None:
        self.files, self.channels, self.multiple, self.load_size = files, channels, multiple, load_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        try:
            image = load_rgb(path)
        except UserError as err:
            return {"index": index, "error": str(err)}
        if self.load_size:
            width, height = self.load_size, max(1, round(image.size[1] * self.load_size / image.size[0]))
            image = image.resize((width, height), Image.BICUBIC)
        if self.channels == 1:
            image = image.convert("L")
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
        tensor = torch.from_numpy(array if array.ndim == 3 else array[..., None]).permute(2, 0, 1)
        h, w = tensor.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        padded = F.pad(tensor[None], (0, pad_w, 0, pad_h), mode=mode)[0]
        return {"index": index, "image": padded, "size": (h, w)}


def batches(dataset: Images, batch_size: int, workers: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive loaded images of one padded size, up to ``batch_size`` together."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
    pending: list[dict[str, Any]] = []
    for item in loader:
        if pending and ("error" in item or item["image"].shape != pending[0]["image"].shape or len(pending) == batch_size):
            yield pending
            pending = []
        if "error" in item:
            yield [item]
        else:
            pending.append(item)
    if pending:
        yield pending


def run_group(module: torch.nn.Module, names: tuple[str, ...], group: list[dict[str, Any]], device: torch.device,
              precision: Precision, files: list[Path], failed: list[str]) -> Iterator[tuple[dict[str, Any], dict]]:
    """``(item, its outputs)`` for a batch of one padded size; an image the model cannot take (a few
    pixels wide, say) is added to ``failed`` by name and the others go on."""
    def forward(items: list[dict[str, Any]]) -> list[dict[str, torch.Tensor]]:
        images = torch.stack([item["image"] for item in items]).to(device)
        with torch.no_grad(), precision.autocast():
            outputs = dict(zip(names, (o.float().cpu() for o in module(images))))
        return [{name: value[i] for name, value in outputs.items()} for i in range(len(items))]

    try:
        yield from zip(group, forward(group))
        return
    except (RuntimeError, ValueError) as err:
        if len(group) == 1:
            h, w = group[0]["size"]
            failed.append(f"{files[group[0]['index']]}: {w}x{h} px cannot be translated by this model "
                          f"({str(err).splitlines()[0][:160]})")
            return
    for item in group:  # the batch failed: find the image(s) that cannot be translated
        yield from run_group(module, names, [item], device, precision, files, failed)


def save(array: torch.Tensor, path: Path, gray: bool = False) -> None:
    """Save ``C x H x W`` in [-1, 1] (or a ``1 x H x W`` map in [0, 1]) atomically, in ``path``'s format."""
    if gray:
        data = (array[0].clamp(0, 1) * 255 + 0.5).byte().numpy()
    else:
        data = ((array.clamp(-1, 1) + 1) * 127.5 + 0.5).byte().permute(1, 2, 0).numpy()
        data = data[..., 0] if data.shape[-1] == 1 else data
    picture = Image.fromarray(data)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    if fmt not in Image.SAVE:
        path, fmt = path.with_suffix(".png"), "PNG"
    if fmt == "JPEG":
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    atomic_write_bytes(path, buffer.getvalue())


def output_paths(files: list[Path], root: Path, output: Path) -> dict[Path, tuple[Path, Path]]:
    """Per input file: where its translation and its attention map go (names mirror the input's;
    an attention map's name is cut to fit the 255-byte limit)."""
    targets = {}
    for file in files:
        target = output / file.relative_to(root)
        attention = target.with_name(f"{fit_name(target.stem, 240)}_attention.png")
        targets[file] = (target, attention)
    return targets


def check_output(output: Path, files: list[Path], targets: dict[Path, tuple[Path, Path]]) -> None:
    """Before the model is loaded: the output folder can be written, and no output replaces an input."""
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} is a file; give a folder for the translations")
    inputs = {file.resolve() for file in files}
    for file, paths in targets.items():
        clash = next((p for p in paths if p.resolve() in inputs), None)
        if clash is not None:
            raise UserError(f"the translation of {file} would be written over the input {clash}; choose another --output")
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=output, prefix=".write-test-")
        probe.close()
    except OSError as err:
        raise UserError(f"--output {output} cannot be written ({err.strerror or err}); choose a folder you can write") from None


def translate(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or args.load_size < 0 or args.num_threads < 0:
        raise UserError("--batch_size must be >= 1, --load_size and --num_threads >= 0")
    if args.output.resolve() == args.input.resolve():
        raise UserError("--output must differ from --input (the translations would replace the originals)")
    files = image_files(args.input)
    root = args.input if args.input.is_dir() else args.input.parent
    targets = output_paths(files, root, args.output)
    check_output(args.output, files, targets)
    module, opt, device = load_translator(args)
    channels = opt.input_nc if opt.direction == args.direction else opt.output_nc
    multiple = networks.generator_size_multiple(opt.netG)
    dataset = Images(files, channels, multiple, args.load_size)
    names = module.output_names
    precision = Precision(args.precision, device)
    failed: list[str] = []
    done, started = 0, time.time()
    bar = tqdm(total=len(files), unit="img", desc="translate", disable=args.no_progress, dynamic_ncols=True)
    for group in batches(dataset, args.batch_size, args.num_threads):
        if "error" in group[0]:
            failed.append(group[0]["error"])
            bar.update(1)
            continue
        for item, outputs in run_group(module, names, group, device, precision, files, failed):
            h, w = item["size"]
            target, attention_path = targets[files[item["index"]]]
            result = outputs["output"][:, :h, :w]
            if not bool(torch.isfinite(result).all()):
                raise UserError(f"the model produced a non-finite image for {files[item['index']]}; check the checkpoint")
            save(result, target)
            if args.save_masks and "attention" in outputs:
                save(outputs["attention"][:, :h, :w], attention_path, gray=True)
            done += 1
        bar.update(len(group))
    bar.close()
    seconds = max(time.time() - started, 1e-9)
    print(f"translated {done} image(s) into {args.output} in {seconds:.1f}s ({done / seconds:.2f} images/s)")
    if args.save_masks and "attention" not in names:
        print(f"note: --model {opt.model} has no attention map; --save_masks saved nothing")
    if failed:
        print(f"{len(failed)} file(s) could not be read or translated and were skipped:", file=sys.stderr)
        for message in failed:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: translate(args))


if __name__ == "__main__":
    sys.exit(main())
