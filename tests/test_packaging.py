"""pyproject.toml declares what the package needs: every third-party module that
code/reparam imports, and nothing that it does not use."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

import bookbuild

PACKAGE = bookbuild.ROOT / "code" / "reparam"
# Declared, but used without an import statement.
USED_OTHERWISE = {
    "scikit-learn",  # reparam.data finds its bundled digits with find_spec
    "ipympl",  # the widget backend that every ipywidgets explorer draws on
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # as PEP 503 compares names


def imported_modules() -> set[str]:
    """The top-level third-party modules that the package's files import."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"reparam"}


def test_pyproject_declares_every_import_and_only_what_is_used():
    project = tomllib.loads((bookbuild.ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonical(re.match(r"[\w.-]+", requirement)[0])
                for requirement in project["dependencies"]}
    owner = importlib.metadata.packages_distributions()
    imported = {canonical(owner[module][0]) for module in imported_modules()}
    assert {"torch", "scipy", "myst-nb", "ipython"} <= imported  # the walk sees them
    assert imported - declared == set(), "imported but not declared"
    assert declared - imported == USED_OTHERWISE, "declared but not imported"
