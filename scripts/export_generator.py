"""Export a trained model's one-direction translator to TorchScript and ONNX, and check it.

    python scripts/export_generator.py --name h2z_att --format torchscript onnx --out exported/

The exported module is the one ``translate.py`` runs (``BaseModel.inference_module``), in eval
mode and fp32: input ``image`` (``N x C x H x W`` in [-1, 1]; H and W multiples of the
generator's, 4 for ResNet generators), outputs ``output`` and, for attention models,
``attention`` (the foreground map in [0, 1]). Height, width and batch are dynamic in both
formats. Each file is loaded back and run on a test image (``--image``, or a scene of the
built-in dataset) at ``--size`` and at a second, non-square size; the largest absolute
difference to the PyTorch output is printed, and the exit status is 1 when it exceeds
``--tolerance``. ONNX needs the ``onnx``, ``onnxscript`` and ``onnxruntime`` packages
(requirements.txt).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data.image_folder import load_rgb  # noqa: E402
from models import networks  # noqa: E402
from translate import load_translator  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402

FORMATS = ("torchscript", "onnx")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--name", required=True, help="the training run (CHECKPOINTS_DIR/NAME)")
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--out", type=Path, default=Path("exported"), help="folder for NAME_<direction>.pt / .onnx")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--epoch", default="latest")
    parser.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"))
    parser.add_argument("--target_domain", default=None, help="multi-domain models: the domain to translate to")
    parser.add_argument("--size", type=int, default=256, help="side of the example image (a multiple of the generator's)")
    parser.add_argument("--image", type=Path, default=None, help="the check image (default: a built-in scene)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest allowed difference to PyTorch")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset")
    return parser


def example_images(args: argparse.Namespace, channels: int, multiple: int) -> list[torch.Tensor]:
    """The check image at ``--size`` and at a non-square size, ``1 x C x H x W`` in [-1, 1]."""
    if args.size % multiple:
        raise UserError(f"--size {args.size}: the generator needs a multiple of {multiple}")
    if args.image is not None:
        picture = np.asarray(load_rgb(args.image).resize((args.size, args.size)), dtype=np.float32)
    else:
        from data.synthetic import image_rng, render_scene

        picture = render_scene(image_rng(0, "test", "A", 0), args.size, "A")[0].astype(np.float32)
    image = torch.from_numpy(picture / 127.5 - 1.0).permute(2, 0, 1)[None]
    image = image[:, :1] if channels == 1 else image
    other = (args.size + 2 * multiple, max(multiple, args.size - multiple))
    return [image, torch.nn.functional.interpolate(image, size=other, mode="bilinear", align_corners=False)]


def difference(got: Sequence[np.ndarray], expected: Sequence[torch.Tensor]) -> float:
    return max(float(np.abs(np.asarray(g) - e.numpy()).max()) for g, e in zip(got, expected))


def export(args: argparse.Namespace) -> int:
    translate_args = argparse.Namespace(name=args.name, checkpoints_dir=args.checkpoints_dir, epoch=args.epoch,
                                        direction=args.direction, target_domain=args.target_domain, precision="fp32",
                                        gpu_ids=[], eval=True)
    module, opt, _ = load_translator(translate_args)
    module = module.cpu().eval()
    names = list(module.output_names)
    channels = opt.input_nc if opt.direction == args.direction else opt.output_nc
    images = example_images(args, channels, networks.generator_size_multiple(opt.netG))
    with torch.no_grad():
        expected = [module(image) for image in images]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{args.name}_{args.target_domain or args.direction}"
    worst = 0.0
    if "torchscript" in args.format:
        path = stem.with_suffix(".pt")
        with torch.no_grad():
            traced = torch.jit.trace(module, images[0], check_trace=False)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            diffs = [difference([o.numpy() for o in loaded(image)], out) for image, out in zip(images, expected)]
        print(f"TorchScript {path}: outputs {names}; max |difference| {diffs[0]:.2e} at {tuple(images[0].shape[-2:])}, "
              f"{diffs[1]:.2e} at {tuple(images[1].shape[-2:])}")
        worst = max(worst, *diffs)
    if "onnx" in args.format:
        try:
            import onnxruntime
        except ImportError:
            raise UserError("ONNX export needs onnx, onnxscript and onnxruntime: pip install -r requirements.txt") from None
        path = stem.with_suffix(".onnx")
        dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
        torch.onnx.export(module, (images[0],), str(path), input_names=["image"], output_names=names, dynamo=True,
                          dynamic_shapes={"image": dims}, opset_version=args.opset, verbose=False)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        diffs = [difference(session.run(None, {"image": image.numpy()}), out) for image, out in zip(images, expected)]
        print(f"ONNX {path}: outputs {names}; max |difference| {diffs[0]:.2e} at {tuple(images[0].shape[-2:])}, "
              f"{diffs[1]:.2e} at {tuple(images[1].shape[-2:])}")
        worst = max(worst, *diffs)
    if worst > args.tolerance:
        print(f"error: the exported model differs from PyTorch by {worst:.2e} > --tolerance {args.tolerance}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: export(args))


if __name__ == "__main__":
    sys.exit(main())
