"""Turn generator files of the CycleGAN/pix2pix repository into a checkpoint of this toolkit.

    python scripts/convert_cyclegan_weights.py --G_A horse2zebra.pth --name h2z_released --model cycle_gan
    python scripts/convert_cyclegan_weights.py --G_A latest_net_G_A.pth --G_B latest_net_G_B.pth --name h2z --model cycle_gan
    python scripts/convert_cyclegan_weights.py --G latest_net_G.pth --name facades --model pix2pix

The files hold ResNet or U-Net generators with keys ``model.N...`` (``horse2zebra.pth``, the
repository's pretrained download, is its ``G_A``); the architecture (ngf, blocks or U-Net size,
norm, dropout) is read off the weights (:func:`models.cycle_gan_model.convert_released_generator`).
The result, ``CHECKPOINTS_DIR/NAME/latest.pt``, translates with ``translate.py --name NAME``
(with only ``--G_A``: ``--direction AtoB``) and, with both generators, tests with ``test.py``.
It holds weights only: it cannot be resumed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


from models import networks  # noqa: E402
from models.cycle_gan_model import convert_released_generator  # noqa: E402
from util.checkpoint import load_state_dict_file, refuse_existing_run, save_inference_checkpoint  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402


def convert(files: dict[str, Path], model: str, out: Path, name: str) -> dict[str, object]:
    converted, architectures = {}, {}
    for network, path in files.items():
        try:
            released = load_state_dict_file(path, "a CycleGAN/pix2pix generator (latest_net_G_A.pth, horse2zebra.pth)")
            state, architecture = convert_released_generator(released)
        except KeyError as err:
            raise UserError(f"{path}: {err.args[0]}") from None
        generator = networks.define_generator(architecture["netG"], architecture["input_nc"], architecture["output_nc"],
                                              architecture["ngf"], architecture["norm"], not architecture["no_dropout"])
        try:
            generator.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(f"{path} does not fit the {architecture['netG']} layout it seems to have: {err}") from None
        converted[network], architectures[network] = state, architecture
    first = next(iter(architectures.values()))
    if any(a != first for a in architectures.values()):
        raise UserError(f"the generators differ in architecture: {architectures}")
    options = {"name": name, "converted_from": {k: str(v) for k, v in files.items()}}
    save_inference_checkpoint(out, model, first, converted, options)
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("cycle_gan", "pix2pix"), default="cycle_gan")
    parser.add_argument("--G_A", type=Path, default=None,
                        help="cycle_gan: the A -> B generator (latest_net_G_A.pth, horse2zebra.pth)")
    parser.add_argument("--G_B", type=Path, default=None, help="cycle_gan: the B -> A generator (latest_net_G_B.pth)")
    parser.add_argument("--G", type=Path, default=None, help="pix2pix: the generator (latest_net_G.pth)")
    parser.add_argument("--name", required=True, help="run name to create under --checkpoints_dir")
    parser.add_argument("--checkpoints_dir", type=Path, default=Path("checkpoints"))
    parser.add_argument("--overwrite", action="store_true", help="replace the checkpoints of an existing run --name")
    args = parser.parse_args(argv)
    if args.model == "pix2pix":
        files = {"G": args.G or args.G_A}
    else:
        files = {k: v for k, v in (("G_A", args.G_A), ("G_B", args.G_B)) if v is not None}
    if not all(files.values()) or not files:
        parser.error("give --G (pix2pix) or --G_A and/or --G_B (cycle_gan)")
    out = args.checkpoints_dir / args.name / "latest.pt"

    def run() -> None:
        refuse_existing_run(out.parent, args.overwrite)
        architecture = convert(files, args.model, out, args.name)
        print(f"wrote {out} ({args.model}, {architecture['netG']}, ngf {architecture['ngf']}, {architecture['norm']} norm); "
              f"translate with: python translate.py --name {args.name} --checkpoints_dir {args.checkpoints_dir} "
              f"--input IMAGES --output OUT")

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
