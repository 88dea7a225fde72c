"""Benchmarks of algorithms/her_ddpg.py; prints `name value` lines.

    python benchmarks/her_ddpg_bench.py            # both parts (about 3 minutes on 2 cores)
    python benchmarks/her_ddpg_bench.py --only reach
    python benchmarks/her_ddpg_bench.py --only throughput
    python benchmarks/her_ddpg_bench.py --script sher --only reach   # the same parts for algorithms/sher.py
    python benchmarks/her_ddpg_bench.py --only layout --env-id FetchPickAndPlace-v4   # (c), 6-10 minutes

(a) FetchReach-v4 with the default flags and seed 1: env steps and seconds (the script's own clock, started
    after the envs are made) until the first epoch whose test success is >= 0.95, and the final test success.
(b) FetchPush-v4 throughput with the default set-up (16 async envs, batch 2048): training env steps per second
    of the training loop (rollouts + updates; test episodes switched off) against the raw speed of the same
    vector env stepping random actions, reset every 50 steps as the rollouts do.
(c) How to fill the machine's 2 cores with a grid of long runs, measured side by side in one command: one run with
    2 torch threads alone, then two runs (seeds 1 and 2) at once with 1 thread each, as the experiment runner
    starts them (OMP_NUM_THREADS and --torch-threads). Each run trains one epoch (--steps env steps, test
    episodes included) from the script's own clock; the figure is env steps per second of the whole machine, and
    the grid finishes sooner with the layout whose figure is higher. Only with --only layout.
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
    return run_side_by_side([flags], workdir)[0]


def run_side_by_side(flag_lists: list[list[str]], workdir: str, threads: int | None = None) -> list[tuple]:
    """Run the script once per flag list, all at once (each with `threads` BLAS threads when given); returns each
    run's progress lines and wall-clock as run_script does."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    start = time.time()
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), *flags], cwd=workdir, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for flags in flag_lists]
    results = []
    for flags, proc in zip(flag_lists, procs):
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"{SCRIPT.name} {' '.join(flags)} failed:\n{stderr[-2000:]}")
        rows = [(int(m[1]), int(m[2]), float(m[3]), float(m[4]), float(m[5])) for m in PROGRESS.finditer(stdout)]
        results.append((rows, time.time() - start))
    return results


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


def bench_layout(workdir: str, env_id: str, steps: int) -> None:
    cores = 2
    flags = ["--env-id", env_id, "--total-timesteps", str(steps)]
    alone = run_side_by_side([[*flags, "--seed", "1", "--torch-threads", str(cores)]], workdir, cores)
    pair = run_side_by_side([[*flags, "--seed", str(seed), "--torch-threads", "1"] for seed in (1, 2)], workdir, 1)
    alone_sps = alone[0][0][-1][1] / alone[0][0][-1][4]
    pair_sps = sum(rows[-1][1] for rows, _ in pair) / max(rows[-1][4] for rows, _ in pair)
    print(f"layout_env_id {env_id}")
    print(f"layout_steps_per_run {steps}")
    print(f"layout_{cores}cpus_x1_machine_sps {alone_sps:.0f}")
    print(f"layout_1cpu_x{cores}_machine_sps {pair_sps:.0f}")
    print(f"layout_1cpu_x{cores}_over_{cores}cpus_x1 {pair_sps / alone_sps:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["reach", "throughput", "layout"], help="run one part only")
    parser.add_argument("--script", default="her_ddpg", help="benchmark algorithms/<script>.py instead (e.g. sher)")
    parser.add_argument("--env-id", default="FetchPickAndPlace-v4", help="(c)'s task")
    parser.add_argument("--steps", type=int, default=40_000, help="(c)'s env steps per run (one Fetch epoch)")
    cli = parser.parse_args()
    if cli.steps < 1:
        parser.error(f"--steps {cli.steps}: must be at least 1")
    SCRIPT = ROOT / "algorithms" / f"{cli.script}.py"
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory() as workdir:  # the runs/ folders of the benchmark runs go here
        if cli.only in (None, "reach"):
            bench_reach(workdir)
        if cli.only in (None, "throughput"):
            bench_throughput(workdir)
        if cli.only == "layout":
            bench_layout(workdir, cli.env_id, cli.steps)
