"""The one place that reads experiment logs: finished runs and their scalars, from each run's record.

`python benchmarks/experiments.py run NAME` leaves one folder per run under experiments/NAME/:

    experiments/NAME/<run id>/finished.json     the marker: the run's command, exit code, wall seconds, labels, and
                                                the code that made it (code_sha256, git_commit)
    experiments/NAME/<run id>/scalars.csv.gz    the record: every scalar of the run, a few KB (committed)
    experiments/NAME/<run id>/console.log       what the script printed
    experiments/NAME/<run id>/events.out.tfevents.*   its TensorBoard log (git-ignored: the record replaces it)

A folder without finished.json is not a finished run (a failed run has failed.json instead) and is skipped.
Every analysis tool (plot_results, sratio_metric, iteration_cost, delta_s_table, the report) reads the records
through here; only `write_record` reads TensorBoard logs.

The record is a gzipped CSV with the columns tag, step, value, seconds: one row per point of each scalar, with its
env step, its value (the float32 TensorBoard logged, written as the shortest text that reads back to it) and the
seconds since the run's log was opened (without the pauses between the attempts of a resumed run, to the
microsecond). Scalars logged more often than once per iteration or epoch (per episode: episodic return and
length; her_ddpg / sher losses per cycle) are reduced to their mean per point of the once-per-iteration
`charts/SPS`, at that point's step and seconds; the record's first line names them. No report reads them.

    python benchmarks/run_logs.py record experiments/NAME/<run id> ...   # write the record of a run's events
"""
import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MARKER = "finished.json"
FAILED = "failed.json"
RECORD = "scalars.csv.gz"
TICK = "charts/SPS"  # logged once per PPO iteration and per her_ddpg / sher epoch: the grid of reduced tags
REDUCED = "# reduced to the mean per charts/SPS point:"


@dataclass
class Curve:
    """One scalar of one run: env steps, values, and wall-clock seconds since the run's log was opened."""

    steps: np.ndarray
    values: np.ndarray
    seconds: np.ndarray

    def until(self, max_step: float) -> "Curve":
        """The points at or before `max_step` (compare runs over the same budget)."""
        keep = self.steps <= max_step
        return Curve(self.steps[keep], self.values[keep], self.seconds[keep])


@dataclass
class Run:
    """A finished run: its labels from the experiment definition, its command-line flags, its scalars."""

    run_id: str
    method: str
    condition: str
    seed: int
    script: str
    flags: tuple = ()
    env_id: str = ""
    folder: Path | None = None
    code: str = ""  # the code that made it: finished.json's code_sha256 (its script and envs/)
    commit: str = ""  # and the git commit it was made at
    scalars: dict = field(default=None, repr=False)  # {tag: Curve}, read on first use

    def scalar(self, tag: str) -> Curve | None:
        if self.scalars is None:
            self.scalars = read_record(self.folder)
        return self.scalars.get(tag)

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The value after `--name` in the run's flags (the last one wins, as on a command line)."""
        value = default
        for i, word in enumerate(self.flags[:-1]):
            if word == f"--{name}":
                value = self.flags[i + 1]
        return value

    def has_flag(self, name: str) -> bool:
        return f"--{name}" in self.flags


def read_scalars(folder) -> dict:
    """{tag: Curve} of every scalar in the TensorBoard log in `folder`; the seconds of a resumed run leave out the
    time between its attempts."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if Path(folder).is_dir() and not list(Path(folder).glob("events.out.tfevents.*")):
        return {}  # a run that logged nothing (its record is empty); `folder` may also be one events file
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    start = events.FirstEventTimestamp()
    pauses = pauses_between_attempts(folder)
    curves = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        wall = np.array([p.wall_time for p in points])
        paused = sum((wall >= resumed) * seconds for resumed, seconds in pauses)
        curves[tag] = Curve(np.array([p.step for p in points]), np.array([p.value for p in points], float),
                            wall - start - paused)
    return curves


def pauses_between_attempts(folder) -> list[tuple[float, float]]:
    """(when an attempt began, seconds since the previous one's last event) for every attempt of a resumed run but
    the first: each attempt writes an events file of its own into the same folder."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    files = sorted(Path(folder).glob("events.out.tfevents.*"))
    if len(files) < 2:
        return []
    spans = sorted((times[0], times[-1]) for times in
                   ([event.wall_time for event in EventFileLoader(str(path)).Load()] for path in files) if times)
    return [(begin, max(0.0, begin - end)) for (_, end), (begin, _) in zip(spans, spans[1:])]


def reduced(curves: dict) -> tuple[dict, list]:
    """The curves with every tag that has more points than TICK reduced to its mean per TICK point (the points
    after the last one: at their own last step and seconds); the names of the reduced tags."""
    tick = curves.get(TICK)
    if tick is None:
        return curves, []
    out, names = {}, []
    for tag, curve in curves.items():
        if len(curve.steps) <= len(tick.steps):
            out[tag] = curve
            continue
        names.append(tag)
        slot = np.searchsorted(tick.steps, curve.steps, side="left")  # the first iteration that ends at or after
        steps, values, seconds = [], [], []
        for i in np.unique(slot):
            mine = slot == i
            late = i >= len(tick.steps)
            steps.append(curve.steps[mine][-1] if late else tick.steps[i])
            seconds.append(curve.seconds[mine][-1] if late else tick.seconds[i])
            values.append(curve.values[mine].mean())
        out[tag] = Curve(np.array(steps), np.array(values, np.float32).astype(float), np.array(seconds))
    return out, names


def write_record(folder) -> Path:
    """Writes folder/scalars.csv.gz from the TensorBoard log in `folder` (the same bytes for the same log)."""
    curves, names = reduced(read_scalars(folder))
    text = io.StringIO()
    if names:
        text.write(f"{REDUCED} {' '.join(names)}\n")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["tag", "step", "value", "seconds"])
    for tag in sorted(curves):
        curve = curves[tag]
        for step, value, seconds in zip(curve.steps.tolist(), curve.values.tolist(), curve.seconds.tolist()):
            writer.writerow([tag, int(step), np.float32(value), f"{seconds:.6f}"])
    path = Path(folder) / RECORD
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(text.getvalue().encode())
    return path


def read_record(folder) -> dict:
    """{tag: Curve} from folder/scalars.csv.gz."""
    path = Path(folder) / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{path}: a finished run without its record (write it from its TensorBoard log "
                                f"with `python benchmarks/run_logs.py record {folder}`)")
    with gzip.open(path, "rt") as f:
        rows = [row for row in csv.reader(line for line in f if not line.startswith("#"))][1:]
    columns = {}
    for tag, step, value, seconds in rows:
        columns.setdefault(tag, ([], [], []))
        for column, item in zip(columns[tag], (step, value, seconds)):
            column.append(item)
    return {tag: Curve(np.array(steps, np.int64), np.array(values, np.float32).astype(float),
                       np.array(seconds, float)) for tag, (steps, values, seconds) in columns.items()}


def read_marker(folder) -> dict | None:
    path = Path(folder) / MARKER
    return json.loads(path.read_text()) if path.is_file() else None


def load_runs(experiment_folder, run_ids=None) -> list[Run]:
    """The finished runs under `experiment_folder` (only those in `run_ids`, if given), sorted by run id."""
    runs = []
    for marker_path in sorted(Path(experiment_folder).glob(f"*/{MARKER}")):
        info = json.loads(marker_path.read_text())
        if run_ids is not None and info["run_id"] not in run_ids:
            continue
        runs.append(Run(run_id=info["run_id"], method=info["method"], condition=info["condition"],
                        seed=int(info["seed"]), script=info["script"], flags=tuple(info["flags"]),
                        env_id=info.get("env_id", ""), folder=marker_path.parent,
                        code=info.get("code_sha256") or "", commit=info.get("git_commit") or ""))
    return runs


def first_crossing(curve: Curve, threshold: float) -> tuple[float, float]:
    """(env steps, seconds) of the first point at or above `threshold`; (nan, nan) if there is none."""
    hit = np.flatnonzero(curve.values >= threshold - 1e-6)  # the logs hold float32: 0.9 -> 0.8999999
    return (float(curve.steps[hit[0]]), float(curve.seconds[hit[0]])) if hit.size else (np.nan, np.nan)


def table_from_command_line(description: str, example: str, table) -> None:
    """The command line of an analysis tool: `tool.py FOLDER [FOLDER ...] [--budget N]` prints table(runs, budget)
    of the finished runs of all the folders together."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help=f"an experiment's log folder, e.g. {example}")
    parser.add_argument("--budget", type=int, default=10**12, help="use each run up to this env step")
    args = parser.parse_args()
    runs = []
    for folder in args.folders:
        found = load_runs(folder)
        if not found:
            raise SystemExit(f"error: no finished runs under {folder}")
        runs += found
    print(table(runs, args.budget))


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "record":
        sys.exit("usage: python benchmarks/run_logs.py record RUN_FOLDER [RUN_FOLDER ...]")
    for run_folder in sys.argv[2:]:
        print(write_record(run_folder))
