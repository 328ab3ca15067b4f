"""The documentation: the site builds without a warning, its API pages cover the package, the
README stays a short front door that names only paths in the repository, and the notebooks the
site renders keep their outputs."""

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import a2c_jax

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_PAGES = sorted((DOCS / "api").glob("*.md"))
README_MAX_LINES = 250


def _api_targets():
    """``(page, dotted name)`` of every ``::: name`` directive on the API pages."""
    return [(page, m.group(1)) for page in API_PAGES
            for m in re.finditer(r"^:::\s+(\S+)", page.read_text(), re.M)]


def test_mkdocs_build_strict(tmp_path):
    """``mkdocs build --strict`` succeeds: no warning (broken link, missing page, docstring the
    API reference cannot parse, notebook that does not convert)."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it comes with the dev extra)")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    site = tmp_path / "site"
    for page in API_PAGES:
        assert (site / "api" / page.stem / "index.html").is_file(), page.name
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert (site / "notebooks" / nb.stem / "index.html").is_file(), nb.name


def test_api_pages_import():
    """Every module an API page documents imports, and every name it lists exists."""
    targets = _api_targets()
    assert len(targets) >= 12
    for page, name in targets:
        module = importlib.import_module(name)
        members = re.search(r"members:\s*\[([^\]]*)\]", page.read_text())
        for member in (members.group(1).split(",") if members else []):
            assert hasattr(module, member.strip()), f"{page.name}: {name}.{member.strip()}"


def test_every_public_subpackage_has_an_api_page():
    """A new public subpackage of a2c_jax gets a page under docs/api/ (and in mkdocs.yml's nav,
    which the strict build checks)."""
    documented = {name for _, name in _api_targets()}
    for info in pkgutil.iter_modules(a2c_jax.__path__):
        if info.ispkg and not info.name.startswith("_"):
            assert f"a2c_jax.{info.name}" in documented, f"no page in docs/api/ for {info.name}"


def _inline_paths(text):
    """Inline-code spans of ``text`` that look like repository paths (with a slash, or a file
    name with a known extension); fenced code blocks are skipped."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    exts = ("py", "md", "yml", "yaml", "toml", "txt", "json", "png", "ipynb", "cfg", "sh")
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.fullmatch(r"[\w.\-/]+", span) and not span.startswith("-") and (
                "/" in span or span.rsplit(".", 1)[-1] in exts and "." in span):
            yield span


def test_readme_is_a_short_front_door():
    """README.md stays under the line budget, and every relative link and every path it names in
    inline code exists in the repository (nothing outside it, such as ../shared/)."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    relative = [link.split("#")[0] for link in links
                if not re.match(r"[a-z]+:", link) and not link.startswith("#")]
    named = relative + list(_inline_paths(readme))
    assert relative, "the README links no docs page"
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"README.md names paths that are not in the repository: {missing}"
    assert not [p for p in named if ".." in Path(p).parts], "README.md points outside the repository"


def test_notebooks_are_stored_with_outputs():
    """The docs render the notebooks' stored outputs (mkdocs-jupyter does not execute them), so
    every code cell has been run. After changing a notebook, store it again with
    ``JAX_PLATFORMS=cpu .venv/bin/python docs/_tools/execute_notebooks.py NAME.ipynb``."""
    nbformat = pytest.importorskip("nbformat")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        unrun = [i for i, c in enumerate(book.cells) if c.cell_type == "code" and c.source.strip()
                 and not c.get("execution_count")]
        assert not unrun, f"{path.name}: code cells {unrun} are stored without outputs"
