"""The house rules of the code layout, checked on the source (no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "evaluation", "models", "options", "util", "scripts", "tests")
# What each package may import from the project: models/ builds on data/ and util/ only,
# util/ and data/ on nothing above them, evaluation/ may use models/.
ALLOWED = {
    "util": {"util"},
    "data": {"data", "util"},
    "models": {"models", "data", "util"},
    "evaluation": {"evaluation", "models", "data", "util"},
}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_lies_below_them(package):
    offending = {str(path.relative_to(ROOT)): sorted(project_imports(path) - ALLOWED[package])
                 for path in sorted((ROOT / package).glob("*.py"))}
    assert not {k: v for k, v in offending.items() if v}
