"""The one exception type for problems the user can fix (bad path, option or file).

``train.py`` and ``test.py`` print its message and exit with status 2 instead of
showing a traceback from deep inside; everything else is a bug and keeps its traceback.
"""

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input, explained in the message with what to do."""


def user_message(err: BaseException) -> str:
    """The message of a :class:`UserError`, also when a DataLoader worker re-raised it.

    Worker errors arrive with the worker's traceback folded into the message; the user
    needs only the last line, which is ours.
    """
    text = str(err)
    marker = "UserError: "
    return text.rsplit(marker, 1)[-1].strip() if marker in text else text


def run_cli(action: Callable[[], object], interrupted_hint: str = "") -> int:
    """Run a command-line entry point: a :class:`UserError` becomes ``error: ...`` and exit status 2."""
    try:
        action()
    except UserError as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted{'; ' + interrupted_hint if interrupted_hint else ''}", file=sys.stderr)
        return 130
    return 0
