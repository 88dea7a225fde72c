"""What the experiment engine costs: the same runs through `experiments.py run` (local Ray) and as plain
subprocesses started N at a time, one way after the other, on this machine.

    python benchmarks/runner_overhead.py                                # all 24 runs of ppo-her-fast
    python benchmarks/runner_overhead.py --seeds 1 --steps 20000        # a small subset, a few minutes

Prints `name value` lines: the number of runs, each way's wall-clock seconds (the engine's includes starting and
stopping Ray and shipping the logs back) and runs per hour, engine_overhead = engine seconds / plain seconds - 1,
and the same for the seconds the scripts themselves ran (summed over runs). Each figure is the mean over --rounds
rounds; the rounds alternate which way goes first (engine-plain, plain-engine, ...), so that a machine getting
faster or slower during the benchmark does not favour either way.
Both ways run the identical command lines, one CPU and one torch thread each, each run in a fresh temporary folder,
as many at a time as the engine would (this machine's CPUs, or --parallel). Timings depend on what else runs:
run it on a quiet machine.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from definitions import EXPERIMENTS, ROOT, check_definitions, find  # noqa: E402
from ray_runner import run_experiment  # noqa: E402
from run_logs import MARKER  # noqa: E402


def run_plain(argv: list[str], workdir: Path) -> tuple[int, float]:
    """The command line as a user types it in a terminal: `python algorithms/<script>.py ...`, from `workdir`;
    returns its exit code and seconds."""
    workdir.mkdir(parents=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [sys.executable, str(ROOT / argv[1]), *argv[2:]]
    started = time.time()
    code = subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return code, time.time() - started


def time_engine(experiment, seeds, folder: Path) -> tuple[float, float]:
    """Wall-clock seconds of `run` on a local Ray instance, and the sum of the seconds its scripts ran (as each
    task timed its subprocess)."""
    started = time.time()
    status = run_experiment(experiment, seeds, cpus_per_run=1, logs=folder)
    wall = time.time() - started
    if status != 0:
        sys.exit(f"error: the engine's runs failed (exit {status})")
    return wall, sum(json.loads(path.read_text())["wall_seconds"]
                     for path in (folder / experiment.name).glob(f"*/{MARKER}"))


def time_plain(runs, parallel: int, folder: Path) -> tuple[float, float]:
    """Wall-clock seconds of the same command lines as plain subprocesses, `parallel` at a time, and their sum."""
    started = time.time()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda run: run_plain(run.argv(1), folder / run.run_id), runs))
    wall = time.time() - started
    failed = [shlex.join(run.argv(1)) for run, (code, _) in zip(runs, results) if code != 0]
    if failed:
        sys.exit(f"error: {len(failed)} plain runs failed, e.g. {failed[0]}")
    return wall, sum(seconds for _, seconds in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="ppo-her-fast", help="the experiment whose runs are timed")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default: the definition's)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default: the budget)")
    parser.add_argument("--parallel", type=int, default=os.cpu_count(), help="plain subprocesses at a time")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of both ways, in the order engine-plain, plain-engine, ... (default: %(default)s)")
    args = parser.parse_args()
    if args.rounds < 1:
        sys.exit("error: --rounds must be at least 1")
    experiment = find(check_definitions(EXPERIMENTS), args.experiment)
    if args.steps:
        experiment = replace(experiment, budget=args.steps)
    runs = experiment.runs(args.seeds)
    print(f"# {experiment.name}: {len(runs)} runs of {experiment.budget:,} env steps, {args.rounds} rounds; engine: "
          f"local Ray with {os.cpu_count()} CPUs, 1 per run; plain: {args.parallel} at a time", flush=True)
    timings = {"engine": [], "plain": []}  # (wall, sum of script seconds) per pass
    with tempfile.TemporaryDirectory(prefix="runner-overhead-") as temp:
        for round_ in range(args.rounds):
            # alternating which way goes first cancels a machine that drifts faster or slower during the benchmark
            for way in ("engine", "plain") if round_ % 2 == 0 else ("plain", "engine"):
                folder = Path(temp) / f"{way}-{round_}"
                timings[way].append(time_engine(experiment, args.seeds, folder) if way == "engine" else
                                    time_plain(runs, args.parallel, folder))
                print(f"# round {round_ + 1} {way}: {timings[way][-1][0]:.1f} s", flush=True)
    engine, plain = (sum(wall for wall, _ in timings[way]) / args.rounds for way in ("engine", "plain"))
    engine_scripts, plain_scripts = (sum(s for _, s in timings[way]) / args.rounds for way in ("engine", "plain"))
    print(f"runs {len(runs)}")
    print(f"rounds {args.rounds}")
    print(f"engine_wall_s {engine:.1f}")
    print(f"plain_wall_s {plain:.1f}")
    print(f"engine_runs_per_hour {len(runs) * 3600 / engine:.1f}")
    print(f"plain_runs_per_hour {len(runs) * 3600 / plain:.1f}")
    print(f"engine_overhead {engine / plain - 1:+.3f}")
    # what the engine adds inside runs (a slower script) against between them (starting Ray, tasks, shipping logs)
    print(f"engine_script_s_sum {engine_scripts:.1f}")
    print(f"plain_script_s_sum {plain_scripts:.1f}")
    print(f"script_overhead {engine_scripts / plain_scripts - 1:+.3f}")


if __name__ == "__main__":
    main()
