"""Every third-party Python module the project imports is one that scripts/setup.sh installs.

A fresh machine once failed the README's test command because `PIL` was imported by the encoder evaluation
and nothing installed python3-pil: the developer's machine had it by hand. The Python modules the project
needs are the `python` rows of scripts/deps.tsv (module -> Debian package), which setup.sh reads; this test
walks every import in the project's Python files with `ast` (function-level imports too) and fails when a
module is neither the standard library, nor the project's own, nor a row of that table.
"""
from __future__ import annotations

import ast
import os
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPS = os.path.join(REPO, "scripts", "deps.tsv")
SKIP_DIRS = {"node_modules", ".git", "var", ".cache", "runs", "__pycache__", "generations"}


def read_deps(path: str = DEPS) -> dict[str, dict[str, str]]:
    """kind -> {check: debian package} from the table setup.sh reads."""
    out: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            assert len(parts) >= 3, f"deps.tsv row needs kind, check and package: {line!r}"
            out.setdefault(parts[0], {})[parts[1]] = parts[2]
    return out


def python_files(root: str = REPO) -> list[str]:
    files = []
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.startswith("."))
        files += [os.path.join(d, n) for n in sorted(names) if n.endswith(".py")]
    return files


def imported_modules(path: str) -> set[str]:
    """Top-level names of every absolute import in a file, wherever it sits (module, function, try block)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def local_modules(files: list[str]) -> set[str]:
    """The project's own importable names: every .py file's stem and every package folder holding Python."""
    names = {os.path.splitext(os.path.basename(f))[0] for f in files}
    names |= {os.path.basename(os.path.dirname(f)) for f in files if f.endswith("__init__.py")}
    return names


def unlisted_imports(files: list[str], listed: set[str]) -> dict[str, list[str]]:
    """module -> files importing it, for third-party modules with no `python` row."""
    own = local_modules(files)
    missing: dict[str, list[str]] = {}
    for f in files:
        for m in imported_modules(f):
            if m in sys.stdlib_module_names or m in own or m in listed:
                continue
            missing.setdefault(m, []).append(os.path.relpath(f, REPO))
    return missing


def test_every_third_party_import_is_installed_by_setup():
    listed = set(read_deps().get("python", {}))
    missing = unlisted_imports(python_files(), listed)
    assert not missing, (
        "Python modules imported but not installed by scripts/setup.sh; add a `python <module> <debian package>` "
        f"row to scripts/deps.tsv: {missing}")


def test_the_walker_sees_function_level_imports(tmp_path):
    # The original miss was `from PIL import Image` inside a function: it must count.
    src = tmp_path / "probe_mod.py"
    src.write_text("import os\n\ndef f():\n    from PIL import Image\n    import numpy.linalg as la\n    return Image, la\n")
    found = unlisted_imports([str(src)], listed={"numpy"})
    assert found == {"PIL": [os.path.relpath(str(src), REPO)]}


def test_setup_reads_the_table_and_repeats_none_of_it():
    with open(os.path.join(REPO, "scripts", "setup.sh"), encoding="utf-8") as f:
        setup = f.read()
    assert "scripts/deps.tsv" in setup
    # A Python module checked in setup.sh itself would be a second list that drifts from the table.
    assert "python3 -c 'import" not in setup and 'python3 -c "import numpy' not in setup


@pytest.mark.parametrize("kind", ["python", "command", "file", "dpkg"])
def test_table_rows_are_well_formed(kind):
    rows = read_deps().get(kind, {})
    assert rows, f"deps.tsv has no {kind} rows"
    for check, pkg in rows.items():
        assert pkg.replace("-", "").replace(".", "").replace("+", "").isalnum() and pkg == pkg.lower(), pkg
        if kind == "file":
            assert check.startswith("/"), check
