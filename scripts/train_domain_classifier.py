"""Train a domain classifier: A vs B (``trainA/``, ``trainB/``) or k domains (``train/<domain>/``).

    python scripts/train_domain_classifier.py --dataroot ./datasets/horse2zebra
    python scripts/evaluate.py --results results/h2z_att/test_latest --classifier checkpoints/domain_classifier/horse2zebra.pt

The network is :class:`models.classifier.DomainClassifier` (``--backbone small``:
CPU-friendly, 64 px by default; ``--backbone resnet50`` from a local ImageNet weights file). The
accuracy printed at the end is measured on held-out images: the dataset's test folders when
they exist, otherwise a ``--val_fraction`` split of the training images (the output says
which). ``--cam_page`` also writes a page of class activation maps on held-out images and,
where those have masks, the CAM's MAE against them (SAAGAN Table 3). The checkpoint is saved
atomically to ``--out``, to ``CHECKPOINTS_DIR/NAME/classifier.pt`` with ``--name``, or by
default to ``CHECKPOINTS_DIR/domain_classifier/<dataset name>.pt``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

# Running as `python scripts/train_domain_classifier.py` puts scripts/ on the path, not the repository root.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from models.classifier_training import classifier_parser, train_classifier  # noqa: E402
from util.errors import run_cli  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    args = classifier_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    return run_cli(lambda: train_classifier(args), "nothing was saved")


if __name__ == "__main__":
    sys.exit(main())
