"""The book's build settings and its one build step, in one place.

The Makefile calls this module (``python code/bookbuild.py``) and the tests import it;
nothing else holds a build setting. See CONTRIBUTING.md, "How the build is wired".
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def chapter_notebooks(book: Path = ROOT) -> list[Path]:
    """The book's notebooks, in the order of its table of contents (``_toc.yml``)."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    files = [entry["file"] for part in toc.get("parts", [])
             for entry in part.get("chapters", [])]
    return [book / f"{name}.ipynb" for name in files
            if (book / f"{name}.ipynb").exists()]
