"""The SHER paper's Table 1 from our logs: mean delta_S = |S_train - S_test| (its eq. (17)) over a run's epochs,
one row per task and method, the interquartile mean over seeds with a 95% bootstrap interval. A method that
learns sooner spends fewer epochs climbing, where delta_S is largest, so a second column averages each run over
only the epochs whose test success lies in [0.1, 0.9]: delta_S while learning, whatever the speed. Another averages
it over the epochs from the first whose test success reaches 0.9: the gap a method keeps once it succeeds (exploration
that only the training episodes carry keeps S_train below S_test). The last column is the paper's own value for the
method and task, where it has one. Compare methods only over the same budget: every run is cut at the budget.
Several experiment folders give one table (each task's runs to their own length where no budget is given).

    python benchmarks/delta_s_table.py experiments/sher-vs-ddpg-push --budget 640000
    python benchmarks/delta_s_table.py experiments/off-policy-fetch-reach experiments/sher-vs-ddpg-push \
        experiments/sher-vs-ddpg-hand
"""
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_results import format_ci, iqm, iqm_ci  # noqa: E402
from run_logs import table_from_command_line  # noqa: E402

TAG = "stability/delta_s"
TEST_TAG = "eval/success_rate"
BAND = (0.1, 0.9)  # test success while a run is learning; from BAND[1] on it has succeeded
# The SHER paper's Table 1 (mean delta_S per task; HER is DDPG + HER, SHER is SAC + HER at alpha 0.05), printed
# beside our runs of the same method: her_ddpg.py, and sher.py at its default alpha 0.05
PAPER_TABLE_1 = {
    "HER": dict(FReach=0.021, FPush=0.035, FPandP=0.156, FSlide=0.218, HReach=0.195, HEgg=0.145, HBlock=0.152,
                HPen=0.074),
    "SHER": dict(FReach=0.011, FPush=0.014, FPandP=0.079, FSlide=0.116, HReach=0.137, HEgg=0.098, HBlock=0.093,
                 HPen=0.059),
}
PAPER_METHOD = {"her_ddpg": "HER", "sher": "SHER", "sher_alpha0.05": "SHER"}  # our method labels -> Table 1's rows
SHORT = {"FetchReach": "FReach", "FetchPush": "FPush", "FetchPickAndPlace": "FPandP", "FetchSlide": "FSlide",
         "HandReach": "HReach", "HandManipulateEgg": "HEgg", "HandManipulateBlock": "HBlock",
         "HandManipulatePen": "HPen"}


def mean_delta_s(runs, budget=10**12) -> dict:
    """{(method, task): [(mean delta_S of each run over its epochs up to `budget`, the same over its epochs whose
    test success is in BAND (nan if none), how many those are, the same from its first epoch whose test success
    reaches BAND[1] (nan if none))]}"""
    table = defaultdict(list)
    for run in runs:
        curve = run.scalar(TAG)
        delta_s = curve.until(budget) if curve is not None else None
        if delta_s is None or not len(delta_s.values):
            continue
        test = run.scalar(TEST_TAG)
        test_at = dict(zip(test.steps, test.values)) if test is not None else {}
        success = np.array([test_at.get(step, np.nan) for step in delta_s.steps])
        learning = (success >= BAND[0]) & (success <= BAND[1])
        in_band = float(np.mean(delta_s.values[learning])) if learning.any() else np.nan
        succeeded = np.cumsum(success >= BAND[1]) > 0
        after = float(np.mean(delta_s.values[succeeded])) if succeeded.any() else np.nan
        env_id = run.env_id or run.flag("env-id", "")
        task = SHORT.get(env_id.split("-")[0], env_id)
        table[run.method, task].append((float(np.mean(delta_s.values)), in_band, int(learning.sum()), after))
    return table


def iqm_of_reached(values) -> str:
    """IQM [95% CI] of the runs with a value (nan: the run never got there), and how many those are"""
    reached = values[~np.isnan(values)]
    return f"{format_ci(iqm_ci(reached), '.3f')} ({len(reached)})" if len(reached) else "- (0)"


def delta_s_table(runs, budget=10**12, methods=None) -> str:
    table = mean_delta_s(runs, budget)
    if not table:
        return f"(no {TAG} in these runs: no delta_S table)"
    methods = [m for m in (methods or sorted({m for m, _ in table})) if any(k[0] == m for k in table)]
    tasks = sorted({task for _, task in table})
    lines = [f"| task | method | seeds | mean delta_S | mean delta_S while test success is in [{BAND[0]}, {BAND[1]}] "
             f"| such epochs per run | mean delta_S from the first epoch at test success {BAND[1]} "
             "| the paper's Table 1 |", "|-|-|-|-|-|-|-|-|"]
    for task in tasks:
        for method in [m for m in methods if (m, task) in table]:
            whole, in_band, epochs, after = np.array(table[method, task], float).T
            paper_value = PAPER_TABLE_1.get(PAPER_METHOD.get(method), {}).get(task)
            paper = "-" if paper_value is None else f"{paper_value:.3f}"
            lines.append(f"| {task} | {method} | {len(whole)} | {format_ci(iqm_ci(whole), '.3f')} "
                         f"| {iqm_of_reached(in_band)} | {iqm(epochs):.1f} | {iqm_of_reached(after)} | {paper} |")
    return "\n".join(lines)


if __name__ == "__main__":
    table_from_command_line(__doc__.splitlines()[0], "experiments/sher-vs-ddpg-push", delta_s_table)
