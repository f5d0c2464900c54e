"""Options shared by training and testing; names follow the CycleGAN repository.

Parsing happens in two passes: the first reads ``--model`` (and ``--dataset_mode``) so
the chosen model can add its own options and change defaults
(``modify_commandline_options``), the second parses everything. An unknown model or
option is an argparse error: a message and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from data import available_datasets
from data.transforms import PREPROCESS_MODES
from models import available_models, get_model_class, networks
from options.validation import validate_options
from util.checkpoint import atomic_write_text
from util.command_line import given_options
from util.distributed import parse_gpu_ids, select_device  # noqa: F401  (re-exported for the scripts)
from util.precision import PRECISIONS


def add_base_options(parser: argparse.ArgumentParser) -> None:
    """Options every script needs: data, run name, devices, architecture."""
    g = parser.add_argument_group("basic")
    g.add_argument(
        "--dataroot",
        type=str,
        default=None,
        help="dataset folder (trainA/, trainB/, ...); default: the built-in synthetic dataset, generated on first use",
    )
    g.add_argument(
        "--name", type=str, default="experiment_name", help="run name: checkpoints and results go in folders of this name"
    )
    g.add_argument(
        "--gpu_ids", type=str, default="0", help="GPU ids, e.g. 0 or 0,1; -1 for CPU (CPU is used when CUDA is absent)"
    )
    g.add_argument("--checkpoints_dir", type=str, default="./checkpoints", help="where runs are saved")
    g.add_argument("--seed", type=int, default=0, help="seed for weights, data order, augmentation and image pools")

    g = parser.add_argument_group("model")
    g.add_argument("--model", type=str, default="cycle_gan", choices=available_models(), help="the model to train or test")
    g.add_argument("--input_nc", type=int, default=3, help="input image channels: 3 RGB, 1 grayscale")
    g.add_argument("--output_nc", type=int, default=3, help="output image channels: 3 RGB, 1 grayscale")
    g.add_argument("--ngf", type=int, default=64, help="generator filters in the last conv layer")
    g.add_argument("--ndf", type=int, default=64, help="discriminator filters in the first conv layer")
    g.add_argument(
        "--netD",
        type=str,
        default="basic",
        choices=networks.DISCRIMINATORS,
        help="discriminator: basic = 70x70 PatchGAN, n_layers = PatchGAN with --n_layers_D, pixel = 1x1 PatchGAN",
    )
    g.add_argument("--netG", type=str, default="resnet_9blocks", choices=networks.GENERATORS, help="generator architecture")
    g.add_argument("--n_layers_D", type=int, default=3, help="layers of the n_layers discriminator")
    g.add_argument("--norm", type=str, default="instance", choices=networks.NORM_TYPES, help="normalisation layer")
    g.add_argument("--init_type", type=str, default="normal", choices=networks.INIT_TYPES, help="weight initialisation")
    g.add_argument("--init_gain", type=float, default=0.02, help="scale for normal, xavier and orthogonal init")
    g.add_argument("--no_dropout", action="store_true", help="no dropout in the generator")

    g = parser.add_argument_group("data")
    g.add_argument(
        "--dataset_mode",
        type=str,
        default="unaligned",
        choices=available_datasets(),
        help="unaligned (trainA/trainB), aligned (A|B side by side) or single (one folder)",
    )
    g.add_argument("--direction", type=str, default="AtoB", choices=("AtoB", "BtoA"), help="translation direction")
    g.add_argument("--serial_batches", action="store_true", help="take images in order instead of shuffled")
    g.add_argument(
        "--num_threads",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="data loading worker processes (0: load in the main process)",
    )
    g.add_argument("--batch_size", type=int, default=1, help="input batch size")
    g.add_argument("--load_size", type=int, default=286, help="scale images to this size")
    g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
    g.add_argument("--max_dataset_size", type=float, default=float("inf"), help="use at most this many images per folder")
    g.add_argument("--preprocess", type=str, default="resize_and_crop", choices=PREPROCESS_MODES, help="resize/crop at load time")
    g.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
    g.add_argument("--display_winsize", type=int, default=256, help="display size of images on the web page and Visdom")

    g = parser.add_argument_group("speed")
    g.add_argument(
        "--precision",
        type=str,
        default="fp32",
        choices=PRECISIONS,
        help="number format of the networks: fp32, bf16 or fp16 autocast (losses stay fp32; fp16 scales gradients); "
        "auto: bf16 on CPUs with AVX512-BF16/AMX and Ampere or newer GPUs, fp32 elsewhere. "
        "See docs/performance.md for what each gains where",
    )
    g.add_argument(
        "--channels_last",
        action="store_true",
        help="channels-last memory format for networks and inputs (see docs/performance.md)",
    )
    g.add_argument("--compile", action="store_true", help="torch.compile every network (see docs/performance.md)")

    g = parser.add_argument_group("misc")
    g.add_argument("--epoch", type=str, default="latest", help="checkpoint to load: latest or an epoch number")
    g.add_argument("--verbose", action="store_true", help="print network summaries")
    g.add_argument("--suffix", type=str, default="", help="appended to --name, formatted with the options, e.g. {model}_{netG}")


def build_parser(
    is_train: bool, add_phase_options: Callable[[argparse.ArgumentParser], None], argv: Sequence[str]
) -> argparse.ArgumentParser:
    """The full parser for ``argv``: base options, phase options, then the model's own."""
    parser = argparse.ArgumentParser(
        description="Attention-guided unpaired image-to-image translation: " + ("training" if is_train else "testing"),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        add_help=False,
    )
    add_base_options(parser)
    add_phase_options(parser)
    known, _ = parser.parse_known_args(argv)
    get_model_class(known.model).modify_commandline_options(parser, is_train)
    # Help is added last, so ``--model NAME --help`` lists that model's own options too.
    parser.add_argument("-h", "--help", action="help", help="show this help message and exit")
    return parser


def parse_options(
    is_train: bool,
    add_phase_options: Callable[[argparse.ArgumentParser], None],
    argv: Sequence[str] | None = None,
    adjust: Callable[[argparse.Namespace], None] | None = None,
) -> argparse.Namespace:
    """Parse ``argv`` (default: the command line) into the options namespace; ``adjust`` sets
    phase-specific values before the options are validated."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(is_train, add_phase_options, argv)
    opt = parser.parse_args(argv)
    opt.isTrain = is_train
    try:
        opt.gpu_ids = parse_gpu_ids(opt.gpu_ids)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if opt.suffix:
        opt.name = f"{opt.name}_{opt.suffix.format(**vars(opt))}"
    opt.cli_args = argv
    opt.parser_defaults = {action.dest: action.default for action in parser._actions if action.dest != "help"}
    if adjust is not None:
        adjust(opt)
    validate_options(opt, get_model_class(opt.model).validate_options)
    return opt


# Options of a test or translation run itself; every other one can come from the training run.
RUN_SPECIFIC = frozenset({
    "name", "checkpoints_dir", "gpu_ids", "epoch", "isTrain", "precision", "batch_size", "num_threads", "preprocess",
    "load_size", "crop_size", "dataroot", "results_dir", "phase", "eval", "channels_last", "compile", "no_progress",
    "verbose", "suffix", "cli_args", "parser_defaults", "num_test", "aspect_ratio", "display_winsize", "serial_batches",
    "no_flip", "max_dataset_size", "direction", "dataset_mode",
})


def adopt_checkpoint_options(opt: argparse.Namespace, checkpoint: dict[str, Any]) -> list[str]:
    """Take the training run's architecture and model options for every option not given on the
    command line (so ``test.py --name RUN`` needs no repeated ``--ngf``); returns what it set.

    Values given explicitly stay, and a conflict with the architecture is then reported by
    :func:`util.checkpoint.check_architecture`.
    """
    given = given_options(opt)
    saved = {**checkpoint.get("options", {}), **checkpoint.get("architecture", {})}
    adopted = []
    for key, value in saved.items():
        if key in RUN_SPECIFIC or key in given or not (hasattr(opt, key) or key == "domain_names"):
            continue
        if getattr(opt, key, None) != value:
            adopted.append(key)
        setattr(opt, key, value)
    return adopted


def format_options(opt: argparse.Namespace) -> str:
    """One option per line, marking values that differ from the default."""
    defaults = getattr(opt, "parser_defaults", {})
    lines = ["----------------- Options ---------------"]
    for key, value in sorted(vars(opt).items()):
        if key in ("parser_defaults", "cli_args"):
            continue
        note = f"\t[default: {defaults[key]}]" if key in defaults and defaults[key] != value else ""
        lines.append(f"{key:>25}: {value!s:<30}{note}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines) + "\n"


def save_options(opt: argparse.Namespace, folder: Path, phase: str) -> Path:
    """Write ``{phase}_opt.txt`` into the run folder so results can be traced to settings."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{phase}_opt.txt"
    atomic_write_text(path, "command: " + " ".join(opt.cli_args) + "\n" + format_options(opt))
    return path
