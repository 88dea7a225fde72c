"""Across-seed statistics, the markdown table and the learning curves of an experiment's finished runs.

Statistics (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021): the interquartile
mean (IQM: the mean of the middle 50% of the runs, scipy.stats.trim_mean(x, 0.25)) with a 95% percentile
bootstrap confidence interval over seeds (scipy.stats.bootstrap, fixed random state, so a report is
reproducible). Where several conditions are pooled, the bootstrap resamples seeds within each condition
(stratified). A run that never reaches the threshold within the budget counts at the budget (env steps) or at the
time it ran (minutes), and the table says how many reached it. Curves: the IQM across seeds of the summarising
scalar against env steps, with its 95% interval as a band: one PNG per condition and, with five conditions or
more, grid.png with a panel per condition in rows of six (the papers' 2 x 6 figure of the prey x spawn conditions).

    python benchmarks/plot_results.py experiments/ppo-vs-ppo-her --budget 300000 --out /tmp/curves
"""
import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap, trim_mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_logs import Curve, first_crossing, load_runs  # noqa: E402

CONFIDENCE = 0.95
RESAMPLES = 10_000
CURVE_RESAMPLES = 2_000
RANDOM_STATE = 0  # the bootstrap's seed: the same logs give the same intervals
CURVE_POINTS = 200


def iqm(values) -> float:
    return float(trim_mean(np.asarray(values, float), 0.25))


def iqm_ci(*strata) -> tuple[float, float, float]:
    """(IQM, low, high) of all values pooled, the 95% interval from a bootstrap that resamples each stratum (each
    condition's seeds) on its own. A stratum of one value stays as it is; with no stratum of two or more values
    there is nothing to resample and the interval is (nan, nan)."""
    strata = [np.asarray(s, float) for s in strata if len(s)]
    pooled = np.concatenate(strata)
    point = iqm(pooled)
    varying = [s for s in strata if len(s) >= 2]
    fixed = np.concatenate([s for s in strata if len(s) < 2] or [np.empty(0)])
    if not varying:
        return point, np.nan, np.nan

    def statistic(*resampled, axis=-1):
        batch = resampled[0].shape[:-1]
        return trim_mean(np.concatenate([*resampled, np.broadcast_to(fixed, (*batch, len(fixed)))], axis=-1), 0.25,
                         axis=-1)

    result = bootstrap(varying, statistic, vectorized=True, paired=False, confidence_level=CONFIDENCE,
                       n_resamples=RESAMPLES, method="percentile", random_state=np.random.default_rng(RANDOM_STATE))
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


def curve_iqm_band(curves: np.ndarray):
    """IQM across seeds (rows) at each point (columns) and its 95% bootstrap band; nan where a seed has no data."""
    middle, low, high = (np.full(curves.shape[1], np.nan) for _ in range(3))
    complete = np.isfinite(curves).all(axis=0)
    if not complete.any():
        return middle, low, high
    data = curves[:, complete]
    middle[complete] = trim_mean(data, 0.25, axis=0)
    if len(data) >= 2:
        result = bootstrap((data,), lambda x, axis=-1: trim_mean(x, 0.25, axis=axis), axis=0, vectorized=True,
                           confidence_level=CONFIDENCE, n_resamples=CURVE_RESAMPLES, method="percentile",
                           random_state=np.random.default_rng(RANDOM_STATE))
        low[complete], high[complete] = result.confidence_interval.low, result.confidence_interval.high
    return middle, low, high


def stop_level(run) -> float:
    """The run's --stop-at-success level (inf if it never stops early)."""
    return float(run.flag("stop-at-success", "inf"))


def run_outcome(run, tag, threshold, budget):
    """(reached, env steps to threshold, minutes to threshold, final value) of one run, cut at `budget`; a run that
    never reaches the threshold counts at the budget, and at the minutes it ran; None if the run lacks `tag`."""
    curve = run.scalar(tag)
    if curve is None or not len(curve.steps):
        return None
    curve = curve.until(budget)
    if not len(curve.steps):
        return None
    steps, seconds = first_crossing(curve, threshold)
    reached = not np.isnan(steps)
    return (reached, steps if reached else float(budget), (seconds if reached else curve.seconds[-1]) / 60,
            float(curve.values[-1]))


def group(runs, key):
    groups = defaultdict(list)
    for run in runs:
        groups[key(run)].append(run)
    return groups


def summarise(runs, tag, threshold, budget, methods=None, conditions=None) -> list[dict]:
    """One row per (condition, method) in the given order (default: sorted), then, with several conditions, one row
    per method pooled over them ("all", stratified bootstrap). Values are (IQM, low, high)."""
    conditions = conditions or sorted({r.condition for r in runs})
    methods = methods or sorted({r.method for r in runs})
    outcomes = defaultdict(list)  # (condition, method) -> [(reached, steps, minutes, final)]
    for run in runs:
        outcome = run_outcome(run, tag, threshold, budget)
        if outcome is not None:
            outcomes[run.condition, run.method].append(outcome)

    def row(condition, method, cells):
        cells = [np.array(c, float).reshape(-1, 4) for c in cells]
        return dict(condition=condition, method=method, seeds=sum(len(c) for c in cells),
                    reached=int(sum(c[:, 0].sum() for c in cells)),
                    steps=iqm_ci(*[c[:, 1] for c in cells]), minutes=iqm_ci(*[c[:, 2] for c in cells]),
                    final=iqm_ci(*[c[:, 3] for c in cells]))

    rows = [row(c, m, [outcomes[c, m]]) for c in conditions for m in methods if outcomes[c, m]]
    if len(conditions) > 1:
        for method in methods:
            cells = [outcomes[c, method] for c in conditions if outcomes[c, method]]
            if len(cells) > 1:
                rows.append(row(f"all {len(cells)} conditions", method, cells))
    return rows


def best_and_final_table(runs, tag, budget, methods=None, conditions=None) -> str:
    """Per (condition, method): the best value of `tag` a run logged, the env steps where it first did, its last
    value and how far it ended below its best (IQM [95% bootstrap CI] over seeds): whether a run holds its peak."""
    conditions = conditions or sorted({r.condition for r in runs})
    methods = methods or sorted({r.method for r in runs})
    name = tag.split("/")[-1]
    lines = [f"| condition | method | seeds | best {name} | env steps to the best | final {name} | best - final |",
             "|-|-|-|-|-|-|-|"]
    for condition in conditions:
        for method in methods:
            curves = [run.scalar(tag) for run in runs if (run.condition, run.method) == (condition, method)]
            curves = [curve.until(budget) for curve in curves if curve is not None and len(curve.steps)]
            if not curves:
                continue
            best = np.array([curve.values.max() for curve in curves])
            best_step = np.array([curve.steps[np.argmax(curve.values)] for curve in curves])
            final = np.array([curve.values[-1] for curve in curves])
            lines.append(f"| {condition} | {method} | {len(curves)} | {format_ci(iqm_ci(best), '.2f')} "
                         f"| {format_ci(iqm_ci(best_step), ',.0f')} | {format_ci(iqm_ci(final), '.2f')} "
                         f"| {format_ci(iqm_ci(best - final), '.2f')} |")
    return "\n".join(lines)


def separated(a, b) -> str:
    """"above" or "below" where the 95% intervals of a and b, each (IQM, low, high), do not overlap; else "overlap"."""
    if a[1] > b[2]:
        return "above"
    return "below" if a[2] < b[1] else "overlap"


def paired_table(rows, pairs, threshold, summed=()) -> str:
    """Method A against method B condition by condition (rows from `summarise`): in how many conditions each is
    separated ahead (fewer env steps to the threshold; a higher final value), naming them, and in how many their
    95% intervals overlap; the last two columns pool the conditions. With `summed` (label A, label B), a last row
    per measure adds up the counts of every pair and condition."""
    pct = f"{threshold:g}" if threshold > 1 else f"{threshold:.0%}"
    cells = {(r["condition"], r["method"]): r for r in rows}
    measures = (("steps", f"env steps to {pct}", ",.0f", True), ("final", "final value", ".2f", False))
    totals = {measure: defaultdict(int) for _, measure, _, _ in measures}
    lines = ["| A | B | measure | A ahead (separated) | B ahead (separated) | overlap | A pooled | B pooled |",
             "|-|-|-|-|-|-|-|-|"]
    for a, b in pairs:
        conditions = [c for c, m in cells if m == a and (c, b) in cells and not c.startswith("all ")]
        pooled = [c for c, m in cells if m == a and (c, b) in cells and c.startswith("all ")]
        for key, measure, fmt, lower_is_ahead in measures:
            ahead = defaultdict(list)
            for condition in conditions:
                side = separated(cells[condition, a][key], cells[condition, b][key])
                if side == "overlap":
                    ahead["overlap"].append(condition)
                else:
                    ahead["A" if (side == "below") == lower_is_ahead else "B"].append(condition)
            for k, v in ahead.items():
                totals[measure][k] += len(v)
            named = {k: f"{len(v)}" + (f" ({', '.join(v)})" if v and k != "overlap" else "") for k, v in ahead.items()}
            both = [format_ci(cells[pooled[0], m][key], fmt) if pooled else "-" for m in (a, b)]
            lines.append(f"| {a} | {b} | {measure} | {named.get('A', '0')} | {named.get('B', '0')} "
                         f"| {named.get('overlap', '0')} | {both[0]} | {both[1]} |")
    if summed:
        for _, measure, _, _ in measures:
            count = totals[measure]
            lines.append(f"| {summed[0]} | {summed[1]} | {measure} | {count['A']} | {count['B']} "
                         f"| {count['overlap']} | - | - |")
    return "\n".join(lines)


def format_ci(value, fmt) -> str:
    point, low, high = value
    if np.isnan(point):
        return "-"
    return f"{point:{fmt}}" + ("" if np.isnan(low) else f" [{low:{fmt}}, {high:{fmt}}]")


def markdown_table(rows, threshold, tag) -> str:
    pct = f"{threshold:g}" if threshold > 1 else f"{threshold:.0%}"
    name = tag.split("/")[-1]
    lines = [f"| condition | method | seeds | reached {pct} | env steps to {pct} | minutes to {pct} | final {name} |",
             "|-|-|-|-|-|-|-|"]
    for r in rows:
        lines.append(f"| {r['condition']} | {r['method']} | {r['seeds']} | {r['reached']}/{r['seeds']} "
                     f"| {format_ci(r['steps'], ',.0f')} | {format_ci(r['minutes'], '.1f')} "
                     f"| {format_ci(r['final'], '.2f')} |")
    return "\n".join(lines)


def distinct_colours(names) -> dict:
    """A colour per name from matplotlib's tab20: its 10 strong colours for up to 10 names, all 20 beyond."""
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab20").colors
    return {name: palette[(2 * i) % 20 if len(names) <= 10 else i % 20] for i, name in enumerate(names)}


def save_figure(fig, path):
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:  # a figure with its own layout (the grid) keeps it
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def resampled(run, curve: Curve, grid) -> np.ndarray:
    """The curve at the grid points: nan before its first point; after its last point, held at its last value if
    the run stopped early at its success target, else nan."""
    held = curve.values[-1] >= stop_level(run) - 1e-6
    return np.interp(grid, curve.steps, curve.values, left=np.nan, right=curve.values[-1] if held else np.nan)


GRID_COLUMNS = 6  # the papers' 12 prey x spawn conditions: a row per spawn, a column per prey behaviour
GRID_FROM = 5  # an experiment with this many conditions or more also gets them all in one figure


def condition_bands(by_cell, condition, methods, tag, budget, grid) -> list[tuple]:
    """Per method with runs in `condition`: (method, seeds, IQM, band low, band high) at the grid points."""
    bands = []
    for method in methods:
        cell = [(run, run.scalar(tag)) for run in by_cell.get((condition, method), [])]
        cell = [(run, curve.until(budget)) for run, curve in cell if curve is not None and len(curve.steps)]
        if cell:
            curves = np.array([resampled(run, curve, grid) for run, curve in cell])
            bands.append((method, len(cell), *curve_iqm_band(curves)))
    return bands


def draw_bands(ax, grid, bands, colours, title, tag, budget):
    """One condition's panel: per method, the IQM line with its 95% band."""
    for method, seeds, middle, low, high in bands:
        ax.plot(grid, middle, color=colours[method], label=f"{method} ({seeds} seeds)")
        ax.fill_between(grid, low, high, color=colours[method], alpha=0.2, linewidth=0)
    ax.set(title=title, xlabel="env steps", ylabel=tag.split("/")[-1], ylim=(0, 1.02), xlim=(0, budget))


def grid_figure(grid, bands_by_condition: dict, methods, colours, tag, budget):
    """All conditions in one figure, a panel each in the given order, rows of GRID_COLUMNS, one legend."""
    import matplotlib.pyplot as plt

    rows = -(-len(bands_by_condition) // GRID_COLUMNS)
    fig, axes = plt.subplots(rows, GRID_COLUMNS, figsize=(18, 3 * rows), sharex=True, sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (condition, bands) in zip(axes.flat, bands_by_condition.items()):
        draw_bands(ax, grid, bands, colours, condition, tag, budget)
        ax.xaxis.set_major_formatter(lambda steps, _: f"{steps / 1000:g}k" if steps else "0")  # narrow panels
        ax.label_outer()  # axis labels only on the left column and the bottom row
    panels = list(axes.flat)
    for i in range(len(bands_by_condition), len(panels)):  # an unfilled last row: the panels above show the steps
        if i >= GRID_COLUMNS:
            panels[i - GRID_COLUMNS].tick_params(labelbottom=True)
            panels[i - GRID_COLUMNS].set_xlabel("env steps")
        panels[i].remove()
    seeds = defaultdict(set)  # method -> its seed counts over the conditions
    for bands in bands_by_condition.values():
        for method, count, *_ in bands:
            seeds[method].add(count)
    handles = [plt.Line2D([], [], color=colours[m], label=f"{m} ({min(seeds[m])}"
                          + ("" if len(seeds[m]) == 1 else f"-{max(seeds[m])}") + " seeds)")
               for m in methods if m in seeds]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), GRID_COLUMNS))
    fig.suptitle("IQM across seeds and 95% CI")
    return fig


def plot_curves(runs, tag, budget, out_dir, methods=None, conditions=None, prefix="", draw=True) -> list[str]:
    """One PNG per condition: per method, the IQM across seeds with its 95% band, against env steps; with
    GRID_FROM conditions or more, first a grid.png with all of them. Returns their paths (without `draw`, only
    the paths: nothing is computed or written)."""
    conditions = conditions or sorted({r.condition for r in runs})
    methods = methods or sorted({r.method for r in runs})
    if not draw:
        return ([os.path.join(out_dir, f"{prefix}grid.png")] if len(conditions) >= GRID_FROM else []) + \
            [os.path.join(out_dir, f"{prefix}{condition}.png") for condition in conditions]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, CURVE_POINTS)
    colours = distinct_colours(methods)
    by_cell = group(runs, lambda r: (r.condition, r.method))
    bands_by_condition = {c: condition_bands(by_cell, c, methods, tag, budget, grid) for c in conditions}
    paths = []
    if len(conditions) >= GRID_FROM:
        fig = grid_figure(grid, bands_by_condition, methods, colours, tag, budget)
        paths.append(save_figure(fig, os.path.join(out_dir, f"{prefix}grid.png")))
    for condition, bands in bands_by_condition.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        draw_bands(ax, grid, bands, colours, f"{condition}: IQM and 95% CI", tag, budget)
        ax.legend(loc="lower right", fontsize=7, ncol=2 if len(methods) > 6 else 1)
        paths.append(save_figure(fig, os.path.join(out_dir, f"{prefix}{condition}.png")))
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="an experiment's log folder, e.g. experiments/ppo-vs-ppo-her")
    parser.add_argument("--tag", default="charts/success_rate", help="scalar that summarises a run")
    parser.add_argument("--threshold", type=float, default=0.9, help="level for the steps/minutes-to columns")
    parser.add_argument("--budget", type=int, default=None, help="env steps per run (default: the longest run)")
    parser.add_argument("--out", default=None, help="folder for the PNG curves (default: no curves)")
    args = parser.parse_args()
    runs = [run for run in load_runs(args.folder) if run.scalar(args.tag) is not None]
    if not runs:
        raise SystemExit(f"error: no finished runs with {args.tag} under {args.folder}")
    budget = args.budget or int(max(run.scalar(args.tag).steps.max() for run in runs))
    print(markdown_table(summarise(runs, args.tag, args.threshold, budget), args.threshold, args.tag))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for path in plot_curves(runs, args.tag, budget, args.out):
            print(f"wrote {path}")
