"""Train and validation curves of runs, drawn with matplotlib (imported only here).

Needs matplotlib: ``pip install 'runner-core[plot]'``. Figures are rendered with the Agg
canvas directly, so no GUI backend or global pyplot state is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner._cli.tools.runs import read_records
from runner._contract.errors import RunnerError
from runner._contract.suggest import did_you_mean
from runner._engine.buffered import RECORD_KEYS

#: Left out of the default panels (shown when asked for with --metric).
HIDDEN_BY_DEFAULT = ("lr",)
VAL_STYLES = ("--", ":", "-.")


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Each run's directory name, or more of its path where names repeat."""
    labels = [p.name or str(p) for p in run_dirs]
    if len(set(labels)) == len(labels):
        return labels
    return [str(p) for p in run_dirs]


def metric_names(records: list[dict[str, Any]]) -> list[str]:
    """Numeric metrics of train and validation records, in order of first appearance."""
    names: dict[str, None] = {}
    for record in records:
        if record.get("stage") not in ("train", "val"):
            continue
        for name, value in record.items():
            if name not in RECORD_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
                names.setdefault(name, None)
    return list(names)


def curves(records: list[dict[str, Any]], metric: str) -> dict[str, tuple[list[int], list[float]]]:
    """``{"train": (steps, values), "val/main": (...), ...}`` for one metric."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        stage = record.get("stage")
        value = record.get(metric)
        if stage not in ("train", "val") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        label = "train" if stage == "train" else f"val/{record.get('key', 'main')}"
        steps, values = series.setdefault(label, ([], []))
        steps.append(int(record.get("step", 0)))
        values.append(float(value))
    return series


def plot_runs(run_dirs: Sequence[Path], metrics: Sequence[str], output: Path, *, dpi: int = 100) -> list[str]:
    """Draw one panel per metric with every run's train (solid) and val (dashed) curves
    over optimizer steps, save a PNG to ``output`` and return the metrics drawn."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RunnerError("runner plot needs matplotlib: pip install 'runner-core[plot]'") from exc

    runs = []
    for run_dir in run_dirs:
        records = read_records(run_dir)
        if not records:
            raise RunnerError(f"{run_dir}: no metrics.jsonl records (not a run directory, or nothing logged yet)")
        runs.append(records)
    available = list(dict.fromkeys(name for records in runs for name in metric_names(records)))
    if metrics:
        for metric in metrics:
            if metric not in available:
                hint = did_you_mean(metric, available)
                raise RunnerError(
                    f"no metric {metric!r} in these runs{f'; {hint}' if hint else ''} "
                    f"(available: {', '.join(available)})"
                )
        chosen = list(dict.fromkeys(metrics))
    else:
        chosen = [m for m in available if m not in HIDDEN_BY_DEFAULT]
        chosen.sort(key=lambda m: (m != "loss", available.index(m)))
    if not chosen:
        raise RunnerError("nothing to plot: the runs logged no train or validation metrics")

    cols = min(len(chosen), 3)
    rows = -(-len(chosen) // cols)
    figure = Figure(figsize=(5.2 * cols, 3.8 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    colors = [f"C{i % 10}" for i in range(len(runs))]
    labels = run_labels(run_dirs)
    axes = figure.subplots(rows, cols, squeeze=False)
    for index, metric in enumerate(chosen):
        ax = axes[index // cols][index % cols]
        for records, color, label in zip(runs, colors, labels, strict=True):
            series = curves(records, metric)
            val_keys = [k for k in series if k != "train"]
            for name, (steps, values) in series.items():
                if name == "train":
                    ax.plot(steps, values, color=color, linewidth=1.2, alpha=0.8, label=f"{label} train")
                    continue
                style = VAL_STYLES[val_keys.index(name) % len(VAL_STYLES)]
                shown = "val" if val_keys == ["val/main"] else name
                ax.plot(steps, values, style, color=color, marker="o", markersize=3, label=f"{label} {shown}")
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize="small")
    for index in range(len(chosen), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=dpi, format="png")
    return chosen
