"""Command-line options for train.py and test.py (CycleGAN-compatible names)."""

from options.test_options import parse_test_options
from options.train_options import parse_train_options

__all__ = ["parse_test_options", "parse_train_options"]
