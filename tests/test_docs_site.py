"""The documentation site (mkdocs.yml, built by ``make docs`` in strict mode) is complete.

- the generated recipe key reference covers every core key with its default and every
  registered component of the installed plugins;
- links between the repository's markdown files are rewritten to site pages;
- every page of the nav exists, with the how-to pages and one page per bundled plugin;
- the troubleshooting page lists every error message the core raises.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from runner._contract.grammar import RECIPE
from runner._contract.recipe import LoaderConfig, ProcessConfig, RunConfig
from runner._plugins.manager import PluginManager
from runner._schema.fields import schema_from_attrs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("runner_mkdocs_hooks", REPO / "tools" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hooks = load_hooks()


# -- generated recipe keys ------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe_keys() -> str:
    text: str = hooks.recipe_keys_markdown()
    return text


def section_rows(text: str, heading: str) -> dict[str, str]:
    """``{key: default cell}`` of the table under ``heading``."""
    body = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[3].strip() for m in re.finditer(r"^\| `([^`]+)` \| ([^|]*) \| ([^|]*) \|", body, re.M)}


@pytest.mark.parametrize(
    ("heading", "cls"),
    [("## `[run]`", RunConfig), ("## `[data.train.loader]`", LoaderConfig), ("## `[[process]]`", ProcessConfig)],
)
def test_recipe_keys_lists_every_core_key_with_its_default(recipe_keys: str, heading: str, cls: type) -> None:
    rows = section_rows(recipe_keys, heading)
    assert list(rows) == [f.name for f in attrs.fields(cls)]
    for name, field in schema_from_attrs(cls).fields.items():
        expected = "unset" if field.default is None else f"`{json.dumps(field.default)}`"
        assert rows[name] == expected, (heading, name)


def test_recipe_keys_lists_top_level_keys_and_every_component(recipe_keys: str) -> None:
    top = re.findall(r"^\| `([^`]+)` \| [^|]* \| [^|]* \|$", recipe_keys.split("## Top-level keys", 1)[1], re.M)
    assert top[: len(RECIPE.keys)] == [key.name for key in RECIPE.keys]
    for component in PluginManager().registry:
        assert f"#### `{component.name}` ({component.kind})" in recipe_keys, component
        for name in component.schema.fields:
            assert f"| `{name}` |" in recipe_keys


# -- links ----------------------------------------------------------------------------------


def test_links_leaving_docs_are_rewritten() -> None:
    pages = {(REPO / "README.md").resolve(): "project/readme.md"}
    pages[(REPO / "plugins" / "runner-models" / "README.md").resolve()] = "bundled/runner-models.md"
    text = (
        "[guide](index.md#x) [models](../plugins/runner-models/README.md#tasks) [readme](../README.md) "
        "[spec](../core/src/runner/hookspecs.py) [gone](../no/such/file.md) [web](https://example.org)\n"
        "```\n[in code](../README.md)\n```\n"
    )
    out = hooks.rewrite_links(text, (DOCS / "recipes.md").resolve(), "recipes.md", pages)
    assert out == (
        "[guide](index.md#x) [models](bundled/runner-models.md#tasks) [readme](project/readme.md) "
        "spec [gone](../no/such/file.md) [web](https://example.org)\n"
        "```\n[in code](../README.md)\n```\n"
    )
    readme = (REPO / "plugins" / "runner-datasets" / "README.md").resolve()
    out = hooks.rewrite_links("[top](../../README.md) [data](../../docs/data.md#a)", readme, "bundled/x.md", pages)
    assert out == "[top](../project/readme.md) [data](../data.md#a)"


# -- pages ----------------------------------------------------------------------------------


def nav_pages() -> list[str]:
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    return re.findall(r":\s+([\w/.-]+\.md)\s*$", text, re.M)


def test_every_nav_page_exists() -> None:
    generated = {hooks.RECIPE_KEYS, *hooks.outside_pages()}
    pages = nav_pages()
    assert {"getting-started.md", "recipes.md", "hooks.md", "plugins.md", "troubleshooting.md", "api.md"} <= set(pages)
    for page in pages:
        assert page in generated or (DOCS / page).is_file(), page
    howtos = {p for p in pages if p.startswith("howto/")}
    assert howtos == {
        f"howto/{n}.md"
        for n in (
            "resume",
            "ddp",
            "fsdp",
            "async-checkpoints",
            "multi-node",
            "async-loaders",
            "preprocessing-cache",
            "ray",
        )
    }


def test_every_bundled_plugin_gets_a_page() -> None:
    bundled = sorted(p.name for p in (REPO / "plugins").glob("runner-*") if (p / "pyproject.toml").is_file())
    pages = hooks.outside_pages()
    assert [p for p in bundled if f"bundled/{p}.md" not in pages] == []


# -- troubleshooting ------------------------------------------------------------------------

#: Modules whose messages are documented with their commands elsewhere.
NOT_LISTED: set[str] = set()
RAISED = re.compile(r'(?:RunnerError|PluginError|DataError|Problem)\(\s*f?"((?:[^"\\]|\\.)*)"', re.S)


def core_messages() -> list[tuple[str, str]]:
    root = REPO / "core" / "src" / "runner"
    found = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root).as_posix()
        if where in NOT_LISTED:
            continue
        for match in RAISED.finditer(path.read_text(encoding="utf-8")):
            if len(match[1]) >= 12:
                found.append((where, match[1]))
    return found


def test_core_messages_are_found() -> None:
    assert len(core_messages()) >= 30


@pytest.mark.parametrize(("where", "message"), core_messages(), ids=lambda x: x[:60])
def test_troubleshooting_lists_every_core_error(where: str, message: str) -> None:
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    # The constant parts of the message (between {placeholders}) must all appear.
    pieces = [p.strip(" :;,.()'") for p in re.split(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", message)]
    missing = [p for p in pieces if len(p) >= 6 and p not in page]
    assert not missing, f"docs/troubleshooting.md lacks {missing} of the error {message!r} raised in {where}"
