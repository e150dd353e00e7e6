"""Every bundled plugin (a distribution under plugins/) is listed wherever users look for
one: README.md, the user guide (docs/index.md), the root changelog's list of plugin
changelogs, and the core's install hints, which name the distribution for each of its
components (the docs site's page per plugin is tests/test_docs_site.py's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner._plugins.catalog import KNOWN

REPO = Path(__file__).resolve().parents[1]
BUNDLED = sorted(p.name for p in (REPO / "plugins").glob("runner-*") if (p / "pyproject.toml").is_file())


def test_the_bundled_plugins_were_found() -> None:
    assert {"runner-models", "runner-optuna", "runner-wandb"} <= set(BUNDLED)


@pytest.mark.parametrize(
    ("document", "link"),
    [
        ("README.md", "(plugins/{}/README.md)"),
        ("docs/index.md", "(../plugins/{}/README.md)"),
        ("CHANGELOG.md", "(plugins/{}/CHANGELOG.md)"),
    ],
)
def test_each_bundled_plugin_is_linked(document: str, link: str) -> None:
    text = (REPO / document).read_text(encoding="utf-8")
    assert [dist for dist in BUNDLED if f"[{dist}]{link.format(dist)}" not in text] == []


def test_install_hints_name_every_bundled_component_and_nothing_else(run_cli: Any) -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, str(result)
    registered = {
        (kind, name): row["distribution"]
        for row in json.loads(result.stdout)["plugins"]
        if row["distribution"] in BUNDLED
        for kind, names in row["components"].items()
        for name in names
    }
    assert sorted(set(registered.values())) == BUNDLED  # each is installed and registers components
    assert registered == KNOWN
