"""One training run per folder: a lock file in the run folder holding the owner's PID and host.

``train.py`` takes the lock before it writes anything and releases it when it ends (also on an
error or Ctrl-C). A second ``train.py`` with the same ``--name`` finds the lock and stops, naming
the first run; a lock left by a killed run is stale when its PID no longer exists on this host,
and is then taken over. A lock from another host cannot be checked: the message says so and how
to remove it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from util.errors import UserError, disk_full, is_disk_full

LOCK_FILE = ".train.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


class RunLock:
    """``with RunLock(run_dir):`` or :meth:`acquire` / :meth:`release`."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False
        self.created_folder = False

    def acquire(self) -> None:
        self.created_folder = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                if holder.get("host") == owner["host"] and isinstance(holder.get("pid"), int) and not _pid_alive(holder["pid"]):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                where = "this host" if holder.get("host") == owner["host"] else f"host {holder.get('host', '?')}"
                raise UserError(
                    f"run folder {self.path.parent} is in use by another train.py (PID {holder.get('pid', '?')} on {where}); "
                    f"wait for it to finish or choose another --name. If that run is gone (another host, say), "
                    f"delete {self.path}"
                ) from None
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(owner, handle)
            except OSError as err:
                self.path.unlink(missing_ok=True)
                if is_disk_full(err):
                    raise disk_full(self.path, previous_intact=False) from None
                raise
            self.held = True
            return
        raise UserError(f"could not take the lock {self.path}; delete it if no train.py uses this run")

    def release(self) -> None:
        """Remove the lock (and the run folder when taking the lock created it and nothing was written)."""
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
            if self.created_folder and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()
