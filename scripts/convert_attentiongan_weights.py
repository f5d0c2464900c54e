"""Turn generators saved by the authors' AttentionGAN code into a checkpoint of this toolkit.

    python scripts/convert_attentiongan_weights.py --G_A path/latest_net_G_A.pth \
        --G_B path/latest_net_G_B.pth --name h2z_released
    python test.py --dataroot ./datasets/horse2zebra --name h2z_released --model attentiongan

The released files hold only generator weights (scheme II, keys ``conv1`` ...
``deconv3_attention``); see ``models/attentiongan_model.py`` for the key mapping. The
architecture (ngf, number of residual blocks, n masks) is read off the tensor shapes and
stored in the checkpoint, so test.py reports any option that does not match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from models.attentiongan_model import convert_released_generator, released_generator_options  # noqa: E402
from util.checkpoint import load_state_dict_file, refuse_existing_run, save_inference_checkpoint  # noqa: E402
from util.errors import UserError, run_cli  # noqa: E402


def load_released(path: Path) -> dict[str, torch.Tensor]:
    state = load_state_dict_file(path, "the authors' latest_net_G_A.pth / latest_net_G_B.pth")
    if "conv1.weight" not in state:
        raise UserError(f"{path} is not a released AttentionGAN generator (no conv1.weight key)")
    return state


def convert(g_a: Path, g_b: Path, out: Path, name: str) -> Path:
    """Write ``out`` as a checkpoint that ``test.py --model attentiongan`` can load."""
    released = {"G_A": load_released(g_a), "G_B": load_released(g_b)}
    shapes = released_generator_options(released["G_A"])
    try:
        networks = {key: convert_released_generator(state) for key, state in released.items()}
    except KeyError as err:
        raise UserError(str(err)) from None
    architecture = {
        "netG": "resnet_9blocks" if shapes["n_blocks"] == 9 else f"resnet_{shapes['n_blocks']}blocks",
        "ngf": shapes["ngf"],
        "norm": "instance",
        "no_dropout": True,
        "input_nc": shapes["input_nc"],
        "output_nc": shapes["input_nc"],
        "scheme": "II",
        "n_attention": shapes["n_attention"],
    }
    save_inference_checkpoint(out, "attentiongan", architecture, networks, {"name": name, "converted_from": [str(g_a), str(g_b)]})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--G_A", type=Path, required=True, help="released generator A -> B (latest_net_G_A.pth)")
    parser.add_argument("--G_B", type=Path, required=True, help="released generator B -> A (latest_net_G_B.pth)")
    parser.add_argument("--name", type=str, required=True, help="run name to create under --checkpoints_dir")
    parser.add_argument("--checkpoints_dir", type=Path, default=Path("checkpoints"))
    parser.add_argument("--epoch", type=str, default="latest", help="label of the written checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace the checkpoints of an existing run --name")
    args = parser.parse_args(argv)
    out = args.checkpoints_dir / args.name / ("latest.pt" if args.epoch == "latest" else f"epoch_{args.epoch}.pt")

    def run() -> None:
        refuse_existing_run(out.parent, args.overwrite)
        convert(args.G_A, args.G_B, out, args.name)
        print(f"wrote {out}; test with: python test.py --name {args.name} --model attentiongan "
              f"--checkpoints_dir {args.checkpoints_dir}")

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
