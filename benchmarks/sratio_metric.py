"""S-ratio sweep: success curves per D and a time-and-success bar chart, from the logs of meher_sweep.sh.

The MEHER paper ranks S-ratios with a metric M_c that no text we have defines. We use, per run,
    M = final success x (1 - T / T_slowest)
where final success is the success rate of the last 100 real episodes when the run ends, T is the wall-clock time
the run took to first reach 90% success, and T_slowest is the longest such time of any run of the same condition
(so the slowest learner scores 0, and a run that never reaches 90% scores 0). Bars: median over seeds, whiskers:
min and max. Wall-clock times of seconds are noisy on a shared machine, so a second panel measures T in env steps
instead. Exp names are `meher{D}-{prey}-{spawn}` (random failures).

    python benchmarks/sratio_metric.py --runs sweep/runs --out docs/meher
"""
import argparse
import os
import re
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from plot_results import first_crossing, load_runs, save_figure  # noqa: E402


def sweep_table(runs_dir):
    """{condition: {D: [(steps, values, seconds), ...]}} for the exp names meher{D}-{condition}."""
    table = defaultdict(dict)
    for exp_name, runs in load_runs(runs_dir, "charts/success_rate", ["meher"]).items():
        match = re.fullmatch(r"meher([01]\.\d+)-(.+)", exp_name)
        if match:
            table[match.group(2)][float(match.group(1))] = runs
    return table


def metric(runs_by_d, threshold):
    """{D: (per-seed M by seconds, M by env steps, final success, seconds to threshold, steps to threshold)}"""
    crossings = {d: np.array([first_crossing(*run, threshold) for run in runs]) for d, runs in runs_by_d.items()}
    slowest = np.nanmax(np.concatenate(list(crossings.values())), axis=0)  # (steps, seconds)
    result = {}
    for d, runs in runs_by_d.items():
        final = np.array([values[-1] for _, values, _ in runs])
        steps, seconds = crossings[d][:, 0], crossings[d][:, 1]

        def score(t, t_max):
            return np.where(np.isnan(t), 0.0, final * (1 - np.nan_to_num(t) / t_max))

        result[d] = (score(seconds, slowest[1]), score(steps, slowest[0]), final, seconds, steps)
    return result


def plot_curves(condition, runs_by_d, out_dir, max_steps):
    grid = np.linspace(0, max_steps, 150)
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.cm.viridis(np.linspace(0, 1, len(runs_by_d)))
    for colour, (d, runs) in zip(colours, sorted(runs_by_d.items())):
        curves = np.array([np.interp(grid, steps, values, right=np.nan) for steps, values, _ in runs])
        ax.plot(grid, np.median(curves, axis=0), color=colour, label=f"D = {d:.1f}")
    ax.set(title=f"MEHER S-ratio sweep, {condition} (median of {len(runs)} seeds)", xlabel="env steps",
           ylabel="success rate", ylim=(0, 1.02), xlim=(0, max_steps))
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return save_figure(fig, os.path.join(out_dir, f"sweep-{condition}.png"))


def plot_bars(scores, out_dir):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
    width = 0.8 / len(scores)
    for panel, (ax, unit) in enumerate(zip(axes, ("wall-clock seconds", "env steps"))):
        for i, (condition, by_d) in enumerate(sorted(scores.items())):
            ds = np.array(sorted(by_d))
            per_seed = [by_d[d][panel] for d in ds]
            median = np.array([np.median(s) for s in per_seed])
            low, high = median - [s.min() for s in per_seed], [s.max() for s in per_seed] - median
            ax.bar(np.arange(len(ds)) + (i - (len(scores) - 1) / 2) * width, median, width, yerr=[low, high],
                   capsize=2, label=condition)
        ax.set_xticks(np.arange(len(ds)), [f"{d:.1f}" for d in ds])
        ax.set(xlabel="target S-ratio D", title=f"success x (1 - T / T_slowest), T in {unit}")
    axes[0].set_ylabel("M (median over seeds)")
    axes[0].legend(fontsize=8)
    return save_figure(fig, os.path.join(out_dir, "sweep-metric.png"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="sweep/runs", help="folder of TensorBoard run folders")
    parser.add_argument("--out", default="docs/meher", help="folder for the PNGs")
    parser.add_argument("--threshold", type=float, default=0.9, help="success level that defines T")
    parser.add_argument("--max-steps", type=int, default=150_000, help="x-axis range of the curves")
    args = parser.parse_args()
    table = sweep_table(args.runs)
    if not table:
        raise SystemExit(f"error: no meher{{D}}-{{prey}}-{{spawn}} runs under {args.runs}")
    os.makedirs(args.out, exist_ok=True)
    scores = {}
    for condition, runs_by_d in sorted(table.items()):
        scores[condition] = metric(runs_by_d, args.threshold)
        print(f"\n{condition}\n| D | seeds | reached 90% | env steps to 90% (median) | seconds to 90% (median) "
              f"| final success (median) | M by seconds (median) | M by env steps (median) |\n|-|-|-|-|-|-|-|-|")
        for d, (by_seconds, by_steps, final, seconds, steps) in sorted(scores[condition].items()):
            reached = ~np.isnan(seconds)
            med = (lambda x: np.median(x[reached]) if reached.any() else np.nan)  # noqa: E731
            print(f"| {d:.1f} | {len(final)} | {reached.sum()}/{len(final)} | {med(steps):,.0f} | {med(seconds):.1f} "
                  f"| {np.median(final):.2f} | {np.median(by_seconds):.2f} | {np.median(by_steps):.2f} |")
        print(f"wrote {plot_curves(condition, runs_by_d, args.out, args.max_steps)}")
    print(f"wrote {plot_bars(scores, args.out)}")
