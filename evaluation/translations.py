"""Which translations a test run produced, grouped by direction, read from test.py's manifest.

``test.py`` writes ``results.json`` (see :mod:`util.results`): per row the source files and,
per saved picture, its file, its source side and its kind. Here every ``fake`` picture
becomes one :class:`Translation` of its direction, named in the *dataroot's* domain letters
(``AtoB``: an image of ``<phase>A`` translated towards ``<phase>B``), whatever
``--direction`` test.py ran with: the domain is read from the folder the input file lives
in, not from the side it was fed to the model on.

Unaligned test sets have ``max(|A|, |B|)`` rows and the smaller side repeats; a repeated
input is counted once (the first row that translated it), so each input image weighs the
same in every measure.

Also found here: the ground-truth mask of each input (``<folder>_mask/<same stem>``, as the
datasets find them), the attention map the model saved for it, the paired ground truth of
aligned data, and the real image sets FID/KID compare with.

Multi-domain runs (``dataset_mode`` ``multidomain``) translate every input to every domain: each
row names its input's domain (``source_domain``) and each ``fake``/``attention`` picture its
``target``. They are grouped per target domain (``to_<domain>``: every input of another domain
translated to it); the target set is ``<phase>/<domain>/`` and there is no single source set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from data.datasets import mask_folder
from data.image_folder import find_mask, list_images
from util.errors import UserError
from util.results import MANIFEST, read_manifest

DOMAINS = ("A", "B")


def other_domain(domain: str) -> str:
    return "B" if domain == "A" else "A"


@dataclass(frozen=True)
class MaskRef:
    """A ground-truth mask file; ``half`` picks the left/right half of a side-by-side (A|B) mask."""

    path: Path
    half: str | None = None
    pair_width: int | None = None


@dataclass(frozen=True)
class Translation:
    """One translated input: the saved input and output pictures and what to compare them with."""

    row_id: str
    source_path: Path
    input_file: Path
    output_file: Path
    attention_file: Path | None = None
    mask: MaskRef | None = None
    paired_file: Path | None = None


@dataclass(frozen=True)
class RealSet:
    """Real images of one domain, the reference of FID/KID (``description`` says which)."""

    description: str
    paths: tuple[Path, ...]


@dataclass
class DirectionGroup:
    """All translations of one direction of a run, deduplicated by input file."""

    name: str
    source_domain: str
    target_domain: str
    translations: list[Translation] = field(default_factory=list)
    source_set: RealSet | None = None
    target_set: RealSet | None = None
    repeated_inputs_skipped: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class RunTranslations:
    """A test run's manifest, resolved: metadata, dataroot and the direction groups."""

    results_dir: Path
    meta: dict[str, Any]
    dataroot: Path
    groups: dict[str, DirectionGroup]


def load_manifest(results_dir: Path) -> dict[str, Any]:
    """``results.json`` of a test run, with a user-facing error when it is missing or unreadable."""
    results_dir = Path(results_dir)
    if not (results_dir / MANIFEST).is_file():
        raise UserError(f"{results_dir / MANIFEST} not found: --results must be a folder test.py wrote, "
                        f"e.g. results/<name>/test_latest (run test.py first)")
    try:
        manifest = read_manifest(results_dir)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {results_dir / MANIFEST}: {err}") from None
    if not isinstance(manifest, dict) or "rows" not in manifest or "meta" not in manifest:
        raise UserError(f"{results_dir / MANIFEST} is not a test.py manifest (no 'meta'/'rows')")
    root = results_dir.resolve()
    for row in manifest["rows"]:
        for name, visual in row.get("visuals", {}).items():
            file = str(visual.get("file", ""))
            target = (results_dir / file).resolve()
            if Path(file).is_absolute() or ".." in Path(file).parts or not target.is_relative_to(root):
                raise UserError(f"{results_dir / MANIFEST}: row {row.get('id')!r}, picture {name!r} points outside the "
                                f"results folder ({file}); test.py writes only paths inside it, so the file was "
                                f"edited. Run test.py again")
    return manifest


def relocate(path: str | Path, old_root: Path, new_root: Path) -> Path:
    """Where a manifest path lies under ``new_root`` (the dataset may have moved since test.py ran).

    Relative manifest paths were relative to test.py's working directory, which is unknown:
    the longest tail of the path that exists under ``new_root`` is taken.
    """
    path = Path(path)
    if path.is_absolute():
        try:
            return new_root / path.relative_to(old_root)
        except ValueError:
            return path
    for start in range(len(path.parts)):
        candidate = new_root.joinpath(*path.parts[start:])
        if candidate.exists():
            return candidate
    return path


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _domain_letter(folder: Path) -> str | None:
    """``A``/``B`` from a folder named like ``testA``/``trainB``; None for other names."""
    return folder.name[-1] if folder.name[-1:] in DOMAINS else None


class _DomainFolders:
    """Finds the domain folder (``<phase>A``/``<phase>B``, or a single folder) an input lives in."""

    def __init__(self, dataroot: Path, phase: str, dataset_mode: str) -> None:
        self.dataroot, self.phase, self.dataset_mode = dataroot, phase, dataset_mode
        if dataset_mode == "single":
            self.candidates = [dataroot]
        elif dataset_mode == "aligned":
            self.candidates = [dataroot / phase]
        else:
            self.candidates = [dataroot / f"{phase}{d}" for d in DOMAINS]

    def folder_of(self, path: Path) -> Path:
        for folder in self.candidates:
            if _is_under(path, folder):
                return folder
        return path.parent

    def sibling(self, folder: Path, domain: str) -> Path | None:
        """The folder of ``domain`` next to ``folder`` (``testA`` -> ``testB``), if it exists."""
        if self.dataset_mode != "single":
            candidate = self.dataroot / f"{self.phase}{domain}"
        elif _domain_letter(folder) is not None:
            candidate = folder.with_name(folder.name[:-1] + domain)
        else:
            return None
        return candidate if candidate.is_dir() else None


def _visual_of(row: dict[str, Any], kind: str, source: str) -> tuple[str, dict[str, Any]] | None:
    """The first visual of a row with this kind and source side."""
    for name, visual in row["visuals"].items():
        if visual.get("kind") == kind and visual.get("source") == source:
            return name, visual
    return None


def _folder_set(folder: Path) -> RealSet | None:
    """All images of a domain folder; None for a folder without images (the measures needing it are skipped)."""
    try:
        paths = tuple(list_images(folder))
    except UserError:
        return None
    return RealSet(f"{folder} ({len(paths)} images)", paths)


def group_translations(results_dir: Path, dataroot: str | Path | None = None) -> RunTranslations:
    """Read a run's manifest and group its translations by direction (see the module docstring).

    ``dataroot`` overrides the manifest's ``meta.dataroot`` (for data that moved); input paths
    recorded under the old root are looked up under the new one.
    """
    results_dir = Path(results_dir)
    manifest = load_manifest(results_dir)
    meta = manifest["meta"]
    old_root = Path(meta.get("dataroot", ""))
    root = Path(dataroot).expanduser().resolve() if dataroot else old_root
    if not root.is_dir():
        raise UserError(f"dataroot {root} does not exist; pass --dataroot with the dataset test.py translated")
    mode = meta.get("dataset_mode", "unaligned")
    if mode == "multidomain":
        return _group_by_target_domain(results_dir, manifest, root, old_root)
    aligned = mode == "aligned"
    run_direction = meta.get("direction", "AtoB")
    folders = _DomainFolders(root, meta.get("phase", "test"), mode)
    groups: dict[str, DirectionGroup] = {}
    seen: set[tuple[str, Path]] = set()

    for row in manifest["rows"]:
        paths = {side: relocate(p, old_root, root) for side, p in row.get("paths", {}).items()}
        for _name, visual in row["visuals"].items():
            if visual.get("kind") != "fake":
                continue
            side = visual["source"]
            source_path = paths.get(side)
            if source_path is None:
                continue
            real = _visual_of(row, "real", side)
            if real is None:
                continue
            folder = folders.folder_of(source_path)
            side_domain = side if run_direction == "AtoB" else other_domain(side)
            # Aligned pairs hold both domains in one file, so only --direction tells them apart;
            # otherwise the folder name decides (under --direction BtoA the model's "A" reads <phase>B).
            source_domain = side_domain if aligned else (_domain_letter(folder) or side_domain)
            target_domain = other_domain(source_domain)
            name = f"{source_domain}to{target_domain}"
            group = groups.setdefault(name, DirectionGroup(name, source_domain, target_domain))
            if (name, source_path) in seen:
                group.repeated_inputs_skipped += 1
                continue
            seen.add((name, source_path))
            attention = _visual_of(row, "attention", side)
            paired = _visual_of(row, "real", other_domain(side)) if aligned else None
            group.translations.append(Translation(
                row_id=row["id"],
                source_path=source_path,
                input_file=results_dir / real[1]["file"],
                output_file=results_dir / visual["file"],
                attention_file=results_dir / attention[1]["file"] if attention else None,
                mask=_mask_of(source_path, folder, aligned, source_domain),
                paired_file=results_dir / paired[1]["file"] if paired else None,
            ))

    for group in groups.values():
        _attach_real_sets(group, folders, aligned, manifest["rows"], results_dir, root, old_root, run_direction)
    return RunTranslations(results_dir, meta, root, dict(sorted(groups.items())))


def _group_by_target_domain(results_dir: Path, manifest: dict[str, Any], root: Path, old_root: Path) -> RunTranslations:
    """Multi-domain runs: one group per target domain (see the module docstring)."""
    meta = manifest["meta"]
    phase_folder = root / meta.get("phase", "test")
    groups: dict[str, DirectionGroup] = {}
    for row in manifest["rows"]:
        source_domain = row.get("source_domain")
        if source_domain is None or "A" not in row.get("paths", {}):
            continue
        source_path = relocate(row["paths"]["A"], old_root, root)
        real = _visual_of(row, "real", "A")
        folder = phase_folder / source_domain
        for visual in row["visuals"].values():
            target = visual.get("target")
            if visual.get("kind") != "fake" or target is None or target == source_domain or real is None:
                continue
            name = f"to_{target}"
            group = groups.setdefault(name, DirectionGroup(name, "others", target))
            attention = next((v for v in row["visuals"].values() if v.get("kind") == "attention" and v.get("target") == target),
                             None)
            group.translations.append(Translation(
                row_id=row["id"],
                source_path=source_path,
                input_file=results_dir / real[1]["file"],
                output_file=results_dir / visual["file"],
                attention_file=results_dir / attention["file"] if attention else None,
                mask=_mask_of(source_path, folder, False, source_domain),
            ))
    for group in groups.values():
        group.target_set = _folder_set(phase_folder / group.target_domain)
        group.notes.append(f"inputs of every other domain translated to {group.target_domain}; mean KID not computed "
                           f"(no single source domain)")
    return RunTranslations(results_dir, meta, root, dict(sorted(groups.items())))


def _mask_of(source_path: Path, folder: Path, aligned: bool, source_domain: str) -> MaskRef | None:
    """The ground-truth mask of an input image, found as the datasets find it."""
    try:
        path = find_mask(mask_folder(folder), source_path, folder)
    except ValueError:  # the input is not under its folder (moved data): no mask to match
        return None
    if path is None:
        return None
    if not aligned:
        return MaskRef(path)
    # A mask as wide as the A|B pair holds one mask per half; a narrower one serves both halves.
    with Image.open(source_path) as pair:
        pair_width = pair.size[0]
    return MaskRef(path, "left" if source_domain == "A" else "right", pair_width)


def _attach_real_sets(group: DirectionGroup, folders: _DomainFolders, aligned: bool, rows: list[dict[str, Any]],
                      results_dir: Path, root: Path, old_root: Path, run_direction: str) -> None:
    """Find the real source- and target-domain images of a direction (FID/KID references)."""
    if aligned:
        # Aligned test sets: the domains' real images are the saved halves of the pairs.
        for domain, attribute in ((group.source_domain, "source_set"), (group.target_domain, "target_set")):
            side = domain if run_direction == "AtoB" else other_domain(domain)
            files: dict[Path, Path] = {}
            for row in rows:
                real = _visual_of(row, "real", side)
                if real is not None and side in row.get("paths", {}):
                    files.setdefault(relocate(row["paths"][side], old_root, root), results_dir / real[1]["file"])
            if files:
                setattr(group, attribute, RealSet(f"the {domain} halves of the {len(files)} test pairs", tuple(files.values())))
        return
    source_folder = folders.folder_of(group.translations[0].source_path) if group.translations else None
    if source_folder is not None and source_folder.is_dir():
        group.source_set = _folder_set(source_folder)
        target_folder = folders.sibling(source_folder, group.target_domain)
        if target_folder is not None:
            group.target_set = _folder_set(target_folder)
    if group.target_set is None:
        group.notes.append(f"no real {group.target_domain}-domain folder found beside {source_folder}: "
                           f"FID/KID against the target domain not computed")
