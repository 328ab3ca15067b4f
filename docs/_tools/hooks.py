"""mkdocs hook: serve files that live outside docs/ without copying them into the repository.

- ``notebooks/*.ipynb`` become pages ``notebooks/<name>/`` (rendered with their stored outputs by
  mkdocs-jupyter; this hook runs before it, so it sees them);
- ``benchmarks/results/**/*.png`` and ``*.txt`` are served under ``benchmarks/results/`` so the
  benchmark pages can show the figures and link the raw outputs.

Text that pages quote from outside docs/ (benchmarks/README.md, the result tables) is included with
pymdownx.snippets instead.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
SERVED = [
    ("notebooks", ["*.ipynb"]),
    ("benchmarks/results", ["*.png", "*.txt", "curves/*.png"]),
]


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files: Files, config) -> Files:
    for folder, patterns in SERVED:
        for pattern in patterns:
            for path in sorted((ROOT / folder).glob(pattern)):
                uri = path.relative_to(ROOT).as_posix()
                if files.get_file_from_path(uri) is None:
                    # a plain File rooted at the repository (not File.generated: mkdocs-jupyter's
                    # wrapper reads the source path from src_dir, which a generated file lacks)
                    files.append(File(uri, src_dir=str(ROOT), dest_dir=config["site_dir"],
                                      use_directory_urls=config["use_directory_urls"]))
    return files
