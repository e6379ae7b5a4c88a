"""The documentation's snippets run, and the site builds with ``mkdocs build --strict``.

Every fenced block of ``docs/**/*.md`` is checked by its language:

* ``yaml``: a manifest (every document has ``apiVersion`` and ``kind``) must load with
  :func:`traefikservice_asgi.load_config_text`. An HTML comment right before the block,
  ``<!-- docs-test: error: TEXT -->``, makes it an intentional error example: loading
  must raise ``ConfigError`` whose message contains TEXT. ``<!-- docs-test: fragment -->``
  marks a partial document, which is only parsed. An unmarked block that is not a
  manifest fails, so nothing is skipped in silence.
* ``python``: compiled, then run from the repository root unless marked
  ``<!-- docs-test: no-run (reason) -->``; an ``app`` it defines that has a middleware
  stack gets it built, which loads the configuration the snippet names.
* ``sh``: each ``traefikservice-asgi check ...`` command runs (unless the block is marked
  ``no-run``) against the page's ``yaml title="NAME"`` blocks, written to a folder as
  NAME, and must exit 0; when a ``text`` block follows, it is the command's exact output.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import traefikservice_asgi
from traefikservice_asgi import ConfigError, load_config_text
from traefikservice_asgi.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```(\w+)?(?:\s+(.*))?$")
_TITLE = re.compile(r'title="([^"]+)"')
_MARKER = re.compile(r"^<!-- docs-test: (.*?) -->$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to docs/
    line: int  # 1-based line of the opening fence
    lang: str
    title: str | None
    marker: str | None  # the docs-test marker right before the block, if any
    text: str
    next_text: str | None  # a ``text`` block that directly follows, if any

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    raw: list[tuple[int, str, str | None, str | None, str, int]] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        start = i
        lang = fence.group(1) or ""
        title_match = _TITLE.search(fence.group(2) or "")
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker_match = _MARKER.match(previous.strip())
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path}:{start + 1}: unclosed code fence")
        raw.append(
            (
                start + 1,
                lang,
                title_match.group(1) if title_match else None,
                marker_match.group(1) if marker_match else None,
                "\n".join(body) + "\n",
                i,  # line index of the closing fence
            )
        )
        i += 1
    page = path.relative_to(DOCS).as_posix()
    blocks = []
    for k, (line, lang, title, marker, text, end) in enumerate(raw):
        following = raw[k + 1] if k + 1 < len(raw) else None
        adjacent = following is not None and all(
            not s.strip() for s in lines[end + 1 : following[0] - 1]
        )
        next_text = following[4] if following and adjacent and following[1] == "text" else None
        blocks.append(Block(page, line, lang, title, marker, text, next_text))
    return blocks


PAGES = sorted(DOCS.rglob("*.md"))
BLOCKS = [block for page in PAGES for block in _blocks(page)]


def _of(lang: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == lang]


def _is_manifest(text: str) -> bool:
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    return bool(documents) and all(
        isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in documents
    )


def test_the_docs_have_snippets_of_every_kind_checked_here() -> None:
    # Guards the extraction itself: a change of fence style must not make this file
    # check nothing.
    assert len(PAGES) >= 15
    assert len(_of("yaml")) >= 20
    assert len(_of("python")) >= 5
    assert sum("traefikservice-asgi check" in b.text for b in _of("sh")) >= 4


@pytest.mark.parametrize("block", _of("yaml"), ids=lambda b: b.id)
def test_yaml_block_loads_or_fails_as_the_page_says(block: Block) -> None:
    marker = block.marker or ""
    if marker == "fragment":
        yaml.safe_load_all(block.text)
        return
    assert _is_manifest(block.text), (
        f"{block.id}: not a complete manifest; mark it <!-- docs-test: fragment --> "
        "if it is meant to be partial"
    )
    filename = block.title or block.id
    # A page showing ExternalName Services tells its reader to allow them, as Traefik's
    # allowExternalNameServices must be.
    options = {"allow_external_name_services": "type: ExternalName" in block.text}
    if marker.startswith("error: "):
        expected = marker.removeprefix("error: ")
        with pytest.raises(ConfigError) as info:
            load_config_text(block.text, filename=filename, **options)
        assert expected in str(info.value)
    else:
        assert marker == "", f"{block.id}: unknown docs-test marker {marker!r}"
        load_config_text(block.text, filename=filename, **options)


@pytest.mark.parametrize("block", _of("python"), ids=lambda b: b.id)
def test_python_block_runs(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    code = compile(block.text, block.id, "exec")
    if (block.marker or "").startswith("no-run"):
        return
    assert block.marker is None, f"{block.id}: unknown docs-test marker {block.marker!r}"
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "docs_snippet"}
    exec(code, namespace)
    app = namespace.get("app")
    build = getattr(app, "build_middleware_stack", None)
    if build is not None:  # Starlette/FastAPI build middleware lazily: build it now
        build()


def _check_commands(block: Block) -> list[list[str]]:
    joined = block.text.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.strip().removesuffix("&").strip()
        if line.startswith("traefikservice-asgi check "):
            commands.append(shlex.split(line)[2:])  # the arguments of `check`
    return commands


_CHECKS = [b for b in _of("sh") if _check_commands(b)]


@pytest.mark.parametrize("block", _CHECKS, ids=lambda b: b.id)
def test_check_commands_pass_and_print_what_the_page_shows(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if (block.marker or "").startswith("no-run"):
        return
    assert block.marker is None, f"{block.id}: unknown docs-test marker {block.marker!r}"
    page_files = {b.title: b.text for b in BLOCKS if b.page == block.page and b.title}
    for name, text in page_files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    commands = _check_commands(block)
    for args in commands:
        resolved: list[str] = []
        value_next = False
        for arg in args:
            if value_next or arg.startswith("-"):
                value_next = arg in ("--backend",)
                resolved.append(arg)
            elif arg in page_files:
                resolved.append(arg)  # relative, so the output names it as the page does
            else:
                assert (ROOT / arg).exists(), (
                    f"{block.id}: {arg} is neither on the page nor in the repository"
                )
                resolved.append(str(ROOT / arg))
        result = CliRunner().invoke(cli, ["check", *resolved])
        assert result.exit_code == 0, f"{block.id}: check {' '.join(args)}\n{result.output}"
        if block.next_text is not None and len(commands) == 1:
            assert result.stdout == block.next_text


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: traefikservice_asgi\.(\w+)$", api, re.MULTILINE))
    public = set(traefikservice_asgi.__all__) - {"__version__"}
    assert documented == public


def _missing_docs_tools() -> list[str]:
    modules = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_click")
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(module)
    # docs/_mermaid.py fetches mermaid.js with npm, unless MERMAID_JS names a copy.
    if shutil.which("npm") is None and not os.environ.get("MERMAID_JS"):
        missing.append("npm")
    return missing


def test_site_builds_with_mkdocs_strict(tmp_path: Path) -> None:
    missing = _missing_docs_tools()
    if missing:
        pytest.skip(
            f"the docs tools are not installed ({', '.join(missing)}): "
            "pip install -e '.[docs]' (and Node.js's npm, for mermaid.js) to build the site"
        )
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()


def test_the_readme_layout_names_every_module() -> None:
    """The README's layout section is the map of the package: a module missing from it
    is a module a newcomer cannot place."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout\n", 1)[1].split("```\n", 2)[1]
    package = ROOT / "traefikservice_asgi"
    missing = []
    for module in sorted(package.rglob("*.py")):
        relative = module.relative_to(package)
        named = module.name != "__init__.py" or relative.parent == Path(".")
        if named and module.name not in section:
            missing.append(str(relative))
        for folder in relative.parents[:-1]:
            if f"{folder.name}/" not in section:
                missing.append(f"{folder}/")
    assert sorted(set(missing)) == []


def test_the_streaming_rss_figure_is_the_same_measured_number_everywhere() -> None:
    figure = "by 2.0 MiB (`python bench/stream_rss.py --gib 1`)"
    for page in (ROOT / "README.md", DOCS / "guides" / "production.md"):
        text = " ".join(page.read_text().split())
        assert figure in text, page


def test_the_fastapi_sections_say_what_a_newcomer_trips_over() -> None:
    for page in (ROOT / "README.md", DOCS / "guides" / "getting-started.md"):
        text = " ".join(page.read_text().split())
        assert "FastAPI is not a dependency" in text and "pip install fastapi" in text, page
        assert "relative to the working directory" in text, page
        assert "--lifespan on" in text, page


def test_shell_completion_and_the_examples_spelling_are_documented() -> None:
    assert (
        "_TRAEFIKSERVICE_ASGI_COMPLETE=bash_source" in (DOCS / "reference" / "cli.md").read_text()
    )
    assert "`cokie`" in (ROOT / "examples" / "blog" / "README.md").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "failover, highest random weight" in pyproject
    assert "pip install uvloop httptools" not in (ROOT / "bench" / "README.md").read_text()
