"""What the user typed: the options given explicitly on the command line (``opt.cli_args``)."""

from __future__ import annotations

import argparse


def given_options(opt: argparse.Namespace) -> set[str]:
    """The names (without dashes) of the options given on the command line, ``--name value`` or
    ``--name=value``; empty for a namespace not built by the option parser."""
    return {arg.split("=", 1)[0][2:] for arg in getattr(opt, "cli_args", None) or [] if arg.startswith("--")}
