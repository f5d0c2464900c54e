"""Download a dataset by name into ./datasets/NAME, as the CycleGAN repository's scripts do:

    python scripts/download_dataset.py horse2zebra            # CycleGAN sets: trainA/ trainB/ testA/ testB/
    python scripts/download_dataset.py facades --layout pix2pix   # pix2pix sets: train/ val/ test/ (A|B pairs)

The standard archive addresses, a resumable download with a progress bar (run the same command
again after an interruption), ``--sha256`` when you know the checksum, and unpacking into
``datasets/NAME`` that is either complete or absent. Offline, it says which file to fetch elsewhere
and where to put it: the same command then unpacks it without downloading.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from util.download import CYCLEGAN_DATASETS, PIX2PIX_DATASETS, fetch_dataset, known_source  # noqa: E402
from util.errors import run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help=f"CycleGAN: {', '.join(CYCLEGAN_DATASETS)}; pix2pix: {', '.join(PIX2PIX_DATASETS)}")
    parser.add_argument("--layout", choices=("auto", "cyclegan", "pix2pix"), default="auto",
                        help="which repository's set (facades and maps exist in both; auto: CycleGAN's when it has one)")
    parser.add_argument("--root", type=Path, default=Path("datasets"), help="where NAME/ is created")
    parser.add_argument("--url", default=None, help="another address for the archive (.zip or .tar.gz)")
    parser.add_argument("--sha256", default=None, help="the archive's expected SHA-256 (refused when it differs)")
    parser.add_argument("--keep_archive", action="store_true", help="keep the downloaded archive beside the folder")
    parser.add_argument("--no_progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: fetch_dataset(known_source(args.name, args.layout, args.url), args.root, args.sha256,
                                         args.keep_archive, not args.no_progress),
                   interrupted_hint="run the same command again to resume the download")


if __name__ == "__main__":
    sys.exit(main())
