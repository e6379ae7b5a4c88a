"""A mkdocs hook: the site serves its own copy of mermaid.js, fetched from npm at build time.

mkdocs-material draws the ```` ```mermaid ```` blocks with the global ``mermaid`` when a
script has defined it, and otherwise loads ``https://unpkg.com/mermaid@11`` from the
browser, which fails offline (and in CI). So ``mkdocs.yml`` lists
``assets/javascripts/mermaid.min.js`` in ``extra_javascript``, and this hook puts that
file into the site: ``dist/mermaid.min.js`` of the npm package ``mermaid@VERSION``,
fetched once with ``npm pack``, checked against the pinned integrity, and cached in
``$XDG_CACHE_HOME/traefikservice-asgi/`` (``~/.cache`` by default). Nothing minified is
kept in the repository.

``MERMAID_JS=/path/to/mermaid.min.js`` uses that file instead (no npm needed).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

# Material's bundle asks unpkg for mermaid@11: the same major, pinned. To upgrade, take
# the "integrity" that `npm pack mermaid@NEW --json` prints.
VERSION = "11.17.2"
INTEGRITY = "sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
SITE_PATH = "assets/javascripts/mermaid.min.js"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "traefikservice-asgi"


def _fetch(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise PluginError(
            f"mermaid.js {VERSION} is fetched with npm, which is not installed: install "
            "Node.js (apt-get install nodejs npm), or set MERMAID_JS to a mermaid.min.js"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                [npm, "pack", f"mermaid@{VERSION}", "--pack-destination", tmp, "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", None) or ""
            raise PluginError(f"npm pack mermaid@{VERSION} failed: {exc}\n{output}") from exc
        tarball = Path(tmp) / f"mermaid-{VERSION}.tgz"
        digest = hashlib.sha512(tarball.read_bytes()).digest()
        integrity = "sha512-" + base64.b64encode(digest).decode()
        if integrity != INTEGRITY:
            raise PluginError(
                f"mermaid-{VERSION}.tgz has integrity {integrity}, expected {INTEGRITY}"
            )
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/dist/mermaid.min.js")
            if member is None:
                raise PluginError(f"mermaid-{VERSION}.tgz has no dist/mermaid.min.js")
            content = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    partial.write_bytes(content)
    partial.replace(target)  # atomic: concurrent builds never read half a file


def mermaid_js() -> Path:
    """The local mermaid.min.js, fetched into the cache on first use."""
    override = os.environ.get("MERMAID_JS")
    if override:
        path = Path(override)
        if not path.is_file():
            raise PluginError(f"MERMAID_JS={override}: no such file")
        return path
    cached = _cache_dir() / f"mermaid-{VERSION}.min.js"
    if not cached.is_file():
        _fetch(cached)
    return cached


def on_files(files: Files, config: MkDocsConfig) -> Files:
    if SITE_PATH not in [str(script) for script in config.extra_javascript]:
        raise PluginError(f"mkdocs.yml: extra_javascript must list {SITE_PATH}")
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(mermaid_js())))
    return files
