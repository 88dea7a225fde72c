"""S-ratio sweep: the MEHER ranking metric per target S-ratio D, as a table and a bar chart.

The MEHER paper ranks S-ratios with a metric M_c that no text we have defines. We use, per run,
    M = final success x (1 - T / T_slowest)
where final success is the success rate of the last 100 real episodes when the run ends, T is the time the run
took to first reach the threshold (90% success), and T_slowest is the longest such time of any run of the same
condition (so the slowest learner scores 0, and a run that never reaches the threshold scores 0). T is measured
in wall-clock seconds and, because short runs on a shared machine are noisy, also in env steps. Bars: the IQM
over seeds with its 95% bootstrap interval. The runs are the experiment's meher.py runs with random failures,
grouped by their --s-ratio flag. Two verdict tables follow (T in env steps, then in seconds): per condition, the
best D, and whether the paper's "D = 0.5-0.7 is best" holds there (see band_verdict), with the band's best against
PPO-HER (the experiment's ppo_her.py runs) in env steps to the threshold.

    python benchmarks/sratio_metric.py experiments/meher-sratio-sweep-fast --out /tmp/sweep
"""
import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_results import distinct_colours, format_ci, iqm_ci, run_outcome, save_figure, separated  # noqa: E402
from run_logs import first_crossing, load_runs  # noqa: E402

TAG = "charts/success_rate"


def sweep_table(runs, budget) -> dict:
    """{condition: {D: [success Curve of each seed]}} for the meher.py runs with random failures."""
    table = defaultdict(lambda: defaultdict(list))
    for run in runs:
        curve = run.scalar(TAG)
        if run.script == "meher" and run.flag("failure", "random") == "random" and curve is not None:
            table[run.condition][float(run.flag("s-ratio", "0.5"))].append(curve.until(budget))
    return table


def metric(curves_by_d, threshold) -> dict:
    """{D: (M with T in seconds, M with T in env steps, final success, seconds to threshold, steps to it)}, each an
    array over seeds."""
    crossings = {d: np.array([first_crossing(curve, threshold) for curve in curves])
                 for d, curves in curves_by_d.items()}
    reached = np.concatenate(list(crossings.values()))
    reached = reached[~np.isnan(reached[:, 0])]
    slowest = reached.max(axis=0) if len(reached) else np.full(2, np.nan)  # (steps, seconds)
    result = {}
    for d, curves in curves_by_d.items():
        final = np.array([curve.values[-1] for curve in curves])
        steps, seconds = crossings[d][:, 0], crossings[d][:, 1]

        def score(t, t_slowest):
            return np.where(np.isnan(t), 0.0, final * (1 - np.nan_to_num(t) / t_slowest))

        result[d] = (score(seconds, slowest[1]), score(steps, slowest[0]), final, seconds, steps)
    return result


BAND = (0.5, 0.6, 0.7)  # the paper's claim: D = 0.5-0.7 is best
HOLDS_AT = 5  # seeds a "holds" needs (the README's rule)


def band_verdict(stats: dict, seeds: int) -> tuple[str, float]:
    """Whether "D = 0.5-0.7 is best" holds on one condition, from {D: M's (IQM, low, high)}, and the band's best D.
    With the best IQM in the band and at 5 seeds or more: "holds" where the band's best is separated above every D
    outside the band, "holds against 0 and 1" where it is separated above D = 0 and D = 1 only. "Does not hold":
    some D outside the band is separated above the band's best. Else "suggests" (the best IQM is in the band) or
    "cannot tell"."""
    band = max((d for d in BAND if d in stats), key=lambda d: stats[d][0])
    best = max(stats, key=lambda d: stats[d][0])
    outside = [separated(stats[band], stats[d]) for d in stats if d not in BAND]
    if "below" in outside:
        return "does not hold", band
    ends = [separated(stats[band], stats[d]) for d in (0.0, 1.0) if d in stats]
    if best not in BAND:
        return "cannot tell", band
    if seeds < HOLDS_AT or ends != ["above", "above"]:
        return "suggests", band
    return ("holds" if set(outside) == {"above"} else "holds against 0 and 1"), band


def verdict_table(scores: dict, reference: dict, budget: int, unit: int, pct: str) -> str:
    """Per condition, the best D by M (T in seconds: unit 0; in env steps: unit 1), the D whose intervals overlap
    the best's, the band's best against D = 0 and D = 1 and the verdict on "0.5-0.7 is best"; with T in env steps also
    the band's best against PPO-HER (`reference`: {condition: env steps to the threshold of each run, the budget
    where it never got there}) in env steps to the threshold. A count over the conditions ends it."""
    with_reference = unit == 1 and bool(reference)
    head = "| condition | seeds | best D | its M | D within its interval | 0.5-0.7's best | against D = 0 " \
           "| against D = 1 | verdict |"
    if with_reference:
        head += f" its env steps to {pct} | PPO-HER's | against PPO-HER |"
    lines = [head, "|" + "-|" * head.count(" |")]
    counts = defaultdict(list)
    for condition, by_d in sorted(scores.items()):
        stats = {d: iqm_ci(values[unit]) for d, values in by_d.items()}
        seeds = min(len(values[2]) for values in by_d.values())
        best = max(stats, key=lambda d: stats[d][0])
        ties = [f"{d:.1f}" for d in sorted(stats) if separated(stats[d], stats[best]) == "overlap"]
        verdict, band = band_verdict(stats, seeds)
        shown = f"{best:.1f}"
        if stats[best][0] == 0:  # no run of any D reached the threshold: nothing is best
            verdict, shown, ties = "cannot tell", "-", ["none reached it"]
        counts[verdict].append(condition)
        ends = [separated(stats[band], stats[d]) if d in stats else "-" for d in (0.0, 1.0)]
        line = (f"| {condition} | {seeds} | {shown} | {format_ci(stats[best], '.2f')} | {', '.join(ties)} "
                f"| {band:.1f} | {ends[0]} | {ends[1]} | {verdict} |")
        if with_reference:
            steps = np.nan_to_num(by_d[band][4], nan=budget)
            ours = iqm_ci(steps)
            theirs = iqm_ci(reference[condition]) if condition in reference else (np.nan,) * 3
            against = separated(theirs, ours) if condition in reference else "-"
            against = {"above": "fewer steps", "below": "more steps"}.get(against, against)
            line += f" {format_ci(ours, ',.0f')} | {format_ci(theirs, ',.0f')} | {against} |"
        lines.append(line)
    told = ", ".join(f"{verdict} on {len(names)}" for verdict, names in sorted(counts.items()))
    return "\n".join(lines) + f"\n\n\"D = 0.5-0.7 is best\" over {len(scores)} conditions: {told}."


def plot_bars(scores, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 3.5), sharey=True)
    width = 0.8 / len(scores)
    colours = distinct_colours(sorted(scores))  # 12 conditions: the default colour cycle repeats after 10
    for panel, (ax, unit) in enumerate(zip(axes, ("wall-clock seconds", "env steps"))):
        for i, (condition, by_d) in enumerate(sorted(scores.items())):
            ds = np.array(sorted(by_d))
            stats = np.array([iqm_ci(by_d[d][panel]) for d in ds])
            errors = np.nan_to_num(np.abs(stats[:, 1:].T - stats[:, 0]))
            ax.bar(np.arange(len(ds)) + (i - (len(scores) - 1) / 2) * width, stats[:, 0], width, yerr=errors,
                   capsize=2, label=condition, color=colours[condition])
            ax.set_xticks(np.arange(len(ds)), [f"{d:.1f}" for d in ds])
        ax.set(xlabel="target S-ratio D", title=f"success x (1 - T / T_slowest), T in {unit}")
    axes[0].set_ylabel("M (IQM over seeds, 95% CI)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not over them
    return save_figure(fig, os.path.join(out_dir, "sratio-metric.png"))


def report(runs, threshold, budget, out_dir=None, draw=True) -> str:
    """Markdown tables (one per condition) and, with `out_dir`, the bar chart (drawn only with `draw`)."""
    table = sweep_table(runs, budget)
    if not table:
        return "(no meher.py runs with random failures: no S-ratio table)"
    pct = f"{threshold:.0%}"
    scores, parts = {}, []
    for condition, curves_by_d in sorted(table.items()):
        scores[condition] = metric(curves_by_d, threshold)
        parts.append(f"{condition}\n\n| D | seeds | reached {pct} | M, T in env steps | M, T in seconds "
                     f"| final success |\n|-|-|-|-|-|-|")
        for d, (by_seconds, by_steps, final, seconds, _) in sorted(scores[condition].items()):
            parts[-1] += (f"\n| {d:.1f} | {len(final)} | {int((~np.isnan(seconds)).sum())}/{len(final)} "
                          f"| {format_ci(iqm_ci(by_steps), '.2f')} | {format_ci(iqm_ci(by_seconds), '.2f')} "
                          f"| {format_ci(iqm_ci(final), '.2f')} |")
    if out_dir:
        chart = plot_bars(scores, out_dir) if draw else "sratio-metric.png"
        parts.append(f"![]({os.path.basename(chart)})")
    reference = defaultdict(list)  # PPO-HER's env steps to the threshold, per condition
    for run in runs:
        outcome = run_outcome(run, TAG, threshold, budget) if run.script == "ppo_her" else None
        if outcome is not None:
            reference[run.condition].append(outcome[1])
    parts += [f"Is D = 0.5-0.7 best? M with T in env steps; PPO-HER's env steps to {pct} from the experiment's "
              f"ppo_her.py runs (a run that never got there counts at the budget). Separated: the 95% intervals do "
              f"not overlap. At {HOLDS_AT} seeds or more with the best IQM in 0.5-0.7, \"holds\" needs the "
              f"band's best separated above every D outside the band, \"holds against 0 and 1\" above D = 0 and "
              f"D = 1 (the neighbours' intervals overlap it); \"does not hold\": a D outside the band is "
              f"separated above it.", verdict_table(scores, reference, budget, 1, pct),
              "The same with T in wall-clock seconds (two runs shared the machine throughout):",
              verdict_table(scores, {}, budget, 0, pct)]
    return "\n\n".join(parts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the sweep's log folder, e.g. experiments/meher-sratio-sweep-fast")
    parser.add_argument("--threshold", type=float, default=0.9, help="success level that defines T")
    parser.add_argument("--budget", type=int, default=10**12, help="use each run up to this env step")
    parser.add_argument("--out", default=None, help="folder for the bar chart")
    args = parser.parse_args()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    print(report(load_runs(args.folder), args.threshold, args.budget, args.out))
