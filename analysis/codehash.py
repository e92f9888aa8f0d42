"""Fingerprint of the package code a study depends on.

Quarto's freeze does not notice changes to imported packages, so the result
cache keys each study on the source of exactly the modules it imports from
:mod:`analysis`, found by walking ``import`` statements with :mod:`ast`.
Changing an estimator reruns the studies that use it and no others.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "analysis"
PACKAGE_DIR = Path(__file__).resolve().parent
REGISTRY = "analysis.studies"
"""The list of studies: every study reaches it (through the config loader), but
adding a study to it changes no result, so it is not part of any fingerprint."""


def module_path(module: str) -> Path | None:
    """The source file of an ``analysis.*`` module, or None if it is not one."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Modules of the package that ``path`` imports (absolute and relative)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if module_path(m) is not None}


def dependencies(module: str) -> list[str]:
    """All ``analysis`` modules ``module`` imports, transitively, itself included.

    Imports inside functions count (a study may import an estimator lazily).
    A package's ``__init__`` counts when it is imported by name, not merely
    because a submodule was; the study registry (:data:`REGISTRY`) never counts.
    """
    seen: set[str] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        if mod in seen or mod == REGISTRY or module_path(mod) is None:
            continue
        seen.add(mod)
        todo.extend(_imports(module_path(mod), mod))  # type: ignore[arg-type]
    return sorted(seen)


@cache
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_fingerprint(module: str) -> str:
    """SHA-256 over the source of ``module`` and every package module it imports."""
    h = hashlib.sha256()
    for mod in dependencies(module):
        path = module_path(mod)
        assert path is not None
        st = path.stat()
        h.update(mod.encode())
        h.update(_file_digest(path, st.st_mtime_ns, st.st_size).encode())
    return h.hexdigest()
