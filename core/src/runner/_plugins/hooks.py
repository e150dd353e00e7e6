"""The engine's typed facade over run hooks (tox 4 style): one method per hook.

The engine never calls hooks by name: a misspelt hook is a mypy error here, not a silent
no-op. Every call names the plugin (or run object) whose implementation raised.
``get_state``/``update_state`` are called implementation by implementation, so each
owner's state is stored under its own name and handed back to it alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from runner._contract.errors import PluginError
from runner._plugins.guards import RESULT_CHECKS, describe

if TYPE_CHECKING:
    from pathlib import Path

    from runner._contract.context import RunContext
    from runner._contract.stage import Stage
    from runner._plugins.manager import PluginManager


class RunHooks:
    """Calls the run hooks of one plugin manager (plugins plus the run's own objects)."""

    def __init__(self, plugins: PluginManager) -> None:
        self.plugins = plugins
        # Hot-loop callers, looked up once.
        self.end_backward = plugins.hook("on_end_backward")
        self.end_train_step = plugins.hook("on_end_train_step")
        self.log = plugins.hook("on_log")

    # -- data lifecycle --------------------------------------------------------------

    def setup(self, run: RunContext, stage: Stage) -> None:
        self.plugins.call("setup", run=run, stage=stage)

    def teardown(self, run: RunContext) -> None:
        self.plugins.call("teardown", run=run)

    # -- training contract ---------------------------------------------------------------

    def get_optimizers_schedulers(
        self, run: RunContext, model: Any, steps_per_epoch: int, epochs: int
    ) -> tuple[list[Any], list[Any]] | None:
        """The first answer (firstresult), checked and attributed to whoever gave it."""
        kwargs = {"run": run, "model": model, "estimated_global_steps_per_epoch": steps_per_epoch, "epochs": epochs}
        for owner, impl, caller in self._impls("get_optimizers_schedulers"):
            result = self._call_one(caller, impl, **kwargs)
            if result is None:
                continue
            problem = RESULT_CHECKS["get_optimizers_schedulers"](result)
            if problem is not None:
                raise PluginError(f"{self._who(owner)}: hook get_optimizers_schedulers returned {problem}")
            optimizers, schedulers = result
            return list(optimizers), list(schedulers)
        return None

    def on_begin_train(self, run: RunContext) -> None:
        self.plugins.call("on_begin_train", run=run)

    def on_begin_train_epoch(self, run: RunContext, epoch: int, global_step: int) -> None:
        self.plugins.call("on_begin_train_epoch", run=run, epoch=epoch, global_step=global_step)

    def on_end_backward(self, run: RunContext, global_step: int, loss: Any) -> None:
        self.plugins.call("on_end_backward", run=run, global_step=global_step, loss=loss)

    def on_end_train_step(self, run: RunContext, global_step: int, outputs: Any) -> None:
        self.plugins.call("on_end_train_step", run=run, global_step=global_step, outputs=outputs)

    def on_end_train_epoch(self, run: RunContext, epoch: int, global_step: int) -> None:
        self.plugins.call("on_end_train_epoch", run=run, epoch=epoch, global_step=global_step)

    def on_begin_val_epoch(self, run: RunContext, global_step: int, key: str) -> None:
        self.plugins.call("on_begin_val_epoch", run=run, global_step=global_step, key=key)

    def on_end_val_epoch(
        self, run: RunContext, global_step: int, key: str, metrics: dict[str, float], outputs: tuple[Any, ...] | None
    ) -> None:
        self.plugins.call(
            "on_end_val_epoch", run=run, global_step=global_step, key=key, metrics=metrics, outputs=outputs
        )

    def on_begin_test_epoch(self, run: RunContext, global_step: int, key: str) -> None:
        self.plugins.call("on_begin_test_epoch", run=run, global_step=global_step, key=key)

    def on_end_test_epoch(
        self, run: RunContext, global_step: int, key: str, metrics: dict[str, float], outputs: tuple[Any, ...] | None
    ) -> None:
        self.plugins.call(
            "on_end_test_epoch", run=run, global_step=global_step, key=key, metrics=metrics, outputs=outputs
        )

    def on_log(self, run: RunContext, record: dict[str, Any]) -> None:
        self.plugins.call("on_log", run=run, record=record)

    def on_interrupt(self, run: RunContext, signal: str) -> None:
        self.plugins.call("on_interrupt", run=run, signal=signal)

    def on_end_train(self, run: RunContext, global_step: int) -> None:
        self.plugins.call("on_end_train", run=run, global_step=global_step)

    # -- state, namespaced by owner --------------------------------------------------

    def get_state(self, run: RunContext) -> dict[str, Any]:
        """``{owner: state}`` for every implementation that returned something."""
        states: dict[str, Any] = {}
        for owner, impl, caller in self._impls("get_state"):
            result = self._call_one(caller, impl, run=run)
            problem = RESULT_CHECKS["get_state"](result)
            if problem is not None:
                raise PluginError(f"{self._who(owner)}: hook get_state returned {problem}")
            if result is not None:
                states[owner] = result
        return states

    def update_state(self, run: RunContext, states: dict[str, Any]) -> None:
        """Hand each owner the state it returned from ``get_state``."""
        for owner, impl, caller in self._impls("update_state"):
            if owner in states:
                self._call_one(caller, impl, run=run, state=states[owner])

    # -- trained models ----------------------------------------------------------------

    def get_model_weights(self, run: RunContext) -> dict[str, tuple[str, Any]]:
        """``{name: (who, state_dict)}`` of the alternative weights plugins and run objects
        offer (``who`` names the owner and its plugin, for messages); a malformed result or
        a name offered twice is a PluginError naming the owners."""
        offered: dict[str, tuple[str, Any]] = {}
        for owner, impl, caller in self._impls("get_model_weights"):
            result = self._call_one(caller, impl, run=run)
            problem = RESULT_CHECKS["get_model_weights"](result)
            if problem is not None:
                raise PluginError(f"{self._who(owner)}: hook get_model_weights returned {problem}")
            for name, weights in (result or {}).items():
                if name in offered:
                    raise PluginError(
                        f"{self._who(owner)} and {offered[name][0]} both offer weights named {name!r} "
                        "(hook get_model_weights); one of them must choose another name"
                    )
                offered[name] = (self._who(owner), weights)
        return offered

    def load_model_weights(self, run_dir: Path, which: str) -> tuple[Any, str] | None:
        """The first plugin's answer for weights ``which`` of ``run_dir``, and who gave it."""
        for owner, impl, caller in self._impls("load_model_weights"):
            result = self._call_one(caller, impl, run_dir=run_dir, which=which)
            if result is None:
                continue
            if not isinstance(result, Mapping) or not all(isinstance(key, str) for key in result):
                raise PluginError(
                    f"{self._who(owner)}: hook load_model_weights returned {describe(result)}; "
                    "it returns a state dict (string keys, tensor values) or None"
                )
            return result, self._who(owner)
        return None

    def owners(self, name: str) -> list[str]:
        """Who implements hook ``name`` (plugin names and run objects' names)."""
        return [owner for owner, _, _ in self._impls(name)]

    def _impls(self, name: str) -> Iterator[tuple[str, pluggy.HookImpl, pluggy.HookCaller]]:
        caller = self.plugins.hook(name)
        for impl in reversed(caller.get_hookimpls()):  # pluggy's call order
            yield impl.plugin_name, impl, caller

    def _call_one(self, caller: pluggy.HookCaller, impl: pluggy.HookImpl, **kwargs: Any) -> Any:
        try:
            return impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
        except Exception as exc:
            raise self.plugins.blame(caller, exc) from exc

    def _who(self, owner: str) -> str:
        info = self.plugins.info(owner)
        return f"{owner} (plugin {info})" if info.name != owner or ":" in owner else f"plugin {info}"
