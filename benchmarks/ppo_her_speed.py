"""PPO-HER speed, printed as `name value` lines.

1. Throughput with the paper's default hyperparameters and HER on: end-to-end env steps/s (the script's
   charts/SPS) and the seconds per 2,048-step iteration spent in rollout, relabelling and the PPO update.
2. Wall-clock to 90% success on random prey / random spawn: the default configuration and the fast one
   (FAST below), run one after the other in this command, and their ratio.

    python benchmarks/ppo_her_speed.py            # both parts (about 10 minutes here)
    python benchmarks/ppo_her_speed.py --part throughput
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "algorithms", "ppo_her.py")
FAST = ["--hidden-size", "64", "--num-envs", "32", "--num-steps", "64", "--minibatch-size", "256"]


def run(flags, workdir):
    """Run ppo_her.py in `workdir`; return its TensorBoard scalars and the run's wall-clock seconds."""
    started = time.time()
    subprocess.run([sys.executable, SCRIPT, *flags], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    seconds = time.time() - started
    events = EventAccumulator(glob.glob(os.path.join(workdir, "runs", "*"))[-1], size_guidance={"scalars": 0})
    events.Reload()
    return events, seconds


def scalar(events, tag):
    return np.array([s.value for s in events.Scalars(tag)])


def seconds_to_success(events, threshold):
    start = events.FirstEventTimestamp()
    hits = [s.wall_time - start for s in events.Scalars("charts/success_rate") if s.value >= threshold - 1e-6]  # float32 logs
    return hits[0] if hits else float("nan")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["throughput", "time-to-learn", "all"], default="all")
    parser.add_argument("--threads", default="1", help="torch threads (OMP_NUM_THREADS) for the runs")
    parser.add_argument("--seed", default="1")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = args.threads
    print(f"# torch threads {args.threads}, seed {args.seed}")
    if args.part in ("throughput", "all"):
        with tempfile.TemporaryDirectory() as workdir:
            events, _ = run(["--total-timesteps", "20480", "--seed", args.seed], workdir)
        print(f"default_her_sps {scalar(events, 'charts/SPS')[-1]:.0f}")
        for part in ("rollout", "relabel", "update"):
            print(f"default_{part}_seconds_per_iteration {np.median(scalar(events, f'time/{part}_seconds')):.3f}")
    if args.part in ("time-to-learn", "all"):
        common = ["--prey", "random", "--spawn", "random", "--seed", args.seed, "--stop-at-success", "0.9"]
        seconds = {}
        for name, flags in (("default", []), ("fast", FAST)):
            with tempfile.TemporaryDirectory() as workdir:
                events, _ = run(common + flags, workdir)
            steps = events.Scalars("charts/success_rate")[-1].step
            seconds[name] = seconds_to_success(events, 0.9)
            print(f"{name}_steps_to_0.9 {steps}")
            print(f"{name}_seconds_to_0.9 {seconds[name]:.1f}")
        print(f"fast_speedup_to_0.9 {seconds['default'] / seconds['fast']:.1f}")
