"""Merge evaluated runs into one leaderboard: ``python scripts/compare.py results/a/test_latest results/b/test_latest``.

Each folder needs the ``metrics.json`` of ``scripts/evaluate.py``. Writes ``leaderboard.md``,
``leaderboard.html`` and a bar chart per measure into ``--out`` (default
``./results/comparison``): one row per run, one column per measure and direction, the best
value of each column marked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# Running as `python scripts/compare.py` puts scripts/ on the path, not the repository root.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evaluation.leaderboard import write_leaderboard  # noqa: E402
from util.errors import run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("results", nargs="+", help="result folders, each evaluated by scripts/evaluate.py")
    parser.add_argument("--out", default="./results/comparison", help="where to write the leaderboard")
    parser.add_argument("--group_by_model", action="store_true",
                        help="also a per-model table: mean and spread over each model's runs (seeds)")
    parser.add_argument("--key_images", type=int, default=0, help="per model, a strip of this many test images with masks")
    return parser


def compare(args: argparse.Namespace) -> None:
    paths = write_leaderboard([Path(p) for p in args.results], Path(args.out), args.group_by_model, args.key_images)
    for path in paths.values():
        print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: compare(args))


if __name__ == "__main__":
    sys.exit(main())
