"""A batch folder's summary.csv, report.md and figures, from its table rows.

Figures need matplotlib (a development dependency): without it the report says so
and names the package instead of drawing them.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path

from napari_movierecon.batch.table import COLUMNS, DONE, FAILED, PENDING
from napari_movierecon.io.atomic import atomic_write, fill, staged_files

SUMMARY = "summary.csv"
REPORT = "report.md"
FIGURES_DIR = "figures"
NO_MATPLOTLIB = "figures need matplotlib (pip install 'matplotlib>=3.7'); none were drawn"


def is_batch_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``movierecon batch``."""
    path = Path(path)
    return (path / SUMMARY).is_file() and (path / "runs").is_dir()


def summary_text(rows: list[dict]) -> str:
    """summary.csv: one row per run, the columns ``COLUMNS``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_summary(path: str | Path) -> list[dict]:
    """Rows of a summary.csv as strings keyed by column."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Finished rows by (encoder, preset, population, mask)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row["status"] == DONE and _number(row["pixel_correlation"]) is not None:
            groups[(row["encoder"], row["preset"], row["population"], row["mask"])].append(row)
    return groups


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def report_text(rows: list[dict], figure_note: str) -> str:
    counts = {
        status: sum(r["status"] == status for r in rows) for status in (DONE, FAILED, PENDING)
    }
    lines = [
        "# Batch report",
        "",
        f"{len(rows)} runs: {counts[DONE]} done, {counts[FAILED]} failed, "
        f"{counts[PENDING]} not run (re-run the plan to resume).",
        "",
        "## Pixel correlation (mean ± sd over trials and seeds)",
        "",
        "| encoder | preset | population | mask | runs | pixel correlation | mean seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for (encoder, preset, population, mask), group in sorted(_groups(rows).items()):
        scores = [float(r["pixel_correlation"]) for r in group]
        seconds = [s for s in (_number(r["seconds"]) for r in group) if s is not None]
        mean_seconds = f"{statistics.fmean(seconds):.1f}" if seconds else ""
        lines.append(
            f"| {encoder} | {preset} | {population} | {mask} | {len(group)} | "
            f"{_mean_sd(scores)} | {mean_seconds} |"
        )
    failed = [r for r in rows if r["status"] == FAILED]
    if failed:
        lines += [
            "",
            "## Failed runs",
            "",
            "| key | trial | population | error |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['key']} | {r['trial']} | {r['population']} | "
            f"{str(r['error']).replace('|', '/').splitlines()[0] if r['error'] else ''} |"
            for r in failed
        ]
    lines += ["", "## Figures", "", figure_note, ""]
    return "\n".join(lines)


def draw_figures(out_dir: Path, rows: list[dict]) -> list[Path]:
    """Population curve, per-clip scores and correlation vs cost as PNGs in DIR/figures;
    ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == DONE and _number(r["pixel_correlation"]) is not None]
    folder = out_dir / FIGURES_DIR
    folder.mkdir(exist_ok=True)
    drawn = []
    series: dict[tuple, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in done:
        series[(r["encoder"], r["preset"], r["mask"])][float(r["n_neurons"])].append(
            float(r["pixel_correlation"])
        )
    plots = {
        "population_curve.png": "neurons used",
        "per_clip.png": "trial",
        "correlation_vs_cost.png": "seconds per run",
    }
    for name, xlabel in plots.items():
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        if name == "population_curve.png":
            for label, points in sorted(series.items()):
                xs = sorted(points)
                axes.errorbar(
                    xs,
                    [statistics.fmean(points[x]) for x in xs],
                    yerr=[statistics.pstdev(points[x]) for x in xs],
                    marker="o",
                    capsize=3,
                    label=" / ".join(label),
                )
            axes.set_xscale("log")
        else:
            for (encoder, preset, population, mask), group in sorted(_groups(rows).items()):
                column = "trial" if name == "per_clip.png" else "seconds"
                axes.plot(
                    [float(r[column]) for r in group],
                    [float(r["pixel_correlation"]) for r in group],
                    "o",
                    label=f"{encoder} / {preset} / {population} / {mask}",
                )
        axes.set_xlabel(xlabel)
        axes.set_ylabel("pixel correlation")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=6)
        figure.tight_layout()
        path = folder / name
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        data = buffer.getvalue()
        atomic_write(path, lambda handle, data=data: handle.write(data), overwrite=True)
        drawn.append(path)
    return drawn


def write_report(out_dir: Path, rows: list[dict], figures: bool = True) -> list[Path]:
    """summary.csv, report.md and (with matplotlib, when asked) the figures; their paths."""
    files: list[Path] = []
    note = "figures were not asked for (--no-figures)"
    if figures:
        try:
            drawn = draw_figures(out_dir, rows)
        except ImportError:
            note = NO_MATPLOTLIB
        else:
            files += drawn
            note = "\n".join(f"![{p.stem}]({FIGURES_DIR}/{p.name})" for p in drawn)
    texts = {out_dir / SUMMARY: summary_text(rows), out_dir / REPORT: report_text(rows, note)}
    # summary and report are one set: a crash leaves the old pair or the new pair
    with staged_files(list(texts), overwrite=True) as temps:
        for tmp, text in zip(temps, texts.values(), strict=True):
            fill(tmp, lambda handle, text=text: handle.write(text.encode()))
    return [*texts, *files]
