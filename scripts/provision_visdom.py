"""Provision the Visdom server's front-end files from the npm registry.

``python -m visdom.server`` downloads its JavaScript, CSS and font files from
public CDNs (unpkg, cdn.plot.ly, d3js.org, cdnjs) every time it starts without
a matching ``static/version.built`` marker, and crashes when it cannot reach
them.  Every one of those files is also published on the npm registry, which
is reachable from machines that can only talk to package registries.

This script

1. asks the *installed* visdom which files it would download and where it
   would put them (it runs visdom's own ``download_scripts`` against a
   temporary directory with the network calls replaced by recorders, so the
   list always matches the installed version),
2. maps each CDN URL to an npm package, version and file inside the package,
3. fetches each package once with ``npm pack`` into a cache directory
   (default ``~/.cache/attngan-toolkit/npm``) and copies the file into
   visdom's static directory,
4. writes ``static/version.built`` so the server skips downloading.

It is idempotent: files already present are left alone (use ``--force`` to
replace them).  ``--check`` only reports missing files (exit code 1 if any).
Afterwards ``python -m visdom.server -port PORT`` starts with no network.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

DEFAULT_CACHE = Path.home() / ".cache" / "attngan-toolkit" / "npm"
BUILT_MARKER = "version.built"

# CDN files that are not published on unpkg under their npm name/path.
# Keys are regular expressions over the URL visdom requests.
_SPECIAL_SOURCES: list[tuple[str, str, str]] = [
    # (url regex, npm spec template, path inside the package)
    (
        r"^https?://cdn\.plot\.ly/plotly-(?P<v>[\d.]+)\.min\.js$",
        "plotly.js-dist-min@{v}",
        "plotly.min.js",
    ),
    # d3js.org serves the last 3.x release, 3.5.17 (the final v3 release).
    (r"^https?://d3js\.org/d3\.v3\.min\.js$", "d3@3.5.17", "d3.min.js"),
    # d3js.org serves the last 1.x release, 1.0.1 (the final release).
    (
        r"^https?://d3js\.org/d3-selection-multi\.v1\.js$",
        "d3-selection-multi@1.0.1",
        "build/d3-selection-multi.js",
    ),
    (
        r"^https?://cdnjs\.cloudflare\.com/ajax/libs/mathjax/(?P<v>[\d.]+)/(?P<p>[^?#]+)",
        "mathjax@{v}",
        "{p}",
    ),
]

_UNPKG = re.compile(r"^https?://unpkg\.com/(?P<name>(?:@[^/@]+/)?[^/@]+)@(?P<v>[^/]+)(?:/(?P<p>[^?#]*))?")


class ProvisionError(RuntimeError):
    """Raised when a file the Visdom server needs cannot be provisioned."""


@dataclass(frozen=True)
class Source:
    """Where a file visdom wants lives on the npm registry."""

    spec: str  # npm package spec, e.g. "react@16.2.0"
    path: str | None  # file inside the package; None means the package "main"


@dataclass(frozen=True)
class Needed:
    """One file the Visdom server would download."""

    url: str
    target: str  # path relative to visdom's install dir, e.g. "static/js/x.js"


def visdom_install_dir() -> Path:
    """Return the directory the Visdom server reads its static files from."""
    try:
        from visdom.utils.shared_utils import get_visdom_path
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise ProvisionError(f"visdom is not installed in this Python ({sys.executable}): {exc}") from exc
    return Path(get_visdom_path())


def visdom_version() -> str:
    """Return the version string visdom writes into ``static/version.built``."""
    import visdom

    return str(visdom.__version__)


def needed_files() -> list[Needed]:
    """List every (url, target) visdom's ``download_scripts`` would fetch.

    Runs the installed ``visdom.server.build.download_scripts`` against an
    empty temporary directory with urllib and requests replaced by fakes that
    answer each request with its own URL; the files it writes therefore name
    both the target path and the URL.
    """
    from visdom.server import build

    def fake_open(req: object, *args: object, **kwargs: object) -> io.BytesIO:
        url = req.full_url if hasattr(req, "full_url") else str(req)
        return io.BytesIO(url.encode())

    def fake_get(url: str, *args: object, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(content=url.encode(), status_code=200)

    opener = SimpleNamespace(open=fake_open)
    with tempfile.TemporaryDirectory(prefix="visdom-dryrun-") as tmp:
        with (
            mock.patch.object(build.request, "build_opener", return_value=opener),
            mock.patch.object(build.request, "install_opener"),
            mock.patch("requests.get", side_effect=fake_get),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            build.download_scripts(install_dir=tmp)
        root = Path(tmp)
        found = [
            Needed(url=p.read_text(), target=p.relative_to(root).as_posix())
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != BUILT_MARKER
        ]
    if not found:
        raise ProvisionError("could not determine the files visdom downloads (dry run wrote nothing)")
    return found


def npm_source(url: str) -> Source:
    """Map a CDN URL requested by visdom to an npm package file."""
    for pattern, spec, path in _SPECIAL_SOURCES:
        m = re.match(pattern, url)
        if m:
            return Source(spec=spec.format(**m.groupdict()), path=path.format(**m.groupdict()))
    m = _UNPKG.match(url)
    if m:
        return Source(spec=f"{m['name']}@{m['v']}", path=m["p"] or None)
    raise ProvisionError(f"no npm source known for {url}")


def npm_pack(spec: str, cache_dir: Path) -> Path:
    """Return the cached tarball of ``spec``, fetching it with ``npm pack``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    index = cache_dir / "index.json"
    known = json.loads(index.read_text()) if index.exists() else {}
    cached = known.get(spec)
    if cached and (cache_dir / cached).is_file():
        return cache_dir / cached
    npm = shutil.which("npm")
    if npm is None:
        raise ProvisionError(f"npm is needed to fetch {spec} but is not on PATH")
    proc = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(cache_dir)],
        capture_output=True,
        text=True,
        cwd=cache_dir,
        check=False,
    )
    if proc.returncode != 0:
        raise ProvisionError(f"`npm pack {spec}` failed: {proc.stderr.strip()[-800:]}")
    filename = json.loads(proc.stdout)[0]["filename"]
    known[spec] = filename
    index.write_text(json.dumps(known, indent=1, sort_keys=True))
    print(f"  fetched {spec} -> {cache_dir / filename}")
    return cache_dir / filename


def _package_index(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Map package-relative paths to the members of an npm tarball."""
    # npm tarballs hold one top-level directory, normally "package/".
    return {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile() and "/" in m.name}


def read_package_file(tar: tarfile.TarFile, path: str | None) -> bytes:
    """Read one file of an open npm tarball; ``None`` reads the package's main."""
    members = _package_index(tar)
    if path is None:  # unpkg serves the "main" file for a bare package URL
        meta = json.loads(tar.extractfile(members["package.json"]).read())
        path = os.path.normpath(meta.get("main") or "index.js").replace(os.sep, "/")
        if path not in members and path + ".js" in members:
            path += ".js"
    member = members.get(path)
    if member is None:
        raise ProvisionError(f"{path} is not in the package")
    data = tar.extractfile(member).read()
    if not data:
        raise ProvisionError(f"{path} is empty in the package")
    return data


def _plan(install_dir: Path, force: bool) -> dict[str, list[tuple[Needed, Source]]]:
    """Group the files still to write by npm package spec."""
    plan: dict[str, list[tuple[Needed, Source]]] = {}
    for item in needed_files():
        target = install_dir / item.target
        if target.is_file() and target.stat().st_size > 0 and not force:
            print(f"  present  {item.target}")
            continue
        try:
            source = npm_source(item.url)
        except ProvisionError as exc:
            raise ProvisionError(f"cannot provision {target}: {exc}") from exc
        plan.setdefault(source.spec, []).append((item, source))
    return plan


def provision(install_dir: Path, cache_dir: Path, force: bool = False) -> list[str]:
    """Put every file visdom needs under ``install_dir``; return what was written."""
    written: list[str] = []
    for spec, items in _plan(install_dir, force).items():
        names = ", ".join(str(install_dir / item.target) for item, _ in items)
        try:
            tarball = npm_pack(spec, cache_dir)
        except (ProvisionError, OSError, ValueError, LookupError) as exc:
            raise ProvisionError(f"cannot provision {names}: {exc}") from exc
        try:
            with tarfile.open(tarball, "r:gz") as tar:
                for item, source in items:
                    _write_one(install_dir, item, source, tar)
                    written.append(item.target)
        except (OSError, tarfile.TarError, LookupError, ValueError) as exc:
            raise ProvisionError(
                f"cannot provision {names} from {tarball} ({exc}); delete that tarball to fetch it again"
            ) from exc
    marker = install_dir / "static" / BUILT_MARKER
    marker.write_text(visdom_version())
    print(f"  marker   {marker.relative_to(install_dir)} = {visdom_version()}")
    return written


def _write_one(install_dir: Path, item: Needed, source: Source, tar: tarfile.TarFile) -> None:
    """Copy one package file to the place visdom expects it."""
    target = install_dir / item.target
    try:
        data = read_package_file(tar, source.path)
    except ProvisionError as exc:
        raise ProvisionError(f"cannot provision {target} (visdom fetches it from {item.url}): npm {source.spec}: {exc}") from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise ProvisionError(f"cannot write {target}: {exc}") from exc
    print(f"  wrote    {item.target}  <- npm {source.spec} {source.path or '(main)'}")


def missing(install_dir: Path) -> list[str]:
    """Return the needed files (and the build marker) absent under ``install_dir``."""
    absent = [n.target for n in needed_files() if not (install_dir / n.target).is_file()]
    marker = install_dir / "static" / BUILT_MARKER
    if not marker.is_file() or marker.read_text().strip() != visdom_version():
        absent.append(f"static/{BUILT_MARKER}")
    return absent


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="npm tarball cache (default: %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="replace files that are already present")
    parser.add_argument("--check", action="store_true", help="only report missing files; exit 1 if any")
    args = parser.parse_args(argv)
    try:
        install_dir = visdom_install_dir()
        if args.check:
            absent = missing(install_dir)
            for name in absent:
                print(f"missing: {install_dir / name}")
            print("visdom static files: " + ("incomplete" if absent else "complete") + f" ({install_dir / 'static'})")
            return 1 if absent else 0
        print(f"Provisioning visdom {visdom_version()} static files in {install_dir / 'static'}")
        written = provision(install_dir, args.cache_dir, force=args.force)
    except (ProvisionError, OSError) as exc:
        print(f"provision_visdom: ERROR: {exc}", file=sys.stderr)
        return 2
    print(f"Done: {len(written)} file(s) written; `python -m visdom.server` can now start offline.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
