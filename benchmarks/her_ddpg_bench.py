"""Benchmarks of algorithms/her_ddpg.py; prints `name value` lines.

    python benchmarks/her_ddpg_bench.py            # both parts (about 3 minutes on 2 cores)
    python benchmarks/her_ddpg_bench.py --only reach
    python benchmarks/her_ddpg_bench.py --only throughput
    python benchmarks/her_ddpg_bench.py --script sher --only reach   # the same parts for algorithms/sher.py

(a) FetchReach-v4 with the default flags and seed 1: env steps and seconds (the script's own clock, started
    after the envs are made) until the first epoch whose test success is >= 0.95, and the final test success.
(b) FetchPush-v4 throughput with the default set-up (16 async envs, batch 2048): training env steps per second
    of the training loop (rollouts + updates; test episodes switched off) against the raw speed of the same
    vector env stepping random actions, reset every 50 steps as the rollouts do.
Timings depend on what else runs on the machine: run it alone.
"""

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "algorithms" / "her_ddpg.py"
PROGRESS = re.compile(r"epoch\s+(\d+)\s+step\s+(\d+)/\d+\s+train success (\S+)\s+test success (\S+)\s+time\s+(\S+)s")


def run_script(flags: list[str], workdir: str) -> tuple[list[tuple], float]:
    """Run her_ddpg.py; returns its progress lines as (epoch, step, train, test, seconds) and the wall-clock."""
    start = time.time()
    proc = subprocess.run([sys.executable, str(SCRIPT), *flags], cwd=workdir, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"{SCRIPT.name} {' '.join(flags)} failed:\n{proc.stderr[-2000:]}")
    rows = [(int(m[1]), int(m[2]), float(m[3]), float(m[4]), float(m[5])) for m in PROGRESS.finditer(proc.stdout)]
    return rows, wall


def bench_reach(workdir: str) -> None:
    rows, wall = run_script(["--env-id", "FetchReach-v4", "--seed", "1"], workdir)
    hit = next((row for row in rows if row[3] >= 0.95), None)
    print(f"fetchreach_steps_to_0.95 {hit[1] if hit else 'never'}")
    print(f"fetchreach_seconds_to_0.95 {hit[4] if hit else 'never'}")
    print(f"fetchreach_final_test_success {rows[-1][3]}")
    print(f"fetchreach_final_step {rows[-1][1]}")
    print(f"fetchreach_process_wall_s {wall:.1f}")


def bench_throughput(workdir: str, steps: int = 4000) -> None:
    spec = importlib.util.spec_from_file_location("her_ddpg", SCRIPT)
    her_ddpg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(her_ddpg)

    rows, _ = run_script(["--env-id", "FetchPush-v4", "--seed", "1", "--total-timesteps", str(steps),
                          "--n-cycles", "1000", "--n-test-rollouts", "1"], workdir)
    train_sps = rows[-1][1] / rows[-1][4]

    args = her_ddpg.Args(env_id="FetchPush-v4")
    her_ddpg.fill_task_defaults(args)
    envs = her_ddpg.make_goal_env(args.env_id, args.num_envs, restart_finished=False)
    T = her_ddpg.task_of(args, envs).horizon
    envs.action_space.seed(1)
    envs.reset(seed=1)
    start, taken = time.time(), 0
    while taken < steps:
        envs.reset()
        for _ in range(T):
            envs.step(envs.action_space.sample())
        taken += args.num_envs * T
    sim_sps = taken / (time.time() - start)
    envs.close()
    print(f"fetchpush_num_envs {args.num_envs}")
    print(f"fetchpush_train_sps {train_sps:.0f}")
    print(f"fetchpush_sim_sps {sim_sps:.0f}")
    print(f"train_over_sim {train_sps / sim_sps:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["reach", "throughput"], help="run one part only")
    parser.add_argument("--script", default="her_ddpg", help="benchmark algorithms/<script>.py instead (e.g. sher)")
    cli = parser.parse_args()
    SCRIPT = ROOT / "algorithms" / f"{cli.script}.py"
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory() as workdir:  # the runs/ folders of the benchmark runs go here
        if cli.only in (None, "reach"):
            bench_reach(workdir)
        if cli.only in (None, "throughput"):
            bench_throughput(workdir)
