"""The package layout draws the pipeline, and stays that way.

One folder per stage (file → tailer → parser → aggregation → exposition, with history and the writer
beside it), every module named in the README's layout section, imports that only run from a stage to
the ones before it, no module longer than the reader can hold, and the writer free of package imports
(``install-hook`` copies it where this package is not installed).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import llm_log_exporter
from llm_log_exporter.writer.install import COPIED
from tests.helpers import ROOT

PACKAGE = Path(llm_log_exporter.__file__).resolve().parent  # the checkout's, or the installed wheel's
STAGES = ("writer", "schema", "tailing", "parsers", "aggregate", "exposition", "history")
MAX_LINES = 700

# What each part may import from the package (by first name under llm_log_exporter). Stages import the
# stages before them; history and the wiring compose them; nothing imports the wiring or the writer.
ALLOWED: dict[str, set[str]] = {
    "schema": {"schema"},
    "writer": {"writer", "schema"},
    "files": set(),
    "events": {"schema"},
    "tailing": {"tailing"},
    "tailer": {"tailing"},
    "parsers": {"parsers", "events", "schema"},
    "aggregate": {"aggregate", "parsers", "events", "schema", "tailing", "files"},
    "exposition": {"exposition", "aggregate", "tailer", "tailing", "parsers", "events", "schema", "files"},
    "history": {"history", "exposition", "aggregate", "tailing", "parsers", "events", "schema", "files"},
    "config_file": {"aggregate"},
    "daemon": {"aggregate", "exposition", "history", "parsers", "tailer", "tailing", "events", "files"},
    "cli": {"aggregate", "exposition", "history", "parsers", "daemon", "config_file", "writer"},
    "callback": {"writer"},
}
ALLOWED["writer.install"] = {"writer", "schema", "files"}  # runs in the exporter's environment, not the target's


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _only_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return len(body) <= 1 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _layout_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Layout")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _named_in_layout() -> set[str]:
    """Module paths the README's layout table names; a bare file name belongs to its row's folder."""
    named: set[str] = set()
    for row in _layout_section().splitlines():
        if not row.startswith("|"):
            continue
        tokens = re.findall(r"`([^`]+)`", row.split("|")[1])
        folder = next((t.split("/")[0] for t in tokens if "/" in t and t.endswith(".py")), "")
        for token in tokens:
            named.add(token if "/" in token or not folder else f"{folder}/{token}")
    return named


def test_every_module_is_named_in_the_readme_layout() -> None:
    named = _named_in_layout()
    missing = []
    for path in _modules():
        relative = str(path.relative_to(PACKAGE))
        if path.name in ("__init__.py", "__main__.py") and (path.parent == PACKAGE or _only_docstring(path)):
            continue
        if relative not in named:
            missing.append(relative)
    assert not missing, f"add these modules to the README's layout section: {missing}"


def test_the_top_level_shows_the_stages() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= 8, top
    assert "tailer.py" in top
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert set(STAGES) <= set(packages), packages
    assert len(set(packages) - {"parsers", "schema"}) >= 4
    layout = _layout_section()
    for stage in STAGES:
        assert f"`{stage}/`" in layout, f"the README's layout section does not name {stage}/"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    if relative.parts[0] == "writer" and relative.name == "install.py":
        return "writer.install"
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path, absolute_only: bool = False) -> set[str]:
    """First names under ``llm_log_exporter`` this module imports (relative imports resolved), anywhere in it."""
    relative = path.relative_to(PACKAGE)
    package = list(relative.parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and absolute_only:
                continue
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join(["llm_log_exporter", *base, *([node.module] if node.module else [])])]
                if not node.module:
                    names = [f"{names[0]}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "llm_log_exporter" and len(parts) > 1:
                out.add(parts[1])
    return out


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_only_from_a_stage_to_the_ones_before_it(path: Path) -> None:
    part = _part(path)
    if part in ("__init__", "__main__"):
        return
    wrong = _imports(path) - ALLOWED[part]
    assert not wrong, f"{path.relative_to(PACKAGE)} ({part}) imports {sorted(wrong)}"


def test_what_install_hook_copies_imports_nothing_by_the_package_name() -> None:
    for package, names in COPIED.items():
        for name in names:
            assert not _imports(PACKAGE / package / name, absolute_only=True), f"{package}/{name}"
