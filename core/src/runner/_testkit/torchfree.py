"""Check, in a fresh interpreter, that importing a plugin's entry module imports no torch.

``runner --help``, ``runner plugins`` and ``runner recipe check`` import every installed
plugin's entry module; one that imports torch (or another heavy library) at module level
slows every command of every user. The check runs in a subprocess because the test
process has long imported torch; when it fails, it names the import chain that pulled
each forbidden module in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable

#: The probe run in the fresh interpreter: argv[1] is a JSON object with the modules to
#: import and the names to forbid; it prints, as JSON, each forbidden module loaded with
#: the module-level frames (the import chain) that were running when it was first found.
_PROBE = r"""
import json, sys, traceback

spec = json.loads(sys.argv[1])
forbidden = spec["forbidden"]
chains = {}


def forbidden_name(name):
    return next((f for f in forbidden if name == f or name.startswith(f + ".")), None)


class Watch:
    def find_spec(self, name, path=None, target=None):
        top = forbidden_name(name)
        if top is not None and top not in chains:
            chains[top] = [
                f"{frame.filename}:{frame.lineno}"
                for frame in traceback.extract_stack()[:-1]
                if frame.name == "<module>" and "importlib" not in frame.filename and frame.filename != "<string>"
            ]
        return None


sys.meta_path.insert(0, Watch())
for module in spec["imports"]:
    __import__(module)
loaded = sorted({forbidden_name(name) for name in list(sys.modules)} - {None})
print(json.dumps({name: chains.get(name, []) for name in loaded}))
"""


def assert_entry_module_torch_free(
    module: str, also: Iterable[str] = (), *, imports: Iterable[str] = (), timeout: float = 120
) -> None:
    """Fail unless importing ``module`` (then ``imports``, e.g. the components module) in a
    fresh interpreter leaves ``torch`` and every name in ``also`` out of ``sys.modules``.

    ``also`` names other modules that must stay unimported: heavy libraries (``"numpy"``,
    ``"mlflow"``; their submodules count) or the plugin's own modules that should load
    lazily (``"my_plugin.params"``). The failure message shows the import chain that
    pulled each one in::

        def test_entry_module_is_torch_free() -> None:
            assert_entry_module_torch_free("runner_mine.plugin", also=("numpy",))
    """
    forbidden = ["torch", *(name for name in also if name != "torch")]
    spec = json.dumps({"imports": [module, *imports], "forbidden": forbidden})
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, spec], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"importing {module} failed in a fresh interpreter:\n{done.stderr.strip()}")
    loaded: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    if loaded:
        lines = [f"importing {module} imported {', '.join(sorted(loaded))}:"]
        for name, chain in sorted(loaded.items()):
            via = " -> ".join(chain) if chain else "(already loaded before the first import)"
            lines.append(f"  {name} via {via}")
        lines.append("import it inside the function that needs it (a component's build(), a callback's hook)")
        raise AssertionError("\n".join(lines))
