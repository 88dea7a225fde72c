"""Table and learning curves from the TensorBoard logs in runs/.

Runs are grouped by exp name (run dirs are `{env_id}__{exp_name}__{seed}__{time}`); an exp name of the form
`{algorithm}-{prey}-{spawn}` puts the algorithm's curves for one prey x spawn condition in one plot.
Curves show the median and the interquartile range over seeds (as the papers plot); a run that stopped early
at its success target (last value >= --hold-above) is held at its last value, other runs end at their last step. Prints a markdown table:
env steps and minutes to the success threshold (median over seeds that reached it), the best and the final success rate.

    python benchmarks/plot_results.py --runs runs --out docs/ppo_her --max-steps 300000
"""
import argparse
import glob
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def load_runs(runs_dir, tag, include):
    """{exp_name: [(steps, values, seconds since the run started), ...]} for every run holding `tag`."""
    groups = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(runs_dir, "*__*__*__*"))):
        exp_name = os.path.basename(path).split("__")[1]
        if include and not any(word in exp_name for word in include):
            continue
        events = EventAccumulator(path, size_guidance={"scalars": 0})
        events.Reload()
        if tag not in events.Tags()["scalars"]:
            continue
        scalars = events.Scalars(tag)
        start = events.FirstEventTimestamp()
        groups[exp_name].append((np.array([s.step for s in scalars]), np.array([s.value for s in scalars]),
                                 np.array([s.wall_time - start for s in scalars])))
    return groups


def first_crossing(steps, values, seconds, threshold):
    hit = np.flatnonzero(values >= threshold - 1e-6)  # the logs hold float32: 0.9 -> 0.8999999
    return (steps[hit[0]], seconds[hit[0]]) if hit.size else (np.nan, np.nan)


def summarise(groups, threshold):
    rows = []
    for exp_name, runs in sorted(groups.items()):
        crossings = np.array([first_crossing(*run, threshold) for run in runs])
        reached = ~np.isnan(crossings[:, 0])
        rows.append(dict(exp=exp_name, seeds=len(runs), reached=int(reached.sum()),
                         steps=np.median(crossings[reached, 0]) if reached.any() else np.nan,
                         minutes=np.median(crossings[reached, 1]) / 60 if reached.any() else np.nan,
                         best=np.median([run[1].max() for run in runs]),
                         final=np.median([run[1][-1] for run in runs])))
    return rows


def save_figure(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot(groups, out_dir, max_steps, tag, hold_above):
    """One PNG per condition (the part of the exp name after the first '-'), one curve per algorithm."""
    by_condition = defaultdict(dict)
    for exp_name, runs in groups.items():
        algorithm, _, condition = exp_name.partition("-")
        by_condition[condition or exp_name][algorithm] = runs
    grid = np.linspace(0, max_steps, 200)
    paths = []
    for condition, algorithms in sorted(by_condition.items()):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for algorithm, runs in sorted(algorithms.items()):
            curves = np.array([np.interp(grid, steps, values, left=np.nan,
                                         right=values[-1] if values[-1] >= hold_above - 1e-6 else np.nan)
                               for steps, values, _ in runs])
            low, median, high = np.percentile(curves, [25, 50, 75], axis=0)  # only where every seed has data
            ax.plot(grid, median, label=f"{algorithm} ({len(runs)} seeds)")
            ax.fill_between(grid, low, high, alpha=0.25)
        ax.set(title=condition, xlabel="env steps", ylabel=tag.split("/")[-1], ylim=(0, 1.02), xlim=(0, max_steps))
        ax.legend(loc="lower right")
        paths.append(save_figure(fig, os.path.join(out_dir, f"{condition}.png")))
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="folder of TensorBoard run folders")
    parser.add_argument("--out", default="docs/results", help="folder for the PNGs")
    parser.add_argument("--tag", default="charts/success_rate", help="scalar to plot")
    parser.add_argument("--threshold", type=float, default=0.9, help="success level for the time-to-learn columns")
    parser.add_argument("--max-steps", type=int, default=300_000, help="x-axis range")
    parser.add_argument("--hold-above", type=float, default=0.95, help="the runs' --stop-at-success level")
    parser.add_argument("--include", nargs="*", default=[], help="only exp names containing one of these")
    parser.add_argument("--seconds", action="store_true", help="wall-clock column in seconds, not minutes")
    args = parser.parse_args()
    groups = load_runs(args.runs, args.tag, args.include)
    if not groups:
        raise SystemExit(f"error: no runs with {args.tag} under {args.runs}")
    os.makedirs(args.out, exist_ok=True)
    pct = f"{args.threshold:.0%}"
    unit, scale = ("seconds", 60) if args.seconds else ("minutes", 1)
    print(f"| experiment | seeds | reached {pct} | env steps to {pct} (median) | {unit} to {pct} (median) "
          f"| best success (median) | final success (median) |\n|-|-|-|-|-|-|-|")
    for row in summarise(groups, args.threshold):
        print(f"| {row['exp']} | {row['seeds']} | {row['reached']}/{row['seeds']} | {row['steps']:,.0f} "
              f"| {row['minutes'] * scale:.1f} | {row['best']:.2f} | {row['final']:.2f} |")
    for path in plot(groups, args.out, args.max_steps, args.tag, args.hold_above):
        print(f"wrote {path}")
