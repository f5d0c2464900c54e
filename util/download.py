"""Datasets by name, as the CycleGAN repository's download scripts fetch them: a resumable download
with a progress bar, an optional checksum, and unpacking that never leaves a half-written folder.

``fetch_dataset(name, root)`` puts ``<root>/<name>/`` in place:

1. an archive already at ``<root>/<name>.zip`` (or ``.tar.gz``), e.g. copied there by hand on an
   offline machine, is used as it is; otherwise it is downloaded to ``<archive>.part``, resuming
   a partial download with an HTTP ``Range`` request, then renamed;
2. its SHA-256 is checked when one is known (``--sha256``);
3. it is unpacked into a temporary folder beside the target (members that would land outside it
   are refused) and the dataset folder is renamed into place, so ``<root>/<name>/`` is either
   complete or absent.

Offline, the error names the URL and where to put the archive so that the same command unpacks it.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from util.errors import UserError

CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
CYCLEGAN_DATASETS = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
                     "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "ae_photos")
PIX2PIX_DATASETS = ("night2day", "edges2handbags", "edges2shoes", "facades", "maps")
CHUNK = 1 << 16


@dataclass(frozen=True)
class DatasetSource:
    name: str
    url: str
    layout: str  # "cyclegan" (trainA/ trainB/ ...) or "pix2pix" (train/ val/ with A|B pairs)

    @property
    def archive_name(self) -> str:
        return self.name + (".tar.gz" if self.url.endswith(".tar.gz") else ".zip")


def known_source(name: str, layout: str = "auto", url: str | None = None) -> DatasetSource:
    """Where ``name`` comes from: ``layout`` picks the CycleGAN (unpaired) or pix2pix (paired) set
    for names both repositories have (facades, maps); ``url`` overrides the address."""
    if layout == "auto":
        layout = "cyclegan" if name in CYCLEGAN_DATASETS else "pix2pix" if name in PIX2PIX_DATASETS else ""
    if url:
        return DatasetSource(name, url, layout or "cyclegan")
    if layout == "cyclegan" and name in CYCLEGAN_DATASETS:
        return DatasetSource(name, CYCLEGAN_URL.format(name=name), layout)
    if layout == "pix2pix" and name in PIX2PIX_DATASETS:
        return DatasetSource(name, PIX2PIX_URL.format(name=name), layout)
    known = f"CycleGAN: {', '.join(CYCLEGAN_DATASETS)}; pix2pix (--layout pix2pix): {', '.join(PIX2PIX_DATASETS)}"
    raise UserError(f"unknown dataset {name!r} for --layout {layout or 'auto'}; known: {known} (or give --url)")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path, progress: bool = True, timeout: float = 30) -> Path:
    """Download ``url`` to ``target`` through ``target.part``, resuming what an earlier attempt left there."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part file is already complete
            part.replace(target)
            return target
        raise UserError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(
            f"cannot download {url} ({reason}): this machine seems offline. Download the file elsewhere, put it at "
            f"{target} and run the same command again: it unpacks an archive it finds there"
        ) from None
    with response:
        resumed = response.status == 206
        mode = "ab" if resumed else "wb"
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        if have and resumed:
            print(f"resuming {target.name} at {have / 1e6:.1f} MB")
        with open(part, mode) as handle, tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                                              desc=target.name, disable=not progress, dynamic_ncols=True) as bar:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    bar.update(len(block))
            except (OSError, urllib.error.URLError) as err:
                raise UserError(f"the download of {url} was interrupted ({err}); run the same command again to "
                                f"resume it ({part} keeps what arrived)") from None
    if total is not None and part.stat().st_size != total:
        raise UserError(f"the download of {url} stopped at {part.stat().st_size} of {total} bytes; run the same "
                        f"command again to resume it")
    part.replace(target)
    return target


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts:
            raise UserError(f"{archive} holds {name!r}, which would be written outside the dataset folder; refused")


def unpack(archive: Path, name: str, root: Path) -> Path:
    """Unpack ``archive`` so that ``root/name`` appears complete, or not at all."""
    target = root / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.unpacking-", dir=root))
    try:
        try:
            if archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as bundle:
                    _safe_members(bundle.namelist(), archive)
                    broken = bundle.testzip()
                    if broken is not None:
                        raise zipfile.BadZipFile(f"member {broken} is damaged")
                    bundle.extractall(staging)
            else:
                with tarfile.open(archive) as bundle:
                    members = bundle.getmembers()
                    _safe_members([m.name for m in members], archive)
                    if any(m.issym() or m.islnk() or m.isdev() for m in members):
                        raise UserError(f"{archive} holds links or device files; refused")
                    bundle.extractall(staging)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
            raise UserError(f"{archive} is not a complete archive ({err}); delete it and run the command again to "
                            f"download it anew") from None
        inner = staging / name
        if not inner.is_dir():
            entries = list(staging.iterdir())
            inner = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
        inner.rename(target)  # the archive's dataset folder, or everything it holds
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch_dataset(source: DatasetSource, root: Path, sha256: str | None = None, keep_archive: bool = False,
                  progress: bool = True) -> Path:
    """``root/<name>/``, downloaded and unpacked if it is not there yet (see the module docstring)."""
    root = Path(root)
    target = root / source.name
    if target.is_dir() and any(target.iterdir()):
        print(f"{target} is already there")
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / source.archive_name
    downloaded = False
    if archive.is_file():
        print(f"using {archive} (already there)")
    else:
        print(f"downloading {source.url}")
        download(source.url, archive, progress)
        downloaded = True
    if sha256:
        found = sha256_of(archive)
        if found != sha256.lower():
            if downloaded:
                archive.unlink()
            raise UserError(f"{archive} has SHA-256 {found}, not the expected {sha256}: the file is damaged or not the "
                            f"dataset{'; it was deleted, run the command again' if downloaded else ''}")
    try:
        unpack(archive, source.name, root)
    except UserError:
        if downloaded:
            archive.unlink(missing_ok=True)
        raise
    if downloaded and not keep_archive:
        archive.unlink()
    print(f"{target} is ready ({source.layout} layout)")
    return target
