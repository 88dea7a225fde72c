"""Experiments as code: every experiment behind the docs' results is one definition, run on Ray and reported.

    python benchmarks/experiments.py list
    python benchmarks/experiments.py run NAME [--seeds N] [--methods M1,M2] [--conditions C1,C2] [--address ADDR]
                                              [--cpus-per-run C] [--dry-run] [--logs DIR]
    python benchmarks/experiments.py report NAME [--logs DIR] [--results DIR]
    python benchmarks/experiments.py check

The definitions (one per paper figure or study) are in benchmarks/definitions.py, the Ray runner in
benchmarks/ray_runner.py, the report in benchmarks/report.py. `list` shows each experiment's runs, env-step budget
and expected hours. `run` starts every run that has not finished, as Ray tasks on this machine (listening on
127.0.0.1 only) or on the cluster at --address, and keeps each finished run in experiments/NAME/<run id>/: its
record (scalars.csv.gz), finished.json and console.log. The finished runs of the committed experiments are in the
repository, so on a fresh clone `run NAME` of one of them has nothing left to do; `run NAME --logs DIR` runs it
again in another folder. `report` writes the IQM table (95% bootstrap intervals across seeds) and the learning
curves of the records to docs/results/NAME/, naming the runs that have no record and the code versions it pools.
`check` regenerates every committed docs/results/*/table.md from the committed records and fails, naming the
table, on any difference and on any table it cannot check, except those waiting for their experiment's records
(report.WAITING). See docs/experiments.md.
"""
import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
if __name__ == "__main__":  # a definitions file's `from experiments import Experiment` gets this very module
    sys.modules.setdefault("experiments", sys.modules["__main__"])
from definitions import (EXPERIMENTS, LOGS, RESULTS, BadInput, Experiment, Run, check_definitions,  # noqa: E402,F401
                         find, load_definitions, sweep)
from ray_runner import run_experiment  # noqa: E402
from report import check_tables, write_report  # noqa: E402


class OneLineErrors(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message}\n")


def positive(flag: str):
    """An argparse type: an integer of at least 1; otherwise a one-line error naming `flag`."""
    def parse(text: str) -> int:
        if not text.lstrip("-").isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"must be an integer of at least 1, not {text}")
        return int(text)
    return parse


def list_experiments(experiments: dict) -> None:
    width = max(map(len, experiments))
    for e in experiments.values():
        hours = f"~{e.hours:g} h" if e.hours else "? h"
        print(f"{e.name:<{width}}  {len(e.runs()):>4} runs  {e.budget:>9,} steps  {hours:>7}  {e.figure}")


def check(experiments: dict, logs, results) -> int:
    """Fails (1) on a table that differs from what the records give and on one it cannot check, unless that table
    is listed as waiting for its experiment (report.WAITING)."""
    same, different, unchecked, waiting = check_tables(experiments, logs, results)
    for table, why in waiting:
        print(f"waiting for its experiment: {table}: {why}")
    for table, why in different:
        print(f"differs: {table}: {why}", file=sys.stderr)
    for table, why in unchecked:
        print(f"not checked: {table}: {why}", file=sys.stderr)
    print(f"{len(same)} tables regenerate from the records, {len(different)} differ, {len(unchecked)} not checked, "
          f"{len(waiting)} waiting for their experiment")
    return 1 if different or unchecked else 0


def main(argv=None) -> int:
    parser = OneLineErrors(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 2)[2],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    common = OneLineErrors(add_help=False)
    common.add_argument("--definitions", metavar="FILE", help="a Python file whose EXPERIMENTS list adds definitions")
    common.add_argument("--logs", default=str(LOGS), metavar="DIR", help="where run folders go (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrors)
    commands.add_parser("list", parents=[common], help="one line per experiment: name, runs, budget, hours, figure")
    run = commands.add_parser(
        "run", parents=[common], help="run every run of NAME that has not finished",
        description="Runs every run of NAME that has no finished folder under --logs. The committed experiments' "
                    "finished runs are in the repository: on a fresh clone `run NAME` of one of them does nothing; "
                    "`run NAME --logs DIR` runs it again in DIR.")
    run.add_argument("name")
    run.add_argument("--seeds", type=positive("--seeds"), default=None, metavar="N",
                     help="seeds 1..N (default: the definition's)")
    run.add_argument("--address", default=None, help="a Ray cluster: host:port or auto (default: this machine)")
    run.add_argument("--cpus-per-run", type=positive("--cpus-per-run"), default=None, metavar="C",
                     help="CPUs and torch threads of each run (default: the definition's)")
    run.add_argument("--methods", type=lambda text: text.split(","), default=None, metavar="M1,M2",
                     help="run only these of the definition's methods (default: all)")
    run.add_argument("--conditions", type=lambda text: text.split(","), default=None, metavar="C1,C2",
                     help="run only these of the definition's conditions (default: all)")
    run.add_argument("--dry-run", action="store_true", help="print the command lines; run nothing")
    report = commands.add_parser("report", parents=[common], help="tables and curves of NAME's finished runs")
    report.add_argument("name")
    report.add_argument("--results", default=str(RESULTS), metavar="DIR",
                        help="where table.md and the PNGs go, in DIR/NAME (default: %(default)s)")
    checking = commands.add_parser("check", parents=[common],
                                   help="regenerate every DIR/*/table.md from the records; fail on a difference")
    checking.add_argument("--results", default=str(RESULTS), metavar="DIR",
                          help="the committed tables (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "list" or getattr(args, "dry_run", False):  # no Ray here: `| head` may close the pipe
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        experiments = load_definitions(args.definitions)
        if args.command == "list":
            list_experiments(experiments)
            return 0
        if args.command == "check":
            return check(experiments, args.logs, args.results)
        experiment = find(experiments, args.name)
        if args.command == "run":
            return run_experiment(experiment, args.seeds, args.address, args.cpus_per_run, args.logs, args.dry_run,
                                  args.methods, args.conditions)
        print(write_report(experiment, args.logs, args.results, experiments), end="")
        print(f"wrote {Path(args.results) / experiment.name}/")
        return 0
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
