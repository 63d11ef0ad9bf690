"""Fetch axe-core's ``axe.min.js`` from the npm registry, once, at set-up.

``make`` runs this when it installs the test tools (the rule for
``.venv/.installed-test``); ``site_pages.axe_violations`` injects the fetched
``axe.min.js`` into each page it checks. (The axe-core bundled with Python wrappers
such as axe-playwright-python 0.1.8, 4.12.1, misses violations that 4.14 reports.)
The tarball is checked against the registry's published sha512 before anything is
written.

    python tests/fetch_axe_core.py DESTINATION
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "4.14.1"
URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
INTEGRITY = ("FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFoo"
             "JpZe37OgudVGtQ==")


def fetch(destination: Path) -> None:
    with urllib.request.urlopen(URL, timeout=60) as response:
        tarball = response.read()
    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != INTEGRITY:
        sys.exit(f"axe-core {VERSION}: the tarball's sha512 is not the registry's")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        script = archive.extractfile("package/axe.min.js").read()
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(script)


if __name__ == "__main__":
    fetch(Path(sys.argv[1]))
