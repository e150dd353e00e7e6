"""The ``tensorboard`` logger: event files written by ``torch.utils.tensorboard``.

Scalars are named ``stage/metric`` for training (``train/loss``, ``train/lr``) and
``stage/key/metric`` for evaluation (``val/main/accuracy``, ``test/main/loss``), at the
record's optimizer step. Records are queued by :class:`runner.BufferedLogger` and
written by a background thread; the event writer then flushes every ``flush_secs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner import BufferedLogger, flatten, metric_items

RECIPE_FILE = "recipe.toml"


class TensorBoardLogger(BufferedLogger):
    """Writes records as TensorBoard scalars; hyperparameters and the recipe as summaries."""

    def __init__(
        self,
        run_dir: Path,
        ctx: Any = None,
        log_dir: str = ".",
        hparams: bool = True,
        recipe_text: bool = True,
        flush_secs: float = 10.0,
    ) -> None:
        super().__init__()
        from torch.utils.tensorboard import SummaryWriter

        target = Path(log_dir) if Path(log_dir).is_absolute() else Path(run_dir) / log_dir
        self.log_dir = target
        self.writer = SummaryWriter(log_dir=str(target), flush_secs=flush_secs)
        recipe = getattr(ctx, "recipe", None)
        resolved = getattr(recipe, "resolved", None)
        self._hparams = flatten(resolved) if hparams and isinstance(resolved, dict) else None
        self._final: dict[str, float] = {}
        if recipe_text:
            text = _recipe_text(Path(run_dir), resolved)
            if text:
                # Indented: a markdown code block, so TensorBoard shows the TOML verbatim.
                self.writer.add_text("recipe", "\n".join("    " + line for line in text.splitlines()), 0)

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            step = int(record.get("step", 0))
            for name, value in metric_items(record):
                self.writer.add_scalar(name, value, step)
                if record.get("stage") != "train":
                    self._final[name] = value

    def finish(self, error: BaseException | None) -> None:
        try:
            if self._hparams is not None:
                from torch.utils.tensorboard.summary import hparams

                # The HParams dashboard reads the listed metrics from the scalars above.
                for summary in hparams(self._hparams, dict(self._final) or {"train/loss": 0.0}):
                    self.writer.file_writer.add_summary(summary)
            self.writer.flush()
        finally:
            self.writer.close()


def _recipe_text(run_dir: Path, resolved: Any) -> str:
    path = run_dir / RECIPE_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8")
    if isinstance(resolved, dict):
        from runner import render_toml as render

        return render(resolved)
    return ""
