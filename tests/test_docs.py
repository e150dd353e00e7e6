"""The documentation cannot drift from the code.

- every hookspec has a section in docs/hooks.md, and every section there is a hookspec;
- every ``[run]`` key, loader key and top-level recipe key is documented in docs/recipes.md;
- every tutorial code block in docs/plugins.md marked ``# file: X`` (or preceded by
  ``<!-- file: X -->``) is exactly ``tests/fixtures/runner-tutorial/X``, and the plugin's
  files are all shown; the test module shown as ``# example: X`` passes against the fixture;
- every relative link in README.md and docs/*.md points to an existing file (and heading).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from runner import hookspecs
from runner._contract.grammar import RECIPE
from runner._contract.recipe import LoaderConfig, ProcessConfig, RunConfig
from runner._schema.fields import schema_from_attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TUTORIAL = REPO / "tests" / "fixtures" / "runner-tutorial"
MARKDOWN = sorted(
    p for p in [REPO / "README.md", REPO / "CHANGELOG.md", REPO / "CONTRIBUTING.md", *DOCS.glob("*.md")] if p.is_file()
)

FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S)
HTML_MARKER = re.compile(r"<!--\s*(file|example):\s*(\S+)\s*-->\s*$")
CODE_MARKER = re.compile(r"#\s*(file|example):\s*(\S+)\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


@attrs.frozen
class Block:
    """A fenced code block of a markdown file, with its tutorial marker if any."""

    lang: str
    body: str
    marker: str | None
    path: str | None
    line: int


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def code_blocks(text: str) -> list[Block]:
    """Fenced blocks; a ``# file: X`` first line is taken out of the body."""
    blocks = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = path = None
        html = HTML_MARKER.search(before)
        first, _, rest = body.partition("\n")
        code = CODE_MARKER.fullmatch(first.strip())
        if html:
            marker, path = html[1], html[2]
        elif code:
            marker, path, body = code[1], code[2], rest
        blocks.append(Block(match["lang"], body, marker, path, text.count("\n", 0, match.start()) + 1))
    return blocks


def normalised(text: str) -> str:
    """Trailing whitespace and leading/trailing blank lines removed; tabs expanded."""
    return "\n".join(line.rstrip() for line in text.expandtabs().strip("\n").splitlines())


def without_code(text: str) -> str:
    """The markdown with fenced blocks and inline code removed (links there are not links)."""
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", read(path))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a full heading line) up to the next heading of the same or higher level."""
    lines = text.splitlines()
    start = lines.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    body = []
    for line in lines[start + 1 :]:
        marks = len(line) - len(line.lstrip("#"))
        if line.startswith("#") and marks <= level and line[marks : marks + 1] == " ":
            break
        body.append(line)
    return "\n".join(body)


def table_keys(text: str) -> list[str]:
    """Keys documented as table rows: ``| `key` | ...``."""
    return re.findall(r"^\|\s*`([^`]+)`\s*\|", text, re.M)


# -- (a) hooks -----------------------------------------------------------------------------


def hookspec_names() -> list[str]:
    return [
        name
        for name, obj in vars(hookspecs).items()
        if inspect.isfunction(obj) and getattr(obj, f"{hookspecs.PROJECT}_spec", None) is not None
    ]


def documented_hooks() -> list[str]:
    return re.findall(r"^### `([a-z_]+)`\s*$", read(DOCS / "hooks.md"), re.M)


def test_hookspecs_are_found() -> None:
    names = hookspec_names()
    assert len(names) >= 25 and "register_datasets" in names and "on_end_train" in names, names


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hook_has_a_section_in_hooks_md(hook: str) -> None:
    assert hook in documented_hooks(), f'docs/hooks.md has no "### `{hook}`" section for runner.hookspecs.{hook}'


def test_every_hook_section_is_a_hookspec() -> None:
    stale = sorted(set(documented_hooks()) - set(hookspec_names()))
    assert not stale, f"docs/hooks.md documents hooks that runner.hookspecs does not declare: {stale}"


def test_every_hook_section_is_documented_once() -> None:
    documented = documented_hooks()
    assert len(documented) == len(set(documented)), sorted(h for h in documented if documented.count(h) > 1)


@pytest.mark.parametrize("hook", hookspec_names())
def test_hook_sections_show_the_signature_and_firstresult(hook: str) -> None:
    """Each section shows ``def hook(<every argument>)`` and says firstresult exactly when it is."""
    text = section(read(DOCS / "hooks.md"), f"### `{hook}`")
    spec = getattr(hookspecs, hook)
    signature = re.search(rf"def {hook}\((.*?)\)", text, re.S)
    assert signature, f"docs/hooks.md: section `{hook}` shows no `def {hook}(...)` signature"
    shown = re.findall(r"(\w+)\s*:", signature[1])
    assert shown == list(inspect.signature(spec).parameters), f"docs/hooks.md: `{hook}` arguments are {shown}"
    firstresult = getattr(spec, f"{hookspecs.PROJECT}_spec")["firstresult"]
    says_firstresult = "**firstresult**" in text
    assert says_firstresult == firstresult, f"docs/hooks.md: `{hook}` firstresult={firstresult}"


# -- (b) recipe keys -----------------------------------------------------------------------


def recipes_md() -> str:
    return read(DOCS / "recipes.md")


@pytest.mark.parametrize(
    ("heading", "keys"),
    [
        ("## Top-level keys", [key.name for key in RECIPE.keys]),
        ("## `[run]`", [f.name for f in attrs.fields(RunConfig)]),
        ("### Loader tables", [f.name for f in attrs.fields(LoaderConfig)]),
        ("## `[[process]]` steps", [f.name for f in attrs.fields(ProcessConfig)]),
    ],
    ids=["top-level", "run", "loader", "process"],
)
def test_recipe_keys_are_documented(heading: str, keys: list[str]) -> None:
    documented = table_keys(section(recipes_md(), heading))
    missing = [key for key in keys if key not in documented]
    stale = [key for key in documented if key not in keys]
    assert not missing, f"docs/recipes.md, {heading}: no table row for {missing}"
    assert not stale, f"docs/recipes.md, {heading}: rows for keys the code does not accept: {stale}"


SECTIONS = {RunConfig: "## `[run]`", LoaderConfig: "### Loader tables", ProcessConfig: "## `[[process]]` steps"}


@pytest.mark.parametrize("cls", list(SECTIONS), ids=["run", "loader", "process"])
def test_recipe_key_defaults_are_documented(cls: type) -> None:
    """Each row's default column matches the field's default (``unset`` for None)."""
    heading = SECTIONS[cls]
    rows = {
        m[1]: m[2].strip()
        for m in re.finditer(r"^\|\s*`([^`]+)`\s*\|[^|]*\|([^|]*)\|", section(recipes_md(), heading), re.M)
    }
    for name, field in schema_from_attrs(cls).fields.items():
        default = field.default
        expected = "unset" if default is None else f"`{json.dumps(default)}`"
        assert rows[name] == expected, f"docs/recipes.md: {name} default is {default!r}"


# -- (c) the tutorial is the fixture -------------------------------------------------------


def tutorial_blocks(marker: str) -> list[Block]:
    return [b for b in code_blocks(read(DOCS / "plugins.md")) if b.marker == marker]


def fixture_files() -> list[str]:
    """The plugin itself: what a reader must see whole to rebuild it."""
    files = [TUTORIAL / "pyproject.toml", *TUTORIAL.glob("src/**/*.py"), *TUTORIAL.glob("examples/*")]
    return sorted(str(p.relative_to(TUTORIAL)) for p in files if p.is_file())


def test_tutorial_marks_whole_files() -> None:
    assert len(tutorial_blocks("file")) >= 5, "docs/plugins.md: no `# file:` blocks found"


@pytest.mark.parametrize("block", tutorial_blocks("file"), ids=lambda b: b.path)
def test_tutorial_file_blocks_equal_the_fixture(block: Block) -> None:
    assert block.path is not None
    target = TUTORIAL / block.path
    assert target.is_file(), f"docs/plugins.md:{block.line}: {block.path} is not in tests/fixtures/runner-tutorial"
    assert normalised(block.body) == normalised(read(target)), (
        f"docs/plugins.md:{block.line}: the block for {block.path} differs from tests/fixtures/runner-tutorial/"
        f"{block.path}; copy the file into the tutorial again"
    )


def test_tutorial_shows_every_file_of_the_plugin() -> None:
    shown = {b.path for b in tutorial_blocks("file")}
    missing = [path for path in fixture_files() if path not in shown]
    assert not missing, f"docs/plugins.md does not show these files of tests/fixtures/runner-tutorial: {missing}"


def test_tutorial_shows_each_file_once() -> None:
    paths = [b.path for b in tutorial_blocks("file")]
    assert len(paths) == len(set(paths)), paths


@pytest.mark.slow
@pytest.mark.parametrize("block", tutorial_blocks("example"), ids=lambda b: b.path)
def test_tutorial_example_tests_pass_against_the_fixture(block: Block, tmp_path: Path) -> None:
    """Test modules the tutorial shows but the fixture lacks must still pass, in a copy of the fixture."""
    assert block.path is not None and block.path.startswith("tests/"), block
    plugin = shutil.copytree(TUTORIAL, tmp_path / "runner-tutorial")
    (plugin / block.path).write_text(block.body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("RUNNER_PLUGINS", "RUNNER_DISABLE_PLUGINS")}
    env["PYTHONPATH"] = str(plugin / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", block.path],
        cwd=plugin,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"docs/plugins.md:{block.line}: {block.path} fails:\n{done.stdout}\n{done.stderr}"


# -- code blocks parse ----------------------------------------------------------------------


def all_blocks() -> list[tuple[Path, Block]]:
    return [(path, block) for path in MARKDOWN for block in code_blocks(read(path))]


@pytest.mark.parametrize(
    ("source", "block"),
    [(s, b) for s, b in all_blocks() if b.lang in ("python", "toml", "json", "jsonl")],
    ids=lambda x: x.name if isinstance(x, Path) else f"line{x.line}",
)
def test_code_blocks_parse(source: Path, block: Block) -> None:
    """Python, TOML and JSON examples are valid (``...`` stands for elided code only in python)."""
    where = f"{source.relative_to(REPO)}:{block.line}"
    if block.lang == "python":
        compile(block.body, where, "exec")
    elif block.lang == "toml":
        tomllib.loads(block.body)
    elif block.lang == "json":
        json.loads(block.body)
    else:
        for line in block.body.splitlines():
            json.loads(line)


# -- (d) links -----------------------------------------------------------------------------


#: Pages the documentation site generates at build time (tools/mkdocs_hooks.py); tests/test_docs_site.py checks them.
GENERATED_PAGES = {DOCS / "reference" / "recipe-keys.md"}


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for path in MARKDOWN:
        for target in LINK.findall(without_code(read(path))):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                if (path.parent / target.partition("#")[0]).resolve() in GENERATED_PAGES:
                    continue
                links.append((path, target))
    return links


def test_markdown_files_exist() -> None:
    for name in ("README.md", "CHANGELOG.md", "CONTRIBUTING.md"):
        assert (REPO / name).is_file(), name
    for name in ("index.md", "recipes.md", "hooks.md", "plugins.md"):
        assert (DOCS / name).is_file(), name


@pytest.mark.parametrize(
    ("source", "target"), relative_links(), ids=lambda x: x.name if isinstance(x, Path) else str(x)
)
def test_relative_links_resolve(source: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    resolved = (source.parent / file_part).resolve() if file_part else source
    where = source.relative_to(REPO)
    assert resolved.exists(), f"{where}: link to {target}: {resolved} does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{where}: link to {target}: no heading with anchor #{anchor}"
