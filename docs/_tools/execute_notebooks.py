"""Execute the tutorials in notebooks/ once and store them with their outputs.

The docs site renders the stored outputs (mkdocs-jupyter with ``execute: false``), so rerun this
after changing a notebook's code:

    JAX_PLATFORMS=cpu .venv/bin/python docs/_tools/execute_notebooks.py [--tidy-only] [NAME.ipynb ...]

Notebooks run one at a time, each in a fresh kernel started in notebooks/. Only outputs and
execution counts change: code and markdown cells are written back as they were. Per-cell timing
metadata is dropped, long text streams are shortened and a large GIF is scaled down, so the
stored files stay small and diffs stay readable.
"""

import base64
import io
import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
MAX_STREAM_LINES = 40  # per output: the head and tail are kept, the middle is elided
MAX_GIF_BYTES = 150_000  # a larger animated GIF is stored smaller (see _smaller_gif)
GIF_WIDTH, GIF_FRAMES = 200, 50


def _shorten(text: str) -> str:
    lines = text.splitlines(keepends=True)
    if len(lines) <= MAX_STREAM_LINES:
        return text
    half = MAX_STREAM_LINES // 2
    skipped = len(lines) - 2 * half
    return "".join(lines[:half]) + f"... ({skipped} lines left out) ...\n" + "".join(lines[-half:])


def _smaller_gif(b64: str) -> str:
    """The base64 GIF ``b64``, if it is over MAX_GIF_BYTES, at most GIF_WIDTH pixels wide and with
    at most GIF_FRAMES evenly spaced frames, each shown correspondingly longer: the same
    animation, the same total duration, a fraction of the bytes."""
    data = base64.b64decode(b64)
    if len(data) <= MAX_GIF_BYTES:
        return b64
    from PIL import Image, ImageSequence

    gif = Image.open(io.BytesIO(data))
    duration = gif.info.get("duration", 50)
    scale = min(1.0, GIF_WIDTH / gif.width)
    size = (round(gif.width * scale), round(gif.height * scale))
    frames = [f.convert("RGB").resize(size) for f in ImageSequence.Iterator(gif)]
    step = -(-len(frames) // GIF_FRAMES)  # ceil
    frames = frames[::step]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:],
                   duration=step * duration, loop=0)
    return base64.b64encode(out.getvalue()).decode("ascii")


def tidy(book) -> None:
    """Drops timing metadata; merges consecutive text streams (a logger writes one message per
    line) and shortens each merged stream to its head and tail."""
    for cell in book.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                out.text = _shorten(out.text)
            elif "image/gif" in out.get("data", {}):
                out.data["image/gif"] = _smaller_gif(out.data["image/gif"])
        cell.outputs = merged


def execute(path: Path, run: bool = True) -> None:
    book = nbformat.read(path, as_version=4)
    sources = [(c.cell_type, c.source) for c in book.cells]
    t0 = time.perf_counter()
    if run:
        client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                        resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    tidy(book)
    assert [(c.cell_type, c.source) for c in book.cells] == sources, "a cell's source changed"
    nbformat.validate(book)
    nbformat.write(book, path)
    print(f"{path.name}: {time.perf_counter() - t0:.0f} s, {path.stat().st_size // 1024} KiB", flush=True)


def main(argv: list[str]) -> None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    run = "--tidy-only" not in argv  # --tidy-only: tidy the stored outputs, execute nothing
    names = [a for a in argv if not a.startswith("--")]
    for name in names or sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")):
        execute(NOTEBOOKS / name, run)


if __name__ == "__main__":
    main(sys.argv[1:])
