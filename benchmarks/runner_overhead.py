"""What the experiment engine costs: the same runs through `experiments.py run` (local Ray) and as plain
subprocesses started N at a time, one after the other, on this machine.

    python benchmarks/runner_overhead.py                                # all 24 runs of ppo-her-fast
    python benchmarks/runner_overhead.py --seeds 1 --steps 20000        # a small subset, a few minutes

Prints `name value` lines: the number of runs, each way's wall-clock seconds (the engine's includes starting and
stopping Ray and shipping the logs back) and runs per hour, and engine_overhead = engine seconds / plain seconds - 1.
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
import experiments  # noqa: E402
from run_logs import MARKER  # noqa: E402


def run_plain(argv: list[str], workdir: Path) -> tuple[int, float]:
    """The command line as a user types it in a terminal: `python algorithms/<script>.py ...`, from `workdir`;
    returns its exit code and seconds."""
    workdir.mkdir(parents=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [sys.executable, str(experiments.ROOT / argv[1]), *argv[2:]]
    started = time.time()
    code = subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return code, time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="ppo-her-fast", help="the experiment whose runs are timed")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default: the definition's)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default: the budget)")
    parser.add_argument("--parallel", type=int, default=os.cpu_count(), help="plain subprocesses at a time")
    args = parser.parse_args()
    experiment = experiments.find(experiments.check_definitions(experiments.EXPERIMENTS), args.experiment)
    if args.steps:
        experiment = replace(experiment, budget=args.steps)
    runs = experiment.runs(args.seeds)
    print(f"# {experiment.name}: {len(runs)} runs of {experiment.budget:,} env steps; engine: local Ray with "
          f"{os.cpu_count()} CPUs, 1 per run; plain: {args.parallel} at a time", flush=True)
    with tempfile.TemporaryDirectory(prefix="runner-overhead-") as temp:
        started = time.time()
        status = experiments.run_experiment(experiment, args.seeds, cpus_per_run=1, logs=Path(temp) / "engine")
        engine = time.time() - started
        if status != 0:
            sys.exit(f"error: the engine's runs failed (exit {status})")
        started = time.time()
        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda run: run_plain(run.argv(1), Path(temp) / "plain" / run.run_id), runs))
        plain = time.time() - started
        failed = [shlex.join(run.argv(1)) for run, (code, _) in zip(runs, results) if code != 0]
        if failed:
            sys.exit(f"error: {len(failed)} plain runs failed, e.g. {failed[0]}")
        # the seconds each script itself ran (the engine's as its task timed the subprocess): what the engine adds
        # inside runs (a slower script) against what it adds between them (starting Ray, tasks, shipping logs)
        engine_scripts = sum(json.loads(path.read_text())["wall_seconds"]
                             for path in (Path(temp) / "engine" / experiment.name).glob(f"*/{MARKER}"))
        plain_scripts = sum(seconds for _, seconds in results)
    print(f"runs {len(runs)}")
    print(f"engine_wall_s {engine:.1f}")
    print(f"plain_wall_s {plain:.1f}")
    print(f"engine_runs_per_hour {len(runs) * 3600 / engine:.1f}")
    print(f"plain_runs_per_hour {len(runs) * 3600 / plain:.1f}")
    print(f"engine_overhead {engine / plain - 1:+.3f}")
    print(f"engine_script_s_sum {engine_scripts:.1f}")
    print(f"plain_script_s_sum {plain_scripts:.1f}")
    print(f"script_overhead {engine_scripts / plain_scripts - 1:+.3f}")


if __name__ == "__main__":
    main()
