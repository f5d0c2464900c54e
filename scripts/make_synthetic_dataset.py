"""Generate the built-in synthetic horse<->zebra-like benchmark with exact masks.

Examples (from the repository root)::

    python scripts/make_synthetic_dataset.py --out datasets/synthetic
    python scripts/make_synthetic_dataset.py --out datasets/synthetic_pairs --aligned
    python scripts/make_synthetic_dataset.py --size 64 --n_train 200 --n_test 20 --force

Without ``--force`` an existing dataset with the same parameters is reused and
one with other parameters is refused; ``--force`` regenerates over an existing
synthetic dataset (a folder that is not one is never replaced).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# Running as `python scripts/make_synthetic_dataset.py` puts scripts/ on the
# path, not the repository root that holds the `data` package.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data.synthetic import (  # noqa: E402
    BACKGROUNDS,
    MIN_SIZE,
    ensure_synthetic_dataset,
    make_synthetic_dataset,
)

__all__ = ["build_parser", "ensure_synthetic_dataset", "main", "make_synthetic_dataset"]


def _bounded(kind: Callable[[str], float], low: float, high: float | None = None) -> Callable[[str], float]:
    """An argparse ``type`` that parses with ``kind`` and checks ``low <= x <= high``.

    argparse turns the ArgumentTypeError into "argument --name: ..." and exit
    status 2, so the message names the offending option.
    """
    bounds = f">= {low}" if high is None else f"in [{low}, {high}]"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__} {bounds}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Command-line options; defaults match make_synthetic_dataset's."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out",
        default="datasets/synthetic",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--size",
        type=_bounded(int, MIN_SIZE),
        default=128,
        help="image side in pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--n_train",
        type=_bounded(int, 0),
        default=1000,
        help="train images per domain (default: %(default)s)",
    )
    parser.add_argument(
        "--n_test",
        type=_bounded(int, 0),
        default=100,
        help="test images per domain (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=_bounded(int, 0),
        default=0,
        help="base random seed (default: %(default)s)",
    )
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="write the pix2pix A|B pair layout (train/, test/) instead",
    )
    parser.add_argument(
        "--empty_fraction",
        type=_bounded(float, 0.0, 1.0),
        default=0.03,
        help="fraction of images without any object (default: %(default)s)",
    )
    parser.add_argument(
        "--backgrounds",
        choices=BACKGROUNDS,
        default="overlapping",
        help="background palettes of the two domains: overlapping (default) or distinct "
        "(the hard-background setting: green meadows in A, pale savanna in B)",
    )
    parser.add_argument(
        "--domains",
        type=int,
        default=0,
        help="0: the two-domain layout (trainA/, trainB/); 2-4: the multi-domain layout train/<domain>/ with "
        "plain, striped, spotted and checked objects (for attentiongan_multi)",
    )
    parser.add_argument(
        "--workers",
        type=_bounded(int, 1),
        default=None,
        help="worker processes (default: all CPU cores)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="regenerate over an existing synthetic dataset",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, generate (or reuse) the dataset and print its path."""
    parser = build_parser()
    args = parser.parse_args(argv)
    options = {
        "size": args.size,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "seed": args.seed,
        "aligned": args.aligned,
        "empty_fraction": args.empty_fraction,
        "backgrounds": args.backgrounds,
        "domains": args.domains,
        "workers": args.workers,
        "progress": not args.quiet,
    }
    try:
        if args.force:
            root = make_synthetic_dataset(args.out, overwrite=True, **options)
        else:
            root = ensure_synthetic_dataset(args.out, **options)
    except (ValueError, FileExistsError) as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
