"""The plugin's registrations: torch-free, checked against their interface, schemas with docs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from runner_callbacks import plugin as callbacks_plugin
from runner_callbacks.plugin import CALLBACKS


def test_registers_every_callback_with_documented_parameters(runner_tester: Any) -> None:
    manager = runner_tester.plugin_manager(callbacks_plugin)
    names = manager.registry.names("callback")
    assert set(CALLBACKS) <= set(names)
    for name in CALLBACKS:
        component = manager.registry.get("callback", name)
        assert component.summary
        for field_name, field in component.schema.fields.items():
            assert field.doc, f"{name}.{field_name} has no doc"


def test_entry_module_imports_without_torch() -> None:
    code = "import runner_callbacks.plugin, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_callback_builds_with_its_defaults(runner_tester: Any) -> None:
    manager = runner_tester.plugin_manager(callbacks_plugin)
    for name in CALLBACKS:
        component = manager.registry.get("callback", name)
        params = {"minutes": 1.0} if name == "time_limit" else {}
        assert component.build(params) is not None
