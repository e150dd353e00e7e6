"""The plugin's registrations: torch-free, checked against their interface, schemas with docs."""

from __future__ import annotations

from typing import Any

import pytest

from runner.testing import assert_entry_module_torch_free
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


@pytest.mark.slow  # starts processes
def test_entry_module_imports_without_torch() -> None:
    assert_entry_module_torch_free("runner_callbacks.plugin")


def test_each_callback_builds_with_its_defaults(runner_tester: Any) -> None:
    manager = runner_tester.plugin_manager(callbacks_plugin)
    for name in CALLBACKS:
        component = manager.registry.get("callback", name)
        params = {"minutes": 1.0} if name == "time_limit" else {}
        assert component.build(params) is not None
