"""Options of ``test.py``: where results go and how many images to translate."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from options.base_options import parse_options


def add_test_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("testing")
    g.add_argument("--results_dir", type=str, default="./results", help="results go to RESULTS_DIR/NAME/PHASE_EPOCH/")
    g.add_argument("--aspect_ratio", type=float, default=1.0, help="aspect ratio (w/h) of saved result images")
    g.add_argument("--phase", type=str, default="test", help="train, val, test, ...: which data folders to read")
    g.add_argument("--eval", action="store_true", help="eval mode at test time (batch norm statistics, no dropout)")
    g.add_argument("--num_test", type=int, default=50, help="how many images to translate (0: all)")
    g.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.set_defaults(num_threads=0)


def parse_test_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``test.py``'s command line. Tests run without random crops or flips."""
    return parse_options(False, add_test_options, argv, adjust=without_augmentation)


def without_augmentation(opt: argparse.Namespace) -> None:
    """Test at the training crop size (unless ``--load_size`` is given), in order, unflipped."""
    if "--load_size" not in opt.cli_args:
        opt.load_size = opt.crop_size
    opt.serial_batches = True
    opt.no_flip = True
