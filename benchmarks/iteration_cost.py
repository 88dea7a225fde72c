"""Seconds of computation per 2,048-step PPO iteration (rollout + relabel + update), per experiment, from the
time/* scalars in runs/; for ppo_her_2_ppo runs split at the HER switch-off. Median over iterations and seeds.
The last column sums a run's iterations (median over seeds): comparable across experiments only where every run
went to the same step budget (no early stop).

    python benchmarks/iteration_cost.py --include random-random
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_results import load_runs  # noqa: E402

PARTS = ("time/rollout_seconds", "time/relabel_seconds", "time/update_seconds")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--include", nargs="*", default=["ppo"])
    args = parser.parse_args()
    parts = [load_runs(args.runs, tag, args.include) for tag in PARTS]
    enabled = load_runs(args.runs, "her/enabled", args.include)
    print("| experiment | seconds per iteration, HER on (median) | HER off (median) | seconds per run (median) |"
          "\n|-|-|-|-|")
    for exp_name in sorted(parts[0]):
        seconds, her_on, per_run = [], [], []
        for i in range(len(parts[0][exp_name])):  # a run still going may lack its last iteration's later parts
            series = [p[exp_name][i][1] for p in parts] + ([enabled[exp_name][i][1]] if exp_name in enabled else [])
            n = min(map(len, series))
            seconds.append(sum(x[:n] for x in series[:3]))
            per_run.append(seconds[-1].sum())
            her_on.append(series[3][:n] > 0.5 if exp_name in enabled else np.full(n, "-ppo-" not in f"-{exp_name}"))
        seconds, her_on = np.concatenate(seconds), np.concatenate(her_on)
        on = f"{np.median(seconds[her_on]):.2f}" if her_on.any() else "-"
        off = f"{np.median(seconds[~her_on]):.2f}" if (~her_on).any() else "-"
        print(f"| {exp_name} | {on} | {off} | {np.median(per_run):.1f} |")
