"""The exceptions a user sees as messages, not tracebacks, and the command-line wrapper.

- :class:`UserError`: a problem with the user's input (bad path, option or file), explained
  with what to do. Exit status 2.
- :class:`RunFailed`: the work itself went wrong in a way the user must act on (training
  diverged, a checkpoint would have held non-finite weights). Exit status 3.
- A full disk anywhere (``ENOSPC``) becomes a message naming the device and the file, exit
  status 2; the atomic writers guarantee that the previous version of that file is intact.

Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """A problem with the user's input, explained in the message with what to do."""


class RunFailed(Exception):
    """The run cannot go on (e.g. non-finite losses); the message says what is intact and what to do."""


class DiskFull(UserError):
    """No space left while writing a file."""


def user_message(err: BaseException) -> str:
    """The message of a :class:`UserError`, also when a DataLoader worker re-raised it.

    Worker errors arrive with the worker's traceback folded into the message; the user
    needs only the last line, which is ours.
    """
    text = str(err)
    marker = "UserError: "
    return text.rsplit(marker, 1)[-1].strip() if marker in text else text


def filesystem_of(path: str | Path) -> str:
    """The device (and mount point) holding ``path``, e.g. ``/dev/vda (mounted at /)``."""
    current = Path(path).resolve()
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount_point = line.split()[:2]
            if mount_point == str(current):
                return f"{device} (mounted at {current})"
    except OSError:
        pass
    return f"the file system mounted at {current}"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it was raised from) is ``ENOSPC``.

    ``torch.save`` reports a full disk as a C++ ``RuntimeError`` ("unexpected pos") chained to
    the ``OSError``, or only in its text.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def disk_full(path: str | Path, previous_intact: bool) -> DiskFull:
    """The error for a full disk while writing ``path``."""
    before = f"the previous {Path(path).name} is intact" if previous_intact else "nothing was overwritten"
    return DiskFull(
        f"no space left on {filesystem_of(path)} while writing {path}; {before}. Free space and run the command again"
    )


def run_cli(action: Callable[[], object], interrupted_hint: str = "") -> int:
    """Run a command-line entry point: ``error: ...`` and exit status 2 for a :class:`UserError`
    (or a full disk), 3 for a :class:`RunFailed`, 130 for Ctrl-C; an ``int`` the action returns
    is its exit status (e.g. 1 when some files failed), anything else means 0. ``interrupted_hint``
    (how to go on, e.g. train.py's ``--continue_train``) follows an interruption and a full disk."""
    try:
        result = action()
    except DiskFull as err:
        print(f"error: {user_message(err)}{f' ({interrupted_hint})' if interrupted_hint else ''}", file=sys.stderr)
        return 2
    except UserError as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    except RunFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"interrupted{'; ' + interrupted_hint if interrupted_hint else ''}", file=sys.stderr)
        return 130
    except Exception as err:
        if is_disk_full(err):
            filename = getattr(err, "filename", None) or "a file"
            hint = f" ({interrupted_hint})" if interrupted_hint else ""
            print(f"error: {disk_full(filename, previous_intact=False)}{hint}", file=sys.stderr)
            return 2
        raise
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
