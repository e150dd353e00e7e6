"""The ``wandb`` logger: one Weights & Biases run per runner run.

- **config**: the resolved recipe, as nested tables (``optimizer.lr`` in the W&B UI);
- **metrics**: each record at its optimizer step, named like TensorBoard scalars
  (``train/loss``, ``val/main/accuracy``, ``test/main/loss``);
- **summary**: W&B keeps each metric's last value; the logger adds ``runner/global_step``,
  ``runner/epochs``, ``runner/stop_reason`` and ``runner/status`` when the run ends;
- **model** (``log_model = true``): when the run finishes, ``model.safetensors`` of the run
  directory, or else the last checkpoint (runner-checkpoint's ``checkpoints/latest``), as
  an artifact of type ``model``.

W&B writes its files under ``<run dir>/wandb``; ``wandb.json`` in the run directory says
which W&B run and which files belong to the runner run. Offline (the default) nothing
leaves the machine: ``wandb sync <run dir>/wandb/offline-run-*`` uploads the run later. A
run continued in its run directory (``runner resume``) continues the same W&B run (same
id); steps an online W&B run already holds are not logged again.

Records are queued by :class:`runner.BufferedLogger` and handed to ``wandb.log`` by a
background thread (a ``wandb.log`` call serialises the values and sends them to W&B's
service process: about a millisecond, kept off the training step). A W&B run that cannot
start (online without a login, a bad entity) is a one-line :class:`runner.RunnerError`
before training.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from runner import BufferedLogger, RunnerError, metric_items

#: Written to the run directory: which W&B run the runner run logs to, and where its files are.
LINK_FILE = "wandb.json"
MODEL_FILE = "model.safetensors"
MODES = ("online", "offline", "disabled")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def read_link(run_dir: Path) -> dict[str, Any]:
    """``{"id", "project", "entity", "mode", "dir", "url"}`` of the W&B run a runner run logged
    to; ``dir`` (its files) is relative to the run directory."""
    link: dict[str, Any] = json.loads((Path(run_dir) / LINK_FILE).read_text(encoding="utf-8"))
    return link


def final_model(run_dir: Path) -> Path | None:
    """``model.safetensors`` of the run directory, else the checkpoint ``checkpoints/latest`` names."""
    model = Path(run_dir) / MODEL_FILE
    if model.is_file():
        return model
    pointer = Path(run_dir) / "checkpoints" / "latest"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = pointer.parent / name
    return path if name and path.is_dir() else None


class WandbLogger(BufferedLogger):
    """Logs a runner run to one W&B run (config, metrics by step, summary, model artifact)."""

    def __init__(
        self,
        run_dir: Path,
        ctx: Any = None,
        mode: str = "",
        project: str = "",
        entity: str = "",
        run_name: str = "",
        group: str = "",
        tags: list[str] | None = None,
        notes: str = "",
        log_config: bool = True,
        log_model: bool = False,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.mode = mode or os.environ.get("WANDB_MODE", "") or "offline"
        if self.mode not in MODES:
            raise RunnerError(f"wandb: WANDB_MODE={self.mode!r} is not one of {', '.join(MODES)}")
        self.log_model = log_model
        self._interrupted = ""
        self._end: dict[str, Any] = {}
        recipe = getattr(ctx, "recipe", None)
        resolved = getattr(recipe, "resolved", None)
        resolved = resolved if isinstance(resolved, dict) else {}
        project = project or str(resolved.get("run", {}).get("name") or "runner")
        previous = self._previous_run(project, entity)
        try:
            self.run = self._init(project, entity, run_name, group, tags or [], notes, previous)
            if log_config and resolved:
                self.run.config.update(resolved, allow_val_change=True)
        except Exception as exc:
            if getattr(self, "run", None) is not None:  # started, then failed: do not leave it running
                with contextlib.suppress(Exception):
                    self.run.finish(exit_code=1)
            hint = "; log in with 'wandb login' or set mode = 'offline'" if self.mode == "online" else ""
            raise RunnerError(f"wandb: cannot start a W&B run ({self.mode}): {_one_line(exc)}{hint}") from exc
        # Steps an online run continued from W&B already holds (a resume logs them again).
        self._floor = int(getattr(self.run, "step", 0) or 0) if previous and self.mode == "online" else 0
        self._write_link()

    def _previous_run(self, project: str, entity: str) -> str | None:
        """The id of the W&B run an earlier start in this run directory logged to (a resume)."""
        try:
            link = read_link(self.run_dir)
        except (OSError, ValueError):
            return None
        same = link.get("project") == project and (not entity or link.get("entity") == entity)
        return str(link["id"]) if same and link.get("id") else None

    def _init(
        self, project: str, entity: str, run_name: str, group: str, tags: list[str], notes: str, previous: str | None
    ) -> Any:
        import wandb

        # console="off": runner's output stays as it is (W&B would otherwise capture stdout
        # and stderr); silent: one line from this logger instead of W&B's banner.
        settings = wandb.Settings(console="off", silent=True)
        return wandb.init(
            dir=str(self.run_dir),
            mode=self.mode,  # type: ignore[arg-type]
            project=project,
            entity=entity or None,
            name=run_name or self.run_dir.name,
            group=group or None,
            tags=list(tags) or None,
            notes=notes or None,
            id=previous,
            resume="allow" if previous else None,
            settings=settings,
        )

    def _write_link(self) -> None:
        files = Path(self.run.settings.sync_dir) if self.mode != "disabled" else None
        link = {
            "id": self.run.id,
            "project": self.run.project,
            "entity": getattr(self.run, "entity", "") or "",
            "mode": self.mode,
            # Relative to the run directory (which may move), like the files it names.
            "dir": os.path.relpath(files, self.run_dir) if files is not None else "",
            "url": (getattr(self.run, "url", "") or "") if self.mode == "online" else "",
        }
        (self.run_dir / LINK_FILE).write_text(json.dumps(link, indent=2) + "\n", encoding="utf-8")
        if self.mode == "offline" and files is not None:
            print(f"wandb: offline run in {files}; upload it with: wandb sync {files}", file=sys.stderr, flush=True)
        elif link["url"]:
            print(f"wandb: {link['url']}", file=sys.stderr, flush=True)

    # -- records --------------------------------------------------------------------------

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            step = int(record.get("step", 0))
            values = dict(metric_items(record))
            if values and step >= self._floor:
                self.run.log(values, step=step)

    # -- run hooks (the engine calls them on the logger, a run object) ---------------------

    def on_interrupt(self, run: Any, signal: str) -> None:
        """A run stopped by a signal ends with the signal's exit status in W&B."""
        self._interrupted = signal

    def on_end_train(self, run: Any) -> None:
        """What the summary gets when the run ends."""
        self._end = {
            "runner/global_step": run.global_step,
            "runner/epochs": run.epoch + 1,
            "runner/stop_reason": run.stop_reason,
        }

    # -- the end ---------------------------------------------------------------------------

    def finish(self, error: BaseException | None) -> None:
        """After the last record: the summary, the model artifact, the W&B run's exit code."""
        if isinstance(error, KeyboardInterrupt):
            status, code = "interrupted", 130
        elif error is not None:
            status, code = "failed", 1
        elif self._interrupted:
            status, code = "interrupted", 143 if self._interrupted == "SIGTERM" else 130
        else:
            status, code = "finished", 0
        try:
            self.run.summary.update({**self._end, "runner/status": status})
            if self.log_model and status == "finished":
                self._log_model()
        finally:
            self.run.finish(exit_code=code)

    def _log_model(self) -> None:
        import wandb

        model = final_model(self.run_dir)
        if model is None:
            print("wandb: log_model: no model.safetensors and no checkpoint to log", file=sys.stderr, flush=True)
            return
        source = "model.safetensors" if model.is_file() else f"checkpoint {model.name}"
        metadata = {"source": source, **{k.removeprefix("runner/"): v for k, v in self._end.items()}}
        artifact = wandb.Artifact(f"{self.run.id}-model", type="model", metadata=metadata)
        # immutable: W&B references the files in the run directory instead of copying them.
        if model.is_file():
            artifact.add_file(str(model), policy="immutable")
        else:
            artifact.add_dir(str(model), policy="immutable")
        self.run.log_artifact(artifact, aliases=["final"])
