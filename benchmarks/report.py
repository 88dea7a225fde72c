"""The report: an experiment's table and curves from the records of its finished runs, and the check that every
committed table under docs/results/ is what the committed records give. The statistics are in plot_results.py.

A report never drops runs silently: its header names the runs of the definition (and of the runs it borrows)
that have no record, and the code versions it pools (finished.json's code_sha256, a hash of the run's script and
envs/, with the git commits the runs were made at); a table that pools runs of one script made by several code
versions says so.
"""
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from definitions import LOGS, RESULTS, ROOT, BadInput, Experiment, find  # noqa: E402


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------
def definition_runs(experiment: Experiment, logs: Path, experiments: dict):
    """The finished runs that belong to the current definition (any number of seeds), and the borrowed ones of
    `experiment.compare`, relabelled; how many finished runs in the folder no longer match the definition; and the
    runs of the definition (its seeds) and of the borrowed methods that have no record, as (label, Run)."""
    from run_logs import load_runs

    def matching(source: Experiment, methods: dict) -> tuple[list, int, list]:
        templates = {(r.method, r.condition): r for r in source.runs(seeds=1)}
        loaded = load_runs(Path(logs) / source.name)
        keep = []
        for run in loaded:
            template = templates.get((run.method, run.condition))
            if template and template.condition in experiment.conditions and run.method in methods and \
                    replace(template, seed=run.seed).run_id == run.run_id:
                run.method = methods[run.method]
                keep.append(run)
        found = {run.run_id for run in keep}
        missing = [(methods[r.method], r) for r in source.runs() if r.method in methods
                   and r.condition in experiment.conditions and r.run_id not in found]
        return keep, len(loaded) - len(keep), missing

    runs, stale, missing = matching(experiment, {m: m for m in experiment.methods})
    for name, method, label in experiment.compare:
        borrowed, _, absent = matching(find(experiments, name), {method: label})
        runs += borrowed
        missing += absent
    return runs, stale, missing


def seed_ranges(seeds) -> str:
    """1, 2, 3, 5 -> "seeds 1-3, 5"."""
    seeds, spans = sorted(seeds), []
    for seed in seeds:
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    return f"seed{'s' if len(seeds) > 1 else ''} {text}"


def missing_note(experiment: Experiment, missing: list) -> str:
    """Which runs have no record, per method: "ppo (all 12 conditions, seeds 1-5)"."""
    by_method = {}
    for label, run in missing:
        by_method.setdefault((label, run.experiment), {}).setdefault(run.condition, set()).add(run.seed)
    parts = []
    for (label, source), cells in by_method.items():
        where = f" of `{source}`" if source != experiment.name else ""
        seed_sets = {frozenset(seeds) for seeds in cells.values()}
        if len(seed_sets) == 1:
            conditions = (f"all {len(cells)} conditions" if len(cells) == len(experiment.conditions) > 1
                          else ", ".join(cells))
            parts.append(f"{label}{where} ({conditions}, {seed_ranges(next(iter(seed_sets)))})")
        else:
            parts.append(f"{label}{where} (" + "; ".join(f"{c} {seed_ranges(s)}" for c, s in cells.items()) + ")")
    count = f"{len(missing)} runs of the definition have" if len(missing) > 1 else "1 run of the definition has"
    return f"**Missing: {count} no record, and this table leaves them out**: {'; '.join(parts)}."


def versions_note(runs) -> str:
    """The code versions the report pools, one sentence: a version is the hash of a run's script and envs/, so runs
    of different scripts always have different ones; it says in bold which scripts' runs were made by several."""
    versions = {}
    for run in runs:
        counted = versions.setdefault((run.script, run.code[:8] or "unrecorded"), [0, set()])
        counted[0] += 1
        counted[1].add(run.commit[:7] or "unrecorded")
    described = ", ".join(f"{script}.py {version} ({count} run{'s' if count > 1 else ''}; git "
                          f"{', '.join(sorted(commits))})"
                          for (script, version), (count, commits) in sorted(versions.items()))
    per_script = {}
    for script, _ in versions:
        per_script[script] = per_script.get(script, 0) + 1
    pooled = [f"{count} code versions of {script}.py" for script, count in sorted(per_script.items()) if count > 1]
    if not pooled:
        who = "every run was made by one code version" if len(versions) == 1 else \
            "the runs of each script were made by one code version"
        return f"Code: {who} (a version is the hash of the run's script and envs/): {described}."
    return (f"**Pools runs of {' and '.join(pooled)}** (different script or env code; a version is the hash of the "
            f"run's script and envs/ that finished.json records): {described}.")


def report_text(experiment: Experiment, logs=LOGS, out=None, experiments=None, draw=True) -> str:
    """The report's markdown; with `draw`, the curves are drawn into `out` (the text is the same either way)."""
    from plot_results import best_and_final_table, markdown_table, paired_table, plot_curves, summarise

    runs, stale, missing = definition_runs(experiment, logs, experiments or {experiment.name: experiment})
    if not runs:
        raise BadInput(f"no finished runs of {experiment.name} under {Path(logs) / experiment.name}; "
                       f"run `python benchmarks/experiments.py run {experiment.name}` first")
    out = Path(out) if out is not None else RESULTS / experiment.name
    if draw:
        out.mkdir(parents=True, exist_ok=True)
    methods = [*experiment.methods, *[label for _, _, label in experiment.compare]]
    conditions = [c for c in experiment.conditions if any(run.condition == c for run in runs)]  # none: no curves
    rows = summarise(runs, experiment.tag, experiment.threshold, experiment.budget, methods, conditions)
    plots = plot_curves(runs, experiment.tag, experiment.budget, out, methods, conditions, draw=draw)
    borrowed = "".join(f" {label} is method {method} of `{name}`." for name, method, label in experiment.compare)
    parts = [
        f"# {experiment.name}",
        f"{experiment.figure}.{borrowed}" + (f" Cut from the paper: {experiment.cut}." if experiment.cut else ""),
        f"Reproduce: `python benchmarks/experiments.py run {experiment.name}` then "
        f"`python benchmarks/experiments.py report {experiment.name}`. {len(runs)} finished runs, budget "
        f"{experiment.budget:,} env steps, summarised by `{experiment.tag}`.",
        *([missing_note(experiment, missing)] if missing else []),
        versions_note(runs),
        f"IQM across seeds [95% bootstrap CI]; a run that never reached {experiment.threshold:g} counts at the budget "
        f"(env steps) or at the minutes it ran; \"all\" rows pool the conditions (bootstrap stratified by condition). "
        f"Minutes are wall-clock and depend on what else shared the machine.",
        markdown_table(rows, experiment.threshold, experiment.tag),
        " ".join(f"![]({os.path.basename(p)})" for p in plots),
    ]
    for threshold in experiment.also_thresholds:
        pct = f"{threshold:g}" if threshold > 1 else f"{threshold:.0%}"  # as markdown_table's columns say it
        parts += [f"## To {pct}", f"The same runs, with env steps and minutes to {pct} (a run that never reached "
                  f"it counts at the budget or at the minutes it ran).",
                  markdown_table(summarise(runs, experiment.tag, threshold, experiment.budget, methods, conditions),
                                 threshold, experiment.tag)]
    if experiment.pairs:
        parts += ["## Side by side", "Separated: the 95% intervals of the two methods on a condition do not overlap.",
                  paired_table(rows, experiment.pairs, experiment.threshold, experiment.pairs_summed)]
    for tag in experiment.also_tags:
        also = summarise(runs, tag, experiment.threshold, experiment.budget, methods, conditions)
        prefix = tag.replace("/", "-") + "-"
        also_plots = plot_curves([r for r in runs if r.scalar(tag)], tag, experiment.budget, out, methods, conditions,
                                 prefix=prefix, draw=draw)
        parts += [f"## Summarised by `{tag}`", markdown_table(also, experiment.threshold, tag) if also else
                  f"(no run logs `{tag}`)", " ".join(f"![]({os.path.basename(p)})" for p in also_plots)]
    if "sratio" in experiment.analyses:
        from sratio_metric import report as sratio_report

        parts += ["## S-ratio metric", sratio_report(runs, experiment.threshold, experiment.budget, str(out), draw)]
    if "iteration_cost" in experiment.analyses:
        from iteration_cost import cost_table, saving_table

        parts += ["## Computation per iteration", cost_table(runs, experiment.budget, methods, conditions)]
        if experiment.pairs:
            parts += ["Side by side, method A against method B:",
                      saving_table(runs, experiment.pairs, experiment.budget, conditions)]
    if "best_and_final" in experiment.analyses:
        parts += ["## Best and final", best_and_final_table(runs, experiment.tag, experiment.budget, methods,
                                                            conditions)]
    if "delta_s" in experiment.analyses:
        from delta_s_table import delta_s_table

        parts += ["## Mean delta_S (SHER paper, Table 1)", delta_s_table(runs, experiment.budget, methods)]
    if stale:
        folder = Path(logs).resolve() / experiment.name
        shown = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
        parts.append(f"({stale} finished runs in {shown} do not match the current definition and are left out.)")
    return "\n\n".join(parts) + "\n"


def write_report(experiment: Experiment, logs=LOGS, results=RESULTS, experiments=None) -> str:
    """The report's markdown, also written to results/NAME/table.md beside the curves' PNGs; a report with runs
    missing says so on stderr too."""
    out = Path(results) / experiment.name
    text = report_text(experiment, logs, out, experiments)
    (out / "table.md").write_text(text)
    missing = next((line for line in text.splitlines() if line.startswith("**Missing:")), None)
    if missing:
        print(f"warning: {experiment.name}: {missing.replace('**', '')}", file=sys.stderr)
    return text


# The committed tables that `check` does not regenerate, each with why: their experiment's runs have no committed
# record, or not all of them, because the table was made from logs that never entered the repository (before
# records were committed); each waits for its experiment's rerun. `check` fails on any other table it cannot check,
# and on an entry here whose experiment has a record of every run (regenerate its table, then drop the entry).
WAITING = {}


def check_tables(experiments: dict, logs=LOGS, results=RESULTS) -> tuple[list, list, list, list]:
    """Regenerates every results/NAME/table.md from the records under `logs` (no curves drawn) and compares:
    (tables that match; tables that differ or cannot be made, with why; tables not checked, with why: their
    experiment's own runs have no record in `logs`, or the table is in WAITING although they all have one; tables
    in WAITING, with its reason). Only the first three make a check pass or fail."""
    from run_logs import MARKER

    same, different, unchecked, waiting = [], [], [], []
    for table in sorted(Path(results).glob("*/table.md")):
        name = table.parent.name
        shown = table.relative_to(ROOT) if table.resolve().is_relative_to(ROOT) else table
        if name not in experiments:
            different.append((shown, "no experiment of that name"))
            continue
        experiment = experiments[name]
        recorded = any(Path(logs, name).glob(f"*/{MARKER}"))
        if name in WAITING:
            if recorded and not definition_runs(experiment, logs, experiments)[2]:
                unchecked.append((shown, f"listed as waiting for its experiment (WAITING in benchmarks/report.py), "
                                         f"but every run of {name} has a record: regenerate the table (`report "
                                         f"{name}`) and take it off the list"))
            else:
                waiting.append((shown, WAITING[name]))
            continue
        if not recorded:
            unchecked.append((shown, "its experiment's runs have no committed record (commit them, or add the "
                                     "table to WAITING in benchmarks/report.py with the reason)"))
            continue
        try:
            text = report_text(experiment, logs, table.parent, experiments, draw=False)
        except (BadInput, OSError) as error:
            different.append((shown, str(error)))
            continue
        if text == table.read_text():
            same.append(shown)
        else:
            committed = table.read_text().splitlines()
            line = next((i for i, (a, b) in enumerate(zip(text.splitlines(), committed)) if a != b),
                        min(len(committed), len(text.splitlines())))
            different.append((shown, f"differs from line {line + 1} on"))
    return same, different, unchecked, waiting
