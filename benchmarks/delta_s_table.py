"""The SHER paper's Table 1 from our logs: mean delta_S = |S_train - S_test| (its eq. (17)) over a run's epochs,
one row per method, one column per environment, averaged over seeds (the number of seeds in brackets), as the
paper reports it. Compare methods only over the same budget: every run is cut at the budget. Several experiment
folders give one table (each task's runs to their own length where no budget is given).

    python benchmarks/delta_s_table.py experiments/sher-vs-ddpg-push --budget 640000
    python benchmarks/delta_s_table.py experiments/off-policy-fetch-reach experiments/sher-vs-ddpg-push \
        experiments/sher-vs-ddpg-hand
"""
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_logs import table_from_command_line  # noqa: E402

TAG = "stability/delta_s"
SHORT = {"FetchReach": "FReach", "FetchPush": "FPush", "FetchPickAndPlace": "FPandP", "FetchSlide": "FSlide",
         "HandReach": "HReach", "HandManipulateEgg": "HEgg", "HandManipulateBlock": "HBlock",
         "HandManipulatePen": "HPen"}


def mean_delta_s(runs, budget=10**12) -> dict:
    """{(method, env): [mean delta_S of each run over its epochs up to `budget`]}"""
    table = defaultdict(list)
    for run in runs:
        curve = run.scalar(TAG)
        if curve is None or not len(curve.until(budget).values):
            continue
        env_id = run.env_id or run.flag("env-id", "")
        table[run.method, SHORT.get(env_id.split("-")[0], env_id)].append(float(np.mean(curve.until(budget).values)))
    return table


def delta_s_table(runs, budget=10**12, methods=None) -> str:
    table = mean_delta_s(runs, budget)
    if not table:
        return f"(no {TAG} in these runs: no delta_S table)"
    methods = [m for m in (methods or sorted({m for m, _ in table})) if any(k[0] == m for k in table)]
    envs = sorted({env for _, env in table})
    lines = ["| method | " + " | ".join(envs) + " |", "|-|" + "-|" * len(envs)]
    for method in methods:
        cells = [f"{np.mean(table[method, env]):.3f} ({len(table[method, env])})" if (method, env) in table else "-"
                 for env in envs]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    table_from_command_line(__doc__.splitlines()[0], "experiments/sher-vs-ddpg-push", delta_s_table)
