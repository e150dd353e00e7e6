"""mkdocs hooks for the documentation site (``mkdocs.yml``: ``hooks: [tools/mkdocs_hooks.py]``).

- **Generated pages.** ``reference/recipe-keys.md`` is written at build time from the
  code: the core's recipe sections (``RunConfig``, ``LoaderConfig``, ``ProcessConfig``,
  the top-level keys) and every component the plugins installed in the build environment
  register, with types, defaults, constraints and docs. It cannot drift: there is no
  copy to keep in step.
- **Pages from the repository.** Each bundled plugin's README becomes
  ``bundled/<distribution>.md``; README.md, CHANGELOG.md and CONTRIBUTING.md become
  ``project/*.md``. They are read where they are, not copied.
- **Links.** The markdown files link to each other by their repository paths, so they
  work on a code host too; here links that leave ``docs/`` are rewritten to the page that
  shows the target, or (for source files, which the site does not show) unwrapped to
  their text. A link to a file that does not exist is left alone, so the strict build
  fails on it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

#: Site path → repository file, for the pages read from outside docs/.
PROJECT_PAGES = {
    "project/readme.md": REPO / "README.md",
    "project/changelog.md": REPO / "CHANGELOG.md",
    "project/contributing.md": REPO / "CONTRIBUTING.md",
}
RECIPE_KEYS = "reference/recipe-keys.md"

_FENCE = re.compile(r"^([ ]*)(```|~~~).*?^\1\2[ ]*$", re.M | re.S)
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")


def bundled_plugins() -> list[Path]:
    """The workspace's plugin distributions that have a README."""
    return sorted(p for p in (REPO / "plugins").glob("runner-*") if (p / "README.md").is_file())


def outside_pages() -> dict[str, Path]:
    """Site path → repository file of every page read from outside docs/."""
    pages = {uri: path for uri, path in PROJECT_PAGES.items() if path.is_file()}
    for plugin in bundled_plugins():
        pages[f"bundled/{plugin.name}.md"] = plugin / "README.md"
    return pages


# -- the generated recipe reference -----------------------------------------------------------


def _default(field: Any) -> str:
    from runner._schema.export import json_value

    if field.required:
        return "required"
    if field.default is None:
        return "unset"
    try:
        return f"`{json.dumps(json_value(field.default))}`"
    except TypeError:
        return f"`{field.default!r}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _fields_table(fields: dict[str, Any]) -> list[str]:
    from runner._schema.check import describe
    from runner._schema.export import check_schema

    rows = ["| key | type | default | constraint | meaning |", "|---|---|---|---|---|"]
    for name, field in fields.items():
        constraint = check_schema(field.check)
        shown = ", ".join(f"{k} {v}" for k, v in constraint.items()) if constraint else ""
        rows.append(
            f"| `{name}` | {_cell(describe(field.type))} | {_default(field)} | {_cell(shown)} | {_cell(field.doc)} |"
        )
    return rows


def _section_title(path: tuple[Any, ...]) -> str:
    """``[run]``, ``[data.val.<key>.loader]``, ``[[process]]``: how the table is written."""
    if path and path[-1] == "<n>":
        return f"`[[{'.'.join(str(part) for part in path[:-1])}]]`"
    return f"`[{'.'.join(str(part) for part in path)}]`"


def _slots(grammar: Any) -> list[str]:
    """Where each kind of component goes, from the grammar."""
    rows = ["| table | kind | registered by |", "|---|---|---|"]
    for path, node, _ in grammar.component_slots():
        where = _section_title(path)
        if node.chosen_by is not None:
            where += f" (name: `{'.'.join(map(str, node.chosen_by))}`)"
        rows.append(f"| {where} | {node.kind} | `register_{node.kind}s` |")
    return rows


def _sections(grammar: Any, schema_from_attrs: Any) -> list[str]:
    """A table per class of core keys the grammar holds, under the key paths it sits at."""
    by_class: dict[type, list[tuple[Any, ...]]] = {}
    what: dict[type, str] = {}
    for path, cls, kind in grammar.fields_sections():
        by_class.setdefault(cls, []).append(path)
        what[cls] = kind
    lines: list[str] = []
    for cls, paths in by_class.items():
        lines += [f"## {_section_title(paths[0])}", ""]
        if len(paths) > 1 or what[cls] != "table":
            shown = ", ".join(_section_title(p) for p in paths)
            lines += [f"{shown}: {_cell(what[cls])}. {_cell((cls.__doc__ or '').strip().splitlines()[0])}", ""]
        lines += [*_fields_table(schema_from_attrs(cls).fields), ""]
    return lines


def recipe_keys_markdown(registry: Any = None) -> str:
    """The recipe key reference, from the code and the installed plugins' registrations."""
    from runner._contract import grammar
    from runner._plugins.manager import PluginManager
    from runner._plugins.registry import KINDS
    from runner._schema.fields import schema_from_attrs

    if registry is None:
        manager = PluginManager()
        registry = manager.registry
        plugins = [str(info) for info in manager.plugins()]
    else:
        plugins = sorted({str(c.plugin) for c in registry})
    lines = [
        "# Recipe keys",
        "",
        "<!-- Generated at build time by tools/mkdocs_hooks.py from runner's code: do not edit. -->",
        "",
        "Every key a recipe accepts, generated from the code when this site was built, with the",
        f"plugins installed then: {', '.join(plugins)}. `runner recipe schema` exports the same",
        "as a JSON Schema for editors ([editor support](../tools.md#editor-support)); the",
        "[recipe reference](../recipes.md) explains the structure.",
        "",
        "## Top-level keys",
        "",
        "| key | form | what |",
        "|---|---|---|",
        *[f"| `{key.name}` | {_cell(key.form)} | {_cell(key.doc)} |" for key in grammar.RECIPE.keys],
        "",
        *_sections(grammar, schema_from_attrs),
        "## Components",
        "",
        "A component table holds `name = ...` and the component's parameters. Where each kind goes:",
        "",
        *_slots(grammar),
        "",
    ]
    for kind in KINDS:
        names = registry.names(kind)
        if not names:
            continue
        lines += [f"### {kind.capitalize()}s", ""]
        for name in names:
            component = registry.get(kind, name)
            lines += [f"#### `{name}` ({kind})", "", f"From {component.plugin}. {_cell(component.summary)}", ""]
            try:
                schema = component.schema
            except Exception as exc:
                lines += [f"Its parameters cannot be read: {type(exc).__name__}: {_cell(str(exc))}", ""]
                continue
            if schema.fields:
                lines += _fields_table(schema.fields)
            else:
                lines.append("No parameters.")
            if schema.open:
                lines += ["", "Also accepts any other key (passed through)."]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# -- links ------------------------------------------------------------------------------------


def rewrite_links(markdown: str, real_path: Path, site_path: str, pages: dict[Path, str]) -> str:
    """Point links that leave docs/ at the site page showing their target (see module doc)."""
    site_dir = Path(site_path).parent

    def replace(match: re.Match[str]) -> str:
        text, target = match[1], match[2]
        if _SCHEME.match(target) or target.startswith("#"):
            return match[0]
        file_part, _, anchor = target.partition("#")
        resolved = (real_path.parent / file_part).resolve()
        suffix = f"#{anchor}" if anchor else ""
        if resolved.is_dir() and (resolved / "README.md").resolve() in pages:
            resolved = (resolved / "README.md").resolve()
        if resolved in pages:
            return f"[{text}]({os.path.relpath(pages[resolved], site_dir)}{suffix})"
        if resolved.is_relative_to(DOCS.resolve()) and resolved.suffix == ".md":
            relative = resolved.relative_to(DOCS.resolve()).as_posix()
            return f"[{text}]({os.path.relpath(relative, site_dir)}{suffix})"
        if resolved.exists() and resolved.is_relative_to(REPO):
            return text  # a source file: the site does not show it
        return match[0]  # broken: the strict build reports it

    out = []
    last = 0
    for fence in _FENCE.finditer(markdown):
        out.append(_LINK.sub(replace, markdown[last : fence.start()]))
        out.append(fence[0])
        last = fence.end()
    out.append(_LINK.sub(replace, markdown[last:]))
    return "".join(out)


# -- mkdocs events ----------------------------------------------------------------------------

NAV_PLUGINS_TITLE = "Bundled plugins"


def on_config(config: Any) -> Any:
    """Add a nav entry per bundled plugin (the plugin list is not fixed)."""
    nav = config.get("nav") or []
    for section in nav:
        if isinstance(section, dict) and NAV_PLUGINS_TITLE in section:
            section[NAV_PLUGINS_TITLE] = [{p.name: f"bundled/{p.name}.md"} for p in bundled_plugins()]
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated and the outside pages."""
    from mkdocs.structure.files import File

    for site_path, real in outside_pages().items():
        text = real.read_text(encoding="utf-8")
        if not text.lstrip().startswith("# "):
            title = real.parent.name if real.name == "README.md" else real.stem
            text = f"# {title}\n\n{text or 'No documentation yet.'}\n"
        files.append(File.generated(config, site_path, content=text))
    files.append(File.generated(config, RECIPE_KEYS, content=recipe_keys_markdown()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    outside = outside_pages()
    pages = {real.resolve(): uri for uri, real in outside.items()}
    site_path = page.file.src_uri
    real = outside.get(site_path, DOCS / site_path)
    return rewrite_links(markdown, real.resolve(), site_path, pages)
