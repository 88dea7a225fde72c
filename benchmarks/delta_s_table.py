"""The SHER paper's Table 1 from our logs: mean delta_S = |S_train - S_test| (its eq. (17)) over a run's epochs,
one row per method, one column per environment, averaged over seeds (the number of seeds in brackets).

A run folder is `{env_id}__{exp_name}__{seed}__{time}`; the method is the exp name up to its first '-'
(her_ddpg-push -> her_ddpg). Compare methods only over the same budget: --max-steps cuts every run there.

    python benchmarks/delta_s_table.py --include push --max-steps 640000
"""
import argparse
import glob
import os
from collections import defaultdict

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SHORT = {"FetchReach": "FReach", "FetchPush": "FPush", "FetchPickAndPlace": "FPandP", "FetchSlide": "FSlide",
         "HandReach": "HReach", "HandManipulateEgg": "HEgg", "HandManipulateBlock": "HBlock",
         "HandManipulatePen": "HPen"}


def mean_delta_s(runs_dir, include, max_steps):
    """{(method, env): [mean delta_S of each run]}"""
    table = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(runs_dir, "*__*__*__*"))):
        env_id, exp_name = os.path.basename(path).split("__")[:2]
        if include and not any(word in exp_name for word in include):
            continue
        events = EventAccumulator(path, size_guidance={"scalars": 0})
        events.Reload()
        if "stability/delta_s" not in events.Tags()["scalars"]:
            continue
        values = [s.value for s in events.Scalars("stability/delta_s") if s.step <= max_steps]
        env = SHORT.get(env_id.split("-")[0], env_id)
        table[(exp_name.split("-")[0], env)].append(float(np.mean(values)))
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="folder of TensorBoard run folders")
    parser.add_argument("--include", nargs="*", default=[], help="only exp names containing one of these")
    parser.add_argument("--max-steps", type=int, default=10**12, help="use the epochs up to this env step")
    args = parser.parse_args()
    table = mean_delta_s(args.runs, args.include, args.max_steps)
    if not table:
        raise SystemExit(f"error: no runs with stability/delta_s under {args.runs}")
    methods = sorted({method for method, _ in table})
    envs = sorted({env for _, env in table})
    print("| method | " + " | ".join(envs) + " |\n|-|" + "-|" * len(envs))
    for method in methods:
        cells = [f"{np.mean(table[method, env]):.3f} ({len(table[method, env])})" if (method, env) in table else "-"
                 for env in envs]
        print(f"| {method} | " + " | ".join(cells) + " |")
