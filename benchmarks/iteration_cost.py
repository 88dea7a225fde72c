"""Seconds of computation per PPO iteration (rollout + relabelling + update), with HER on and off, per condition
and method; for ppo_her_2_ppo runs split at the HER switch-off (the runs' `her/enabled` scalar).

An iteration's seconds are the wall-clock between two consecutive points of a scalar the PPO scripts log once per
iteration (charts/SPS); the first iteration, which also pays for making the envs, counts only in the whole-run
column. Per-iteration columns: the median over all iterations of all seeds. Seconds per run: from opening the log
to the last iteration, IQM over seeds with its 95% interval; comparable across methods only where every run went
to the same step budget (no early stop). Wall-clock seconds depend on what else ran on the machine.

    python benchmarks/iteration_cost.py experiments/meher-paper-defaults
"""
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_results import format_ci, iqm_ci, separated  # noqa: E402
from run_logs import table_from_command_line  # noqa: E402

PER_ITERATION = "charts/SPS"


def iteration_seconds(run, budget=10**12):
    """(seconds of each iteration, whether HER was on in it, seconds of the whole run) or None without the scalar.
    HER is on where `her/enabled` says so; runs without that scalar have it on unless they ran with --no-her."""
    ticks = run.scalar(PER_ITERATION)
    if ticks is None or not len(ticks.steps):
        return None
    ticks = ticks.until(budget)
    seconds = np.diff(ticks.seconds, prepend=0.0)
    enabled = run.scalar("her/enabled")
    if enabled is not None:
        state = dict(zip(enabled.steps.tolist(), enabled.values > 0.5))
        her_on = np.array([state.get(step, True) for step in ticks.steps.tolist()])
    else:
        her_on = np.full(len(seconds), not run.has_flag("no-her"))
    return seconds, her_on, float(ticks.seconds[-1]) if len(ticks.seconds) else 0.0


def cost_table(runs, budget=10**12, methods=None, conditions=None) -> str:
    cells = defaultdict(list)
    for run in runs:
        measured = iteration_seconds(run, budget)
        if measured is not None:
            cells[run.condition, run.method].append(measured)
    conditions = conditions or sorted({c for c, _ in cells})
    methods = methods or sorted({m for _, m in cells})
    lines = ["| condition | method | seconds per iteration, HER on (median) | HER off (median) "
             "| seconds per run |", "|-|-|-|-|-|"]
    for condition in conditions:
        for method in methods:
            if not cells[condition, method]:
                continue
            seconds = np.concatenate([s[1:] for s, _, _ in cells[condition, method]])
            her_on = np.concatenate([h[1:] for _, h, _ in cells[condition, method]])
            on = f"{np.median(seconds[her_on]):.2f}" if her_on.any() else "-"
            off = f"{np.median(seconds[~her_on]):.2f}" if (~her_on).any() else "-"
            per_run = iqm_ci([total for _, _, total in cells[condition, method]])
            lines.append(f"| {condition} | {method} | {on} | {off} | {format_ci(per_run, '.1f')} |")
    return "\n".join(lines)


def saving_table(runs, pairs, budget=10**12, conditions=None) -> str:
    """Method A's computation against method B's, per condition and pooled: seconds per run and each run's mean
    seconds per iteration (after the first), IQM over seeds [95% interval], A's IQM over B's, and whether the
    intervals are separated. Comparable only between runs made side by side, under one load."""
    cells = defaultdict(list)
    for run in runs:
        measured = iteration_seconds(run, budget)
        if measured is not None and len(measured[0]) > 1:
            cells[run.condition, run.method].append((measured[2], float(np.mean(measured[0][1:]))))
    conditions = conditions or sorted({c for c, _ in cells})
    lines = ["| A | B | condition | A: seconds per run | B: seconds per run | A / B | separated "
             "| A: seconds per iteration | B: seconds per iteration | A / B | separated |", "|" + "-|" * 11]
    for a, b in pairs:
        both = [c for c in conditions if cells[c, a] and cells[c, b]]
        rows = [(c, [cells[c, a]], [cells[c, b]]) for c in both]
        if len(both) > 1:
            rows.append((f"all {len(both)} conditions", [cells[c, a] for c in both], [cells[c, b] for c in both]))
        for condition, ours, theirs in rows:
            line = f"| {a} | {b} | {condition} |"
            for column in (0, 1):
                mine = iqm_ci(*[[cell[column] for cell in stratum] for stratum in ours])
                other = iqm_ci(*[[cell[column] for cell in stratum] for stratum in theirs])
                line += (f" {format_ci(mine, '.2f')} | {format_ci(other, '.2f')} | {mine[0] / other[0]:.2f} "
                         f"| {'yes' if separated(mine, other) != 'overlap' else 'no'} |")
            lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    table_from_command_line(__doc__.splitlines()[0], "experiments/meher-paper-defaults", cost_table)
