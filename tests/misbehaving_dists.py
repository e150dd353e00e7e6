"""Small misbehaving plugin distributions for the end-to-end tests, written as files by
``runner.testing.make_plugin_dist`` (milliseconds, no build). The tutorial and the legacy
plugin, real projects under ``fixtures/``, are built with pip."""

from __future__ import annotations

from typing import Any

#: distribution name -> make_plugin_dist keyword arguments
MISBEHAVING: dict[str, dict[str, Any]] = {
    "runner-broken-hook": {
        "entry_points": {"broken_hook": "runner_broken_hook.plugin"},
        "files": {
            "runner_broken_hook/__init__.py": "",
            "runner_broken_hook/plugin.py": '''
                """A plugin that imports fine but whose registration hook raises."""

                from runner import RegisterComponent, hookimpl


                @hookimpl
                def register_datasets(register: RegisterComponent) -> None:
                    raise RuntimeError("dataset index unreachable")
            ''',
        },
    },
    "runner-broken-import": {
        "entry_points": {"broken_import": "runner_broken_import.plugin"},
        "files": {
            "runner_broken_import/__init__.py": "",
            "runner_broken_import/plugin.py": '''
                """A plugin whose entry module cannot be imported (as when a dependency is missing)."""

                raise ImportError("runner-broken-import needs the missing package 'not_installed_anywhere'")
            ''',
        },
    },
    "runner-duplicate": {
        "entry_points": {"duplicate": "runner_duplicate.plugin"},
        "files": {
            "runner_duplicate/__init__.py": "",
            "runner_duplicate/plugin.py": '''
                """A plugin that registers a dataset under a name runner-tutorial already uses."""

                from runner import RegisterComponent, hookimpl


                @hookimpl
                def register_datasets(register: RegisterComponent) -> None:
                    register("spirals", "runner_duplicate.plugin:spirals", doc="Another dataset called spirals.")


                def spirals(split: str) -> list[tuple[float, int]]:
                    """Never built: a recipe naming 'spirals' is refused while both plugins are installed."""
                    return [(0.0, 0)]
            ''',
        },
    },
    "runner-future-core": {
        "entry_points": {"future_core": "runner_future_core.plugin"},
        "version": "2.0.0",
        "requires": ["runner-core<10,>=9.0"],
        "files": {
            "runner_future_core/__init__.py": "",
            "runner_future_core/plugin.py": '''
                """A healthy plugin in every way but its declared core version range."""

                from runner import RegisterComponent, hookimpl


                @hookimpl
                def register_datasets(register: RegisterComponent) -> None:
                    register("from_the_future", "runner_future_core.plugin:build", doc="Three numbers.")


                def build(split: str = "train") -> list[int]:
                    return [1, 2, 3]
            ''',
        },
    },
    "runner-misspelt-hook": {
        "entry_points": {"misspelt_hook": "runner_misspelt_hook.plugin"},
        "requires": ["runner-core>=0.1"],
        "files": {
            "runner_misspelt_hook/__init__.py": "",
            "runner_misspelt_hook/plugin.py": '''
                """``register_dataset`` (no s) is no runner hook: pluggy accepts it and never calls it."""

                from runner import RegisterComponent, hookimpl


                @hookimpl
                def register_dataset(register: RegisterComponent) -> None:
                    register("misspelt", "runner_misspelt_hook.plugin:build")


                def build() -> list[int]:
                    return [1, 2, 3]
            ''',
        },
    },
}
