"""benchmarks/experiments.py: experiment definitions run on Ray, resumed run by run, and reported.

The tiny experiments here (two-iteration ppo_her.py runs of a few seconds) go through the real command line and a
real Ray: embedded on this machine, or a `ray start --head` the test starts and stops itself. All traffic stays on
127.0.0.1."""
import io
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_PY = ROOT / "benchmarks" / "experiments.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import definitions  # noqa: E402
import experiments as experiments_cli  # noqa: E402
import ray_runner  # noqa: E402
import report  # noqa: E402

TINY = "--num-envs 4 --num-steps 64 --hidden-size 16"  # 512 env steps: two PPO iterations, a few seconds
DEFINITIONS = f'''
from experiments import Experiment

def tiny(name, methods, seeds=2, budget=512, flags="", conditions={{"rr": "--prey random --spawn random"}}):
    return Experiment(name=name, figure="a test", methods=methods, conditions=conditions,
                      flags="{TINY} " + flags, budget=budget, seeds=seeds)

EXPERIMENTS = [
    tiny("tiny", {{"her": "ppo_her", "ppo": "ppo_her --no-her"}}),
    tiny("tiny-bad", {{"her": "ppo_her", "bad": "ppo_her --no-such-flag 3"}}, seeds=1),
    tiny("tiny-one", {{"her": "ppo_her"}}),
    tiny("tiny-two", {{"her": "ppo_her", "ppo": "ppo_her --no-her"}},
         conditions={{"rr": "--prey random --spawn random", "sa": "--prey straight_away --spawn apart"}}),
    tiny("tiny-slow", {{"her": "ppo_her"}}, seeds=3, budget=200_000),
    tiny("tiny-resume", {{"her": "ppo_her"}}, seeds=1, budget=40 * 256,  # 40 iterations, a checkpoint after each
         flags="--minibatch-size 256 --checkpoint-every 1"),
]
'''


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("experiments")
    (folder / "definitions.py").write_text(DEFINITIONS)
    return folder


def command(workspace, *args, logs=None) -> list[str]:
    return [sys.executable, str(EXPERIMENTS_PY), *args, "--definitions", str(workspace / "definitions.py"),
            "--logs", str(logs or workspace / "logs")]


def cli(workspace, *args, env=None, timeout=180, logs=None) -> subprocess.CompletedProcess:
    return subprocess.run(command(workspace, *args, logs=logs), capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def markers(folder: Path) -> dict:
    """{run folder name: its finished.json}"""
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/finished.json")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- which addresses Ray's processes listen on, read from /proc (no ss or psutil needed) --------------------------
def process_table() -> dict:
    """{pid: (parent pid, session id)}"""
    table = {}
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            table[int(entry)] = (int(fields[1]), int(fields[3]))
        except (ValueError, OSError, IndexError):
            continue
    return table


def descendants(root: int) -> set:
    table, found, frontier = process_table(), set(), {root}
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def listening_addresses(pids) -> set:
    """The local addresses on which `pids` hold listening TCP sockets or bound UDP sockets."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    addresses = set()
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and (fields[3] == "0A" or proto.startswith("udp")):  # 0A: LISTEN
                raw = bytes.fromhex(fields[1].split(":")[0])
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # little-endian words
                addresses.add(ipaddress.ip_address(raw))
    return addresses


def is_loopback(address) -> bool:
    return address.is_loopback or (address.version == 6 and address.ipv4_mapped is not None
                                   and address.ipv4_mapped.is_loopback)


# -- definitions ----------------------------------------------------------------------------------------------------
def test_list_shows_every_experiment_with_its_run_count_and_figure():
    """`list` is one line per experiment: name, run count, the paper figure."""
    out = subprocess.run([sys.executable, str(EXPERIMENTS_PY), "list"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()}
    expected = {"ppo-vs-ppo-her": 40, "ppo-her-fast": 24, "meher-paper-defaults": 15, "meher-past-peak": 10, "meher-sratio-sweep-fast": 140,
                "sher-vs-ddpg-push": 10, "sher-alpha-push": 10,
                **{name: methods * conditions * seeds for name, (methods, conditions, seeds) in PAPER_GRIDS.items()}}
    for name, count in expected.items():
        assert f" {count} runs " in lines[name] and "Fig" in lines[name], lines[name]
    assert re.search(r" 150,000 steps +~0.95 h ", lines["ppo-her-fig2-fast"]), lines["ppo-her-fig2-fast"]
    assert all(re.search(r" [\d,]+ steps +~[\d.]+ h ", line) for line in lines.values())  # a budget and hours each


def test_the_docs_show_what_list_prints():
    """docs/experiments.md's copy of `list`'s output is what `list` prints now (run counts, budgets, hours)."""
    out = subprocess.run([sys.executable, str(EXPERIMENTS_PY), "list"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    page = (ROOT / "docs" / "experiments.md").read_text()
    intro = page.index("`python benchmarks/experiments.py list` prints")
    block = re.search(r"^```\n(.*?)^```$", page[intro:], re.M | re.S)
    assert block and block.group(1) == out.stdout, "docs/experiments.md: paste in what `list` prints now"


def flag_set(run, cpus) -> set:
    argv = run.argv(cpus)
    return {" ".join(argv[i:i + 2]) if i + 1 < len(argv) and not argv[i + 1].startswith("--") else argv[i]
            for i in range(2, len(argv)) if argv[i].startswith("--") and argv[i] != "--exp-name"}


def test_definitions_keep_the_flags_of_the_old_bash_runners():
    """The definitions run the same command lines as benchmarks/*.sh did (same flags, seeds and budgets), plus the
    runner's --checkpoint-every; the FetchPush SHER runs with one torch thread where the bash runner gave two (their
    definitions ask for 1 CPU per run)."""
    table = definitions.check_definitions(definitions.EXPERIMENTS)
    fast = {"--hidden-size 64", "--num-envs 32", "--num-steps 64", "--minibatch-size 256"}

    def one(name, method, condition, seed):
        (run,) = [r for r in table[name].runs() if (r.method, r.condition, r.seed) == (method, condition, seed)]
        return run.script, flag_set(run, table[name].cpus_per_run)

    assert one("ppo-vs-ppo-her", "ppo", "repel-random", 3) == ("ppo_her", {
        "--prey repel", "--spawn random", "--seed 3", "--total-timesteps 300000", "--stop-at-success 0.95",
        "--no-her", "--checkpoint-every 10"})
    assert one("meher-paper-defaults", "meher0.6targeted", "random-random", 2) == ("meher", {
        "--prey random", "--spawn random", "--seed 2", "--total-timesteps 300000", "--stop-at-success 0.95",
        "--s-ratio 0.6", "--failure targeted", "--checkpoint-every 10"})
    assert one("meher-sratio-sweep-fast", "meher0.3", "straight_away-apart", 1) == ("meher", fast | {
        "--prey straight_away", "--spawn apart", "--seed 1", "--total-timesteps 150000", "--s-ratio 0.3",
        "--failure random", "--stop-at-success 1.1", "--checkpoint-every 10"})  # meher.py stops at 0.95 by default
    assert one("sher-vs-ddpg-push", "her_ddpg", "push", 2) == ("her_ddpg", {
        "--env-id FetchPush-v4", "--seed 2", "--torch-threads 1", "--total-timesteps 640000", "--checkpoint-every 1"})
    assert one("sher-alpha-push", "sher_alpha0.1", "push", 1) == ("sher", {
        "--env-id FetchPush-v4", "--seed 1", "--torch-threads 1", "--total-timesteps 320000", "--alpha 0.1",
        "--checkpoint-every 1"})


def test_run_id_is_readable_and_changes_with_the_flags_but_not_with_the_cpus():
    """A run's identity: method, condition, seed and a hash of script + flags; the CPUs given to it and the runner's
    --checkpoint-every are not part (runs finished before it was added keep their ids)."""
    e = definitions.check_definitions(definitions.EXPERIMENTS)["sher-vs-ddpg-push"]
    run = e.runs()[0]
    assert run.run_id.startswith("her_ddpg-push-s1-") and run.run_id in run.argv(1) and run.run_id in run.argv(2)
    assert "--checkpoint-every" in run.argv(1) and "--checkpoint-every" not in run.flags
    assert definitions.check_definitions(definitions.EXPERIMENTS)["ppo-vs-ppo-her"].runs()[0].run_id == \
        "ppo_her-random-random-s1-088b5be9"  # the id docs/experiments.md shows, from before checkpoints
    longer = definitions.replace(e, budget=e.budget + 1).runs()[0]
    assert longer.run_id != run.run_id and longer.run_id.rsplit("-", 1)[0] == run.run_id.rsplit("-", 1)[0]


# -- the definitions of the papers' experiments -------------------------------------------------------------------
PAPER_GRIDS = {  # name: (methods, conditions, seeds), counted from the papers' figures and the budget's cuts
    "ppo-her-fig2-fast": (2, 12, 10),  # PPO, PPO-HER x 6 prey x 2 spawns
    "ppo-her-lr-fast": (6, 1, 5),  # 3 learning rates x HER on / off
    "ppo-her-strategy-fast": (12, 1, 5),  # 3 strategies x k = 1, 2, 4, 8
    "ppo-her-radius-fast": (8, 1, 5),  # 4 radii x HER on / off
    "ppo-her-box-fast": (10, 1, 5),  # 5 box sizes x HER on / off
    "ppo-her-dims-fast": (10, 1, 5),  # 5 dimensions x HER on / off
    "off-policy-predator-prey": (3, 4, 3),  # her_ddpg, sher, sher --autotune x the README's 4 conditions
    "meher-sratio-12-fast": (11, 12, 5),  # S-ratio 0, 0.1, ..., 1
    "meher-targeted-12-fast": (10, 12, 5),  # S-ratio 0, 0.1, ..., 0.9, targeted
    "meher-fig6-12-fast": (4, 12, 5),  # MEHER 0.6 random, targeted, PPO-HER-2-PPO, PPO-HER side by side
    "ppo-her-2-ppo-threshold-fast": (4, 2, 5),  # switch at 0.3, 0.5, 0.7 and PPO-HER; random(_direction) prey
    "ppo-her-fetch-reach-weight-decay": (5, 1, 2),  # weight decay none, 1e-2, ..., 1e-5
    "ppo-fetch-reach": (4, 1, 3),  # PPO, PPO-HER, MEHER 0.6, PPO-HER-2-PPO
    "ppo-fetch-push": (3, 1, 2),  # PPO, PPO-HER, MEHER 0.6
    "ppo-fetch-slide-pick": (2, 2, 2),  # PPO, PPO-HER x FetchSlide, FetchPickAndPlace
    "off-policy-fetch-reach": (2, 1, 5),  # her_ddpg, sher beside ppo-fetch-reach
    "sher-vs-ddpg-pick-slide": (2, 2, 5),
    "sher-alpha-slide": (2, 1, 5),  # alpha 0.03, 0.1 (0.05 borrowed)
    "sher-vs-ddpg-hand": (2, 4, 1),
    "sher-alpha-hand-reach": (2, 1, 1),  # alpha 0.01, --autotune (0.05 and her_ddpg borrowed)
}
PARSED_AWAY = {"exp_name", "seed", "torch_threads"}  # what differs between seeds, not between configurations


@pytest.fixture(scope="module")
def parsed_definitions():
    """{experiment: {(method, condition): the script's checked Args}}, each configuration's seed-1 command line
    parsed and checked by its own script (tyro, then the script's check_args: flag names, values and env options,
    also for the MuJoCo envs, which it makes); plus the command lines the scripts refused, with their error."""
    import tyro

    from conftest import load_script

    scripts, parsed, refused = {}, {}, []
    with pytest.MonkeyPatch.context() as patch:
        for e in definitions.check_definitions(definitions.EXPERIMENTS).values():
            parsed[e.name] = {}
            for run in e.runs(seeds=1):
                if run.script not in scripts:
                    scripts[run.script] = load_script(run.script)
                    patch.setitem(sys.modules, run.script, scripts[run.script])  # tyro reads Args' source to explain
                module = scripts[run.script]
                patch.setattr(sys, "argv", [f"{run.script}.py", *run.argv(e.cpus_per_run)[2:]])
                try:
                    if not hasattr(module, "parse_args"):  # parsed as its main block does: tyro, defaults, checks
                        args = tyro.cli(module.Args)
                        getattr(module, "fill_task_defaults", lambda args: None)(args)
                        module.check_args(args)
                    elif run.script in definitions.THREADED_SCRIPTS:
                        args, _ = module.parse_args()  # parses, fills the task defaults, checks
                    else:
                        args = module.parse_args()
                        module.check_args(args)
                except SystemExit as error:
                    refused.append(f"{e.name}: {shlex.join(run.argv(e.cpus_per_run))}: {error.code}")
                    continue
                parsed[e.name][run.method, run.condition] = args
    return parsed, refused


def test_every_flag_of_every_definition_is_accepted_by_its_script(parsed_definitions):
    """No definition holds a flag its script lacks, a value out of range, or an env or env option that does not
    exist: a run of it would fail at once, possibly hours into an experiment."""
    _, refused = parsed_definitions
    assert not refused, "\n".join(refused)


def test_every_configuration_of_a_definition_trains_something_different(parsed_definitions):
    """Within a definition no two (method, condition) pairs parse to the same Args (a swept flag that a later flag
    overrides would make them equal), and seeds aside the command lines are what the labels say."""
    parsed, _ = parsed_definitions
    for name, configurations in parsed.items():
        distinct = {tuple(sorted((k, v) for k, v in vars(args).items() if k not in PARSED_AWAY))
                    for args in configurations.values()}
        assert len(distinct) == len(configurations), name
    radius = parsed["ppo-her-radius-fast"]
    assert radius["ppo_radius0.1", "random-random"].radius == 0.1 and not radius["ppo_radius0.1", "random-random"].her
    assert parsed["ppo-her-strategy-fast"]["episode_k8", "random-random"].her_k == 8
    assert parsed["meher-targeted-12-fast"]["meher0.4targeted", "repel-apart"].failure == "targeted"
    assert parsed["sher-vs-ddpg-hand"]["sher", "hand_pen"].env_id == "HandManipulatePen-v1"


def test_paper_definitions_have_their_grid_times_seeds_runs_with_unique_ids():
    """Each new definition runs methods x conditions x seeds runs, as counted from its figure; every run id of a
    definition is its own (a shared id would make `run` skip one run as finished)."""
    table = definitions.check_definitions(definitions.EXPERIMENTS)
    for name, (methods, conditions, seeds) in PAPER_GRIDS.items():
        e = table[name]
        assert (len(e.methods), len(e.conditions), e.seeds) == (methods, conditions, seeds), name
        assert len(e.runs()) == methods * conditions * seeds, name
    for e in table.values():
        ids = [run.run_id for run in e.runs()]
        assert len(set(ids)) == len(ids), e.name
    assert set(table["ppo-her-fig2-fast"].conditions) == {f"{prey}-{spawn}" for prey in definitions.PREY
                                                            for spawn in ("random", "apart")}


def test_predator_prey_definitions_follow_the_stated_rules(parsed_definitions):
    """The PPO runs of the papers' definitions use the fast configuration and stop at 95% success, except the
    S-ratio sweeps, which run their whole budget (the ranking metric needs whole curves)."""
    parsed, _ = parsed_definitions
    whole_curves = {"meher-sratio-12-fast", "meher-targeted-12-fast"}
    for name in PAPER_GRIDS:
        for (method, condition), args in parsed[name].items():
            if args.env_id != "PredatorPrey-v0" or not hasattr(args, "stop_at_success"):
                continue  # her_ddpg.py and sher.py have no early stop
            fast = (args.hidden_size, args.num_envs, args.num_steps, args.minibatch_size)
            assert fast == (64, 32, 64, 256), (name, method)
            assert args.stop_at_success == (1.1 if name in whole_curves else 0.95), (name, method)


def test_borrowed_runs_come_from_a_method_that_exists_and_ran_at_least_as_long():
    """Every `compare` entry names a definition and one of its methods, on a condition this definition has, with a
    budget at least this one's (borrowed runs are cut at this budget, never shorter), under a label of its own: a
    typo would otherwise borrow nothing, silently."""
    table = definitions.check_definitions(definitions.EXPERIMENTS)
    for e in table.values():
        labels = list(e.methods)
        for name, method, label in e.compare:
            source = table[name]
            assert method in source.methods and set(source.conditions) & set(e.conditions), (e.name, name, method)
            assert source.budget >= e.budget and label not in labels, (e.name, name, method)
            labels.append(label)


def test_a_pair_must_name_methods_the_report_has():
    """A pair of labels compared side by side is checked against the methods and borrowed labels: a typo would
    otherwise compare nothing, silently."""
    fig6 = definitions.check_definitions(definitions.EXPERIMENTS)["meher-fig6-12-fast"]
    with pytest.raises(definitions.BadInput, match="pair .*ppo_her_2ppo"):
        definitions.check_definitions([definitions.replace(fig6, pairs=(("ppo_her_2ppo", "ppo_her"),))])
    with pytest.raises(definitions.BadInput, match="pairs_summed"):
        definitions.check_definitions([definitions.replace(fig6, pairs=(), pairs_summed=("a", "b"))])


# -- bad input --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (["run", "no-such-experiment"], "no experiment named 'no-such-experiment'"),
    (["run", "tiny", "--seeds", "0"], "--seeds"),
    (["run", "tiny", "--cpus-per-run", "4096"], "--cpus-per-run"),
    (["run", "tiny", "--cpus-per-run", "0"], "--cpus-per-run"),
    (["run", "tiny", "--address", "127.0.0.1:{port}"], "no Ray cluster"),
    (["report", "tiny-one"], "no finished runs"),
    (["run", "tiny", "--methods", "her,nope"], "no method nope; valid: her, ppo"),
    (["run", "tiny-two", "--conditions", "sa,nope"], "no condition nope; valid: rr, sa"),
])
def test_bad_input_is_one_line_within_seconds(workspace, args, says):
    """Unknown names, impossible numbers, an address with nothing behind it: one line, non-zero, no traceback."""
    args = [a.format(port=free_port()) for a in args]
    started = time.time()
    out = cli(workspace, *args, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("error:") and says in out.stderr, out.stderr
    assert time.time() - started < 20


@pytest.mark.parametrize("command", ["run", "report"])
def test_an_unknown_experiment_is_a_short_line_that_names_it_and_points_to_list(command):
    """The real command line, the committed definitions: an unknown name is one short line naming it and saying
    how to see the valid ones (not the list of every name), exit status 2, no traceback."""
    out = subprocess.run([sys.executable, str(EXPERIMENTS_PY), command, "no-such-experiment"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == "", out.stdout + out.stderr
    assert out.stderr == ("error: no experiment named 'no-such-experiment'; python benchmarks/experiments.py list "
                          "shows them\n"), out.stderr


def test_help_says_a_committed_experiment_runs_elsewhere_with_logs():
    """On a fresh clone the committed experiments have finished: `run --help` says that `--logs DIR` runs one."""
    out = subprocess.run([sys.executable, str(EXPERIMENTS_PY), "run", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "fresh clone" in out.stdout and "--logs DIR" in " ".join(out.stdout.split())


def test_dry_run_prints_the_commands_and_runs_nothing(workspace, tmp_path):
    """--dry-run prints one command line per run still to run (--seeds N: seeds 1..N) and writes nothing."""
    out = cli(workspace, "run", "tiny", "--dry-run", "--seeds", "3", logs=tmp_path / "logs")
    commands = [line for line in out.stdout.splitlines() if "algorithms/ppo_her.py" in line]
    assert out.returncode == 0 and len(commands) == 6 and "--seed 3" in commands[-1] and "--no-her" in commands[-1]
    assert all("--checkpoint-every 10 " in c and "--resume" not in c for c in commands)
    assert not (tmp_path / "logs").exists()


def test_methods_runs_only_the_methods_named(workspace, tmp_path):
    """--methods M runs only M's runs (e.g. the borrowed method of another report), every seed of it."""
    out = cli(workspace, "run", "tiny", "--dry-run", "--methods", "ppo", logs=tmp_path / "logs")
    commands = [line for line in out.stdout.splitlines() if "algorithms/ppo_her.py" in line]
    assert out.returncode == 0 and len(commands) == 2 and all("--no-her" in c for c in commands), out.stdout
    assert "2 of 2 runs to run" in out.stdout


def test_conditions_and_methods_together_pick_one_task_of_one_method(workspace, tmp_path):
    """--conditions C --methods M runs only M on C, every seed: one task's runs of a long comparison at a time."""
    out = cli(workspace, "run", "tiny-two", "--dry-run", "--conditions", "sa", "--methods", "her",
              logs=tmp_path / "logs")
    commands = [line for line in out.stdout.splitlines() if "algorithms/ppo_her.py" in line]
    assert out.returncode == 0 and len(commands) == 2, out.stdout
    assert all("--prey straight_away" in c and "--no-her" not in c for c in commands), out.stdout
    assert "2 of 2 runs to run" in out.stdout


# -- running on the embedded Ray ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_runs(workspace):
    """Runs `tiny` (2 configurations x 2 seeds) once, noting every address its Ray processes listened on."""
    process = subprocess.Popen(command(workspace, "run", "tiny"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    seen = set()
    while process.poll() is None:
        seen |= listening_addresses(descendants(process.pid))
        time.sleep(0.3)
    stdout, stderr = process.communicate()
    return process.returncode, stdout, stderr, seen


def test_tiny_experiment_runs_every_run_on_local_ray_listening_on_loopback_only(workspace, tiny_runs):
    """Four run folders, each with its TensorBoard log and a finished marker and without the script's checkpoint;
    Ray listened on 127.0.0.1 only."""
    returncode, stdout, stderr, seen = tiny_runs
    assert returncode == 0, stderr
    done = markers(workspace / "logs" / "tiny")
    assert len(done) == 4 and {(m["method"], m["seed"]) for m in done.values()} == {
        ("her", 1), ("her", 2), ("ppo", 1), ("ppo", 2)}
    assert len({m["code_sha256"] for m in done.values()}) == 1  # one script: one code version
    for name, marker in done.items():
        assert list((workspace / "logs" / "tiny" / name).glob("events.out.tfevents.*")), name
        assert marker["returncode"] == 0 and marker["command"].endswith(f"--exp-name {name}")
        assert not Path(marker["workdir"]).exists()  # the task's work folder is gone
        assert not list((workspace / "logs" / "tiny" / name).glob("checkpoint.pt*"))  # a finished run needs none
        assert 0 < (workspace / "logs" / "tiny" / name / "scalars.csv.gz").stat().st_size < 20_000  # its record
    assert not (workspace / "logs" / "tiny" / ".work").exists()  # every work folder deleted
    assert seen and all(is_loopback(a) for a in seen), seen  # Ray did listen, and only on loopback
    # not a terminal: no progress bar redrawn every second, one line per run that ends
    assert "\r" not in stderr and len(re.findall(r"^tiny: [1-4]/4 finished: ", stderr, re.M)) == 4, stderr


def test_second_run_starts_nothing_and_a_deleted_run_is_run_again(workspace, tiny_runs):
    """Finished runs are never rerun; deleting one run folder reruns exactly that run."""
    folder = workspace / "logs" / "tiny"
    before = {name: (folder / name / "finished.json").stat().st_mtime_ns for name in markers(folder)}
    started = time.time()
    again = cli(workspace, "run", "tiny")
    assert again.returncode == 0 and "nothing to run" in again.stdout and time.time() - started < 20
    victim = sorted(before)[1]
    shutil.rmtree(folder / victim)
    rerun = cli(workspace, "run", "tiny")
    assert rerun.returncode == 0 and "1 of 4 runs to run" in rerun.stdout, rerun.stdout + rerun.stderr
    after = {name: (folder / name / "finished.json").stat().st_mtime_ns for name in markers(folder)}
    assert after.keys() == before.keys()
    assert [name for name in after if after[name] != before[name]] == [victim]


def test_a_failing_run_is_named_and_does_not_stop_the_others(workspace):
    """A run with a bad flag fails (exit non-zero, its last lines shown), the other run finishes."""
    out = cli(workspace, "run", "tiny-bad")
    assert out.returncode == 1
    folder = workspace / "logs" / "tiny-bad"
    (good,) = markers(folder)
    assert good.startswith("her-")
    (failed,) = folder.glob("bad-*/failed.json")
    assert re.search(rf"failed: {failed.parent.name} \(exit [1-9]\d*\)", out.stderr) and "no-such-flag" in out.stderr
    assert not (folder / ".work").exists()  # a failed run without a checkpoint keeps no work folder


def test_report_prints_iqm_table_and_writes_curves(workspace, tiny_runs):
    """`report` turns the finished runs into the markdown table (IQM and CI per method) and one PNG per condition."""
    out = cli(workspace, "report", "tiny", "--results", str(workspace / "results"))
    assert out.returncode == 0, out.stderr
    table = (workspace / "results" / "tiny" / "table.md").read_text()
    assert "| rr | her | 2 |" in table and "| rr | ppo | 2 |" in table and "IQM" in table
    assert (workspace / "results" / "tiny" / "rr.png").stat().st_size > 1000


# A driver started as a terminal starts it: its own process group, and Ctrl-C (SIGINT) at its default even where
# the test runner inherited it ignored (a job started with `&` from a non-interactive shell ignores SIGINT)
AS_FROM_A_TERMINAL = dict(start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_stops_the_runs_keeps_what_finished_and_exits_130(workspace):
    """Ctrl-C (SIGINT to the driver's process group, as a terminal sends it): exit 130, the running training
    scripts are gone, no run is marked finished that did not finish."""
    process = subprocess.Popen(command(workspace, "run", "tiny-slow"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, **AS_FROM_A_TERMINAL)
    deadline, scripts = time.time() + 90, set()
    while time.time() < deadline and not scripts:  # wait until training runs are under way
        time.sleep(0.5)
        scripts = {pid for pid in descendants(process.pid)
                   if b"algorithms/ppo_her.py" in Path(f"/proc/{pid}/cmdline").read_bytes()}
    time.sleep(2)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert scripts and process.returncode == 130, stderr
    assert "interrupted" in stderr
    time.sleep(1)
    assert not [pid for pid in scripts if Path(f"/proc/{pid}").exists()]  # no orphan training run
    assert markers(workspace / "logs" / "tiny-slow") == {}  # 200,000-step runs cannot have finished


def test_an_interrupted_run_resumes_from_its_checkpoint_and_ends_as_if_never_stopped(workspace, tmp_path):
    """Ctrl-C after a run's first checkpoint: the script writes its checkpoint and stops (exit 130), the driver says
    it will resume, --dry-run shows the --resume it gets; the next `run` resumes it into the same TensorBoard log
    (each step once, the first ones from the first attempt, the pause left out of its seconds) and console.log, and
    it ends with exactly the scalars of the same command run without a stop."""
    from conftest import only_run, run_script
    from run_logs import pauses_between_attempts, read_scalars

    folder = workspace / "logs" / "tiny-resume"
    process = subprocess.Popen(command(workspace, "run", "tiny-resume"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, **AS_FROM_A_TERMINAL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(folder.glob(".work/*/runs/*/checkpoint.pt")):
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 130 and "(1 will resume from their checkpoint)" in stderr, stderr
    (workdir,) = (folder / ".work").iterdir()
    assert "interrupted by Ctrl-C" in (workdir / "console.log").read_text()  # stopped in order, not at its budget
    dry = cli(workspace, "run", "tiny-resume", "--dry-run")
    assert "--checkpoint-every 1 " in dry.stdout and f"--resume {workdir}/runs/PredatorPrey-v0__" in dry.stdout

    again = cli(workspace, "run", "tiny-resume")
    assert again.returncode == 0, again.stderr
    ((name, marker),) = markers(folder).items()
    console = (folder / name / "console.log").read_text()
    assert marker["resumed"] and "interrupted by Ctrl-C" in console and "experiments.py: resuming from runs/" in console
    assert not (folder / ".work").exists()
    resumed = read_scalars(folder / name)
    success = resumed["charts/success_rate"]
    assert list(success.steps) == [256 * i for i in range(1, 41)]  # every iteration's step once, in order
    first_attempt = read_scalars(min((folder / name).glob("events.out.tfevents.*")))["charts/success_rate"]
    assert first_attempt.steps[0] == 256 and len(first_attempt.steps) < 40
    ((_, pause),) = pauses_between_attempts(folder / name)
    assert max(np.diff(success.seconds)) < pause  # the seconds of a point do not count the pause before it

    whole = run_script("ppo_her", tmp_path, *shlex.split(marker["command"])[3:])
    assert whole.returncode == 0, whole.stderr
    uninterrupted = read_scalars(only_run(tmp_path))
    assert uninterrupted.keys() == resumed.keys()
    for tag in set(resumed) - {"charts/SPS"}:  # PPO on Predator-Prey resumes bit-identically
        assert np.array_equal(uninterrupted[tag].steps, resumed[tag].steps), tag
        assert np.array_equal(uninterrupted[tag].values, resumed[tag].values), tag


@pytest.mark.parametrize("case", ["corrupt checkpoint", "changed script"])
def test_a_checkpoint_that_cannot_be_resumed_is_run_afresh(tmp_path, case):
    """A work folder whose checkpoint the script refuses (here: corrupt) is run from scratch, and so is one left by
    other scripts, without trying (a resumed run would be half old code); either way the run finishes, its
    console.log keeps the earlier attempt's lines and says why, and its work folder is deleted."""
    import tarfile

    code = ray_runner.code_snapshot()
    run = definitions.Run("tiny-one", "her", "rr", "ppo_her", (*shlex.split(TINY), "--total-timesteps", "512"), 1)
    workdir = tmp_path / "work"
    for relative, data in code.items():  # what the earlier attempt ran
        (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
        (workdir / relative).write_bytes(data + (b"# changed\n" if case == "changed script" else b""))
    stale = workdir / "runs" / f"PredatorPrey-v0__{run.run_id}__1__1"
    stale.mkdir(parents=True)
    (stale / "checkpoint.pt").write_bytes(b"not a checkpoint" if case == "corrupt checkpoint" else b"")
    (workdir / "console.log").write_text("the earlier attempt\n")

    result = ray_runner.execute_run(run.argv(1), code, 1, str(workdir))
    assert result["returncode"] == 0 and not workdir.exists()
    with tarfile.open(fileobj=io.BytesIO(result["archive"])) as tar:
        console = tar.extractfile("console.log").read().decode()
        logs = {Path(name).parts[1] for name in tar.getnames() if name.startswith("runs/")}
    assert console.startswith("the earlier attempt\n") and "budget reached" in console, console
    assert len(logs) == 1 and stale.name not in logs
    if case == "corrupt checkpoint":
        assert result["resumed"] and "\nerror: --resume" in console and "refused (exit 3): starting afresh" in console
    else:
        assert not result["resumed"] and "error: --resume" not in console
        assert "no checkpoint of these scripts to resume: starting afresh" in console


# -- joining a Ray cluster ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_head():
    """A one-node Ray cluster on 127.0.0.1 with token authentication, started for this test and stopped by killing
    the processes of its own session (never `ray stop`, which would stop every Ray on the machine)."""
    temp = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    token = Path(temp) / "token"
    token.write_text("0123456789abcdef" * 2)
    port = free_port()
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--port", str(port),
                             "--node-ip-address", "127.0.0.1", "--temp-dir", temp, "--num-cpus", "2",
                             "--include-dashboard", "false", "--disable-usage-stats"],
                            env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        output, _ = head.communicate(timeout=120)
        assert head.returncode == 0, output
        yield dict(address=f"127.0.0.1:{port}", session=head.pid,
                   env=dict(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token)))
    finally:
        for _ in range(3):
            pids = [pid for pid, (_, session) in process_table().items() if session == head.pid]
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids:
                break
            time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)


def test_address_runs_on_a_cluster_and_the_logs_come_back_to_the_driver(workspace, ray_head, tmp_path):
    """--address: the runs are tasks of a separately started Ray head; each works in a temporary folder that is
    deleted afterwards, and its log folder arrives in the driver's logs folder (no shared filesystem needed). The
    head's processes listen on loopback only."""
    logs = tmp_path / "driver-logs"
    out = cli(workspace, "run", "tiny-one", "--address", ray_head["address"], env=ray_head["env"], logs=logs)
    assert out.returncode == 0, out.stderr
    done = markers(logs / "tiny-one")
    assert len(done) == 2
    for name, marker in done.items():
        assert list((logs / "tiny-one" / name).glob("events.out.tfevents.*"))
        assert not Path(marker["workdir"]).exists() and not Path(marker["workdir"]).is_relative_to(logs)
    head_pids = [pid for pid, (_, session) in process_table().items() if session == ray_head["session"]]
    seen = listening_addresses(head_pids)
    assert seen and all(is_loopback(a) for a in seen), seen
    too_big = cli(workspace, "run", "tiny-one", "--seeds", "3", "--cpus-per-run", "3", "--address", ray_head["address"],
                  env=ray_head["env"], logs=logs)  # the head has 2 CPUs
    assert too_big.returncode == 2 and too_big.stderr.startswith("error: --cpus-per-run 3: no node"), too_big.stderr
    assert len(too_big.stderr.strip().splitlines()) == 1



# -- report on hand-made logs (no Ray) ------------------------------------------------------------------------------
def fake_run(logs: Path, run, success: list, steps_per_point=1000, eval_success=(), code="c0de" * 16):
    """A finished run folder as `run` leaves it: the marker (made by `code`) and the record of a TensorBoard log of
    charts/success_rate (and of eval/success_rate, if given)."""
    from torch.utils.tensorboard import SummaryWriter

    from run_logs import write_record

    folder = logs / run.experiment / run.run_id
    writer = SummaryWriter(str(folder))
    for tag, values in (("charts/success_rate", success), ("eval/success_rate", eval_success)):
        for i, value in enumerate(values, start=1):
            writer.add_scalar(tag, value, i * steps_per_point)
    writer.close()
    write_record(folder)
    marker = dict(run_id=run.run_id, method=run.method, condition=run.condition, seed=run.seed, script=run.script,
                  flags=list(run.flags), env_id="PredatorPrey-v0", code_sha256=code, git_commit="1234567" + code)
    (folder / "finished.json").write_text(json.dumps(marker))


def test_report_borrows_runs_of_another_experiment_and_leaves_out_stale_ones(tmp_path):
    """`compare` brings another experiment's runs into a report, cut at this experiment's budget; a finished run
    whose flags no longer match the definition is left out and counted; the note of what was cut is printed."""
    def experiment(name, methods, budget, compare=(), cut=""):
        return definitions.Experiment(name=name, figure="a test", methods=methods, conditions={"rr": ""},
                                      budget=budget, seeds=2, compare=compare, cut=cut)

    base = experiment("base", {"her": "ppo_her"}, budget=6000)
    other = experiment("other", {"ppo": "ppo_her --no-her"}, budget=3000, compare=(("base", "her", "her_base"),),
                       cut="11 of the 12 conditions")
    table = definitions.check_definitions([base, other])
    for run in base.runs():  # reaches 90% at 2,000 steps (seed 1) and at 5,000, after other's budget (seed 2)
        fake_run(tmp_path, run, [0.5, 0.95] if run.seed == 1 else [0.1, 0.2, 0.3, 0.4, 0.95])
    for run in other.runs():
        fake_run(tmp_path, run, [0.0, 0.0, 0.0])
    stale = definitions.replace(base, budget=5000).runs()[0]  # same labels, other flags: another run id
    fake_run(tmp_path, stale, [1.0])

    text = report.write_report(other, tmp_path, tmp_path / "results", table)
    assert "| rr | her_base | 2 | 1/2 | 2,500 [2,000, 3,000] |" in text  # seed 2 counted at the 3,000 budget
    assert "| rr | ppo | 2 | 0/2 | 3,000 [3,000, 3,000] |" in text and "her_base is method her of `base`" in text
    assert "a test. her_base is method her of `base`. Cut from the paper: 11 of the 12 conditions.\n" in text
    text = report.write_report(base, tmp_path, tmp_path / "results", table)
    assert "Cut from the paper" not in text
    assert "| rr | her | 2 | 2/2 | 3,500 [2,000, 5,000] |" in text and "1 finished runs" in text


def test_report_summarises_each_extra_tag_in_its_own_table_and_curves(tmp_path):
    """`also_tags` adds a table and curves per scalar, over the runs that log it: here test success, which
    her_ddpg-like runs reach long before their noisy training success does, and which PPO-like runs lack."""
    e = definitions.Experiment(name="tags", figure="a test", methods={"ddpg": "her_ddpg", "ppo": "ppo_her"},
                               conditions={"rr": ""}, budget=4000, seeds=2, also_tags=("eval/success_rate",))
    for run in e.runs():
        ddpg = run.method == "ddpg"
        fake_run(tmp_path, run, [0.1, 0.3, 0.5, 0.6] if ddpg else [0.2, 0.95], eval_success=[0.2, 0.95] if ddpg else ())
    text = report.write_report(e, tmp_path, tmp_path / "results", definitions.check_definitions([e]))
    main, extra = text.split("## Summarised by `eval/success_rate`")
    assert "| rr | ddpg | 2 | 0/2 | 4,000 [4,000, 4,000] |" in main and "| rr | ppo | 2 | 2/2 | 2,000" in main
    assert "| rr | ddpg | 2 | 2/2 | 2,000 [2,000, 2,000] |" in extra and "| rr | ppo |" not in extra
    assert (tmp_path / "results" / "tags" / "eval-success_rate-rr.png").is_file()


def test_report_draws_no_curves_for_a_condition_without_finished_runs(tmp_path):
    """A comparison run one task at a time (`run --conditions`) reports the tasks that have runs, with no empty
    figure for the others."""
    e = definitions.Experiment(name="half", figure="a test", methods={"her": "ppo_her"},
                               conditions={"rr": "", "sa": "--prey straight_away --spawn apart"}, budget=2000, seeds=1)
    for run in e.runs():
        if run.condition == "rr":
            fake_run(tmp_path, run, [0.5, 0.95])
    text = report.write_report(e, tmp_path, tmp_path / "results", definitions.check_definitions([e]))
    assert "| rr | her | 1 | 1/1 |" in text and "![](rr.png)" in text and "sa.png" not in text
    assert not (tmp_path / "results" / "half" / "sa.png").exists()


def test_a_pooled_table_of_two_code_versions_names_both_and_missing_runs_are_named(tmp_path):
    """Runs made by two code versions: the table says in its header that it pools both, naming each; a run of the
    definition without a record is named in the header, not silently left out."""
    e = definitions.Experiment(name="pooled", figure="a test", methods={"her": "ppo_her", "ppo": "ppo_her --no-her"},
                               conditions={"rr": ""}, budget=2000, seeds=2)
    old, new = "a" * 64, "b" * 64
    for run in e.runs():
        if (run.method, run.seed) != ("ppo", 2):
            fake_run(tmp_path, run, [0.5, 0.95], code=old if run.seed == 1 else new)
    text = report.write_report(e, tmp_path, tmp_path / "results", definitions.check_definitions([e]))
    assert "**Pools runs of 2 code versions of ppo_her.py**" in text and "ppo_her.py aaaaaaaa (2 runs; git 1234567)" \
        in text
    assert "ppo_her.py bbbbbbbb (1 run; git 1234567)" in text
    assert "**Missing: 1 run of the definition has no record, and this table leaves them out**: ppo (rr, seed 2)." \
        in text
    fake_run(tmp_path, [r for r in e.runs() if (r.method, r.seed) == ("ppo", 2)][0], [0.5], code=new)
    text = report.write_report(e, tmp_path, tmp_path / "results", definitions.check_definitions([e]))
    assert "Missing" not in text and "Pools runs of 2 code versions of ppo_her.py" in text


def test_runs_of_two_scripts_each_of_one_code_version_are_not_pooled_versions(tmp_path):
    """A code version is the hash of a run's script and envs/: runs of two scripts always have two, and the table
    names both without saying that it pools versions; a second version of one of the scripts is pooled, by name."""
    e = definitions.Experiment(name="two-scripts", figure="a test", methods={"her": "ppo_her", "meher": "meher"},
                               conditions={"rr": ""}, budget=2000, seeds=2)
    for run in e.runs():
        fake_run(tmp_path, run, [0.5, 0.95], code=("a" if run.script == "ppo_her" else "b") * 64)
    text = report.write_report(e, tmp_path, tmp_path / "results", definitions.check_definitions([e]))
    assert "Code: the runs of each script were made by one code version (a version is the hash of the run's script " \
           "and envs/): meher.py bbbbbbbb (2 runs; git 1234567), ppo_her.py aaaaaaaa (2 runs; git 1234567)." in text
    assert "Pools" not in text
    fake_run(tmp_path, e.runs()[-1], [0.5, 0.95], code="c" * 64)  # meher, seed 2, made by other code
    text = report.write_report(e, tmp_path, tmp_path / "results", definitions.check_definitions([e]))
    assert "**Pools runs of 2 code versions of meher.py**" in text and "meher.py cccccccc (1 run; git" in text


def test_a_code_version_is_the_hash_of_the_script_and_envs_only():
    """A run's code version changes with its script and with envs/, not with another script of algorithms/."""
    code = {"algorithms/ppo_her.py": b"ppo", "algorithms/her_ddpg.py": b"ddpg", "envs/__init__.py": b"env",
            "envs/sub/x.py": b"x"}
    version = ray_runner.code_sha256(code, "ppo_her")
    assert version == ray_runner.code_sha256({k: v for k, v in code.items() if k != "algorithms/her_ddpg.py"},
                                             "ppo_her")
    assert version == ray_runner.code_sha256(dict(code, **{"algorithms/her_ddpg.py": b"changed"}), "ppo_her")
    assert version != ray_runner.code_sha256(dict(code, **{"algorithms/ppo_her.py": b"changed"}), "ppo_her")
    assert version != ray_runner.code_sha256(dict(code, **{"envs/sub/x.py": b"changed"}), "ppo_her")
    assert version != ray_runner.code_sha256(code, "her_ddpg") and len(version) == 64


def test_run_says_when_the_finished_runs_it_keeps_were_made_by_other_code(workspace, tmp_path):
    """A finished run of other code is kept (not rerun), and `run` says so; the runs it starts use this code."""
    (run,) = [r for r in definitions.check_definitions(definitions.EXPERIMENTS)["ppo-vs-ppo-her"].runs(seeds=1)
              if (r.method, r.condition) == ("ppo_her", "random-random")]
    fake_run(tmp_path, run, [0.5, 0.95], code="0ld" + "0" * 61)
    out = subprocess.run([sys.executable, str(EXPERIMENTS_PY), "run", "ppo-vs-ppo-her", "--seeds", "1", "--dry-run",
                          "--logs", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "7 of 8 runs to run" in out.stdout, out.stdout + out.stderr
    assert "note: 1 of the 1 finished runs kept were made by other code" in out.stderr and "0ld00000 (1)" in out.stderr
    current = ray_runner.code_sha256(ray_runner.code_snapshot(), "ppo_her")
    marker = tmp_path / "ppo-vs-ppo-her" / run.run_id / "finished.json"
    marker.write_text(json.dumps(dict(json.loads(marker.read_text()), code_sha256=current)))
    out = subprocess.run([sys.executable, str(EXPERIMENTS_PY), "run", "ppo-vs-ppo-her", "--seeds", "1", "--dry-run",
                          "--logs", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "note:" not in out.stderr, out.stderr  # its own script's version: not other code


def test_address_is_checked_even_when_every_run_has_finished(workspace, tiny_runs):
    """`run --address` on a finished experiment checks the address: a wrong one is an error, not 'nothing to do'."""
    out = cli(workspace, "run", "tiny", "--address", f"127.0.0.1:{free_port()}", timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("error: --address") and "no Ray cluster" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_record_of_a_real_run_gives_the_report_of_its_event_file(workspace, tiny_runs, monkeypatch):
    """The record the runner wrote for each real run of `tiny` gives the same report, to the byte, as its
    TensorBoard log; each scalar's steps and values are the logged ones and its seconds agree to the microsecond."""
    import run_logs

    e = definitions.load_definitions(str(workspace / "definitions.py"))["tiny"]
    from_records = report.report_text(e, workspace / "logs", workspace / "unused", draw=False)
    for folder in (workspace / "logs" / "tiny").glob("*-s?-*"):
        logged, recorded = run_logs.read_scalars(folder), run_logs.read_record(folder)
        assert recorded.keys() == logged.keys() and "charts/success_rate" in recorded
        for tag in set(recorded) - {"charts/episodic_return", "charts/episodic_length"}:  # reduced per iteration
            assert np.array_equal(recorded[tag].steps, logged[tag].steps), tag
            assert np.array_equal(recorded[tag].values, logged[tag].values), tag
            assert np.allclose(recorded[tag].seconds, logged[tag].seconds, rtol=0, atol=1e-6), tag
    monkeypatch.setattr(run_logs, "read_record", run_logs.read_scalars)
    assert report.report_text(e, workspace / "logs", workspace / "unused", draw=False) == from_records
    assert "| rr | her | 2 |" in from_records and "code version" in from_records  # one, or two if the code changed


# -- check: every committed table regenerates from the committed records -----------------------------------------
def check_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPERIMENTS_PY), "check", *args], capture_output=True, text=True,
                          timeout=120)


CHECKED = 26  # the committed tables that regenerate from the committed records
WAITING = set()


def test_check_regenerates_every_committed_table_from_the_records_within_a_minute():
    """Every committed table is checked, except exactly those listed as waiting for their experiment: a table that
    gains or loses its records changes these numbers, and this test says so."""
    started = time.time()
    out = check_cli()
    assert out.returncode == 0 and out.stderr == "", out.stdout + out.stderr
    assert time.time() - started < 60
    assert f"{CHECKED} tables regenerate from the records, 0 differ, 0 not checked, {len(WAITING)} waiting for " \
           f"their experiment" in out.stdout.splitlines(), out.stdout
    waiting = re.findall(r"^waiting for its experiment: docs/results/([^/]+)/table\.md: \S", out.stdout, re.M)
    assert sorted(waiting) == sorted(WAITING) == sorted(report.WAITING), out.stdout
    tables = {p.parent.name for p in (ROOT / "docs" / "results").glob("*/table.md")}
    assert len(tables) == CHECKED + len(WAITING) and WAITING <= tables


def test_check_fails_on_a_table_whose_experiment_has_no_record_unless_it_waits_for_it(tmp_path, monkeypatch,
                                                                                       capsys):
    """A table that check cannot regenerate (no record of its experiment's runs) fails it, naming the table; one
    listed as waiting for its experiment passes, printed with its reason; and one still listed although every run of
    its experiment has a record fails it, asking for the table to be regenerated and taken off the list."""
    logs, results = copy_of_committed(tmp_path)
    shutil.rmtree(logs / SMALL)
    out = check_cli("--logs", str(logs), "--results", str(results))
    assert out.returncode == 1 and f"not checked: {results / SMALL / 'table.md'}: its experiment's runs have no " \
        f"committed record" in out.stderr, out.stdout + out.stderr
    assert "0 tables regenerate from the records, 0 differ, 1 not checked, 0 waiting" in out.stdout, out.stdout
    monkeypatch.setitem(report.WAITING, SMALL, "a test")
    experiments = definitions.check_definitions(definitions.EXPERIMENTS)
    assert experiments_cli.check(experiments, logs, results) == 0
    assert f"waiting for its experiment: {results / SMALL / 'table.md'}: a test\n" in capsys.readouterr().out
    logs, results = copy_of_committed(tmp_path / "complete")
    committed_seeds = {SMALL: definitions.replace(experiments[SMALL], seeds=2)}  # every run has a record
    same, different, unchecked, waiting = report.check_tables({**experiments, **committed_seeds}, logs, results)
    assert not same and not different and not waiting and len(unchecked) == 1, (same, different, unchecked)
    assert "every run of sher-vs-ddpg-push has a record: regenerate the table" in unchecked[0][1]


SMALL = "sher-vs-ddpg-push"  # a complete experiment of 10 records, quick to check


def copy_of_committed(tmp_path) -> tuple[Path, Path]:
    """The committed records and table of SMALL, copied: (logs, results)."""
    logs, results = tmp_path / "logs", tmp_path / "results"
    shutil.copytree(ROOT / "experiments" / SMALL, logs / SMALL, ignore=shutil.ignore_patterns("events.out.*"))
    shutil.copytree(ROOT / "docs" / "results" / SMALL, results / SMALL, ignore=shutil.ignore_patterns("*.png"))
    return logs, results


def test_check_fails_on_a_table_edited_by_hand(tmp_path):
    logs, results = copy_of_committed(tmp_path)
    assert check_cli("--logs", str(logs), "--results", str(results)).returncode == 0
    table = results / SMALL / "table.md"
    text = table.read_text()
    table.write_text(text.replace("| push | sher |", "| push | SHER |", 1))  # any seed count
    assert table.read_text() != text
    out = check_cli("--logs", str(logs), "--results", str(results))
    assert out.returncode == 1 and f"differs: {table}" in out.stderr, out.stdout + out.stderr


def test_check_fails_on_a_record_edited_by_hand(tmp_path):
    import gzip

    logs, results = copy_of_committed(tmp_path)
    record = sorted((logs / SMALL).glob("sher-*/scalars.csv.gz"))[0]
    lines = gzip.decompress(record.read_bytes()).decode().splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("eval/success_rate,"))
    tag, step, value, seconds = lines[last].split(",")
    lines[last] = ",".join((tag, step, "0.123" if value != "0.123" else "0.5", seconds))  # its final test success
    record.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = check_cli("--logs", str(logs), "--results", str(results))
    assert out.returncode == 1 and f"differs: {results / SMALL / 'table.md'}" in out.stderr, out.stdout + out.stderr


# -- a refused resume is read from the script's exit status ---------------------------------------------------------
STAND_IN = '''import os, sys
if "--resume" in sys.argv:
    print("error: --resume: refused by the stand-in")
    sys.exit(int(os.environ.get("STAND_IN_REFUSAL", "3")))
os.makedirs("runs/PredatorPrey-v0__x__1__1", exist_ok=True)
print("budget reached")
'''


@pytest.mark.parametrize("status", [ray_runner.REFUSED_RESUME, 1])
def test_only_the_refusal_exit_status_starts_a_run_afresh(tmp_path, monkeypatch, status):
    """A script that exits with REFUSED_RESUME (3) after --resume has refused the checkpoint: the run starts afresh
    without it. Any other failure after --resume, even one that prints "error:", is the run's failure."""
    code = {"algorithms/stand_in.py": STAND_IN.encode()}
    workdir = tmp_path / "work"
    (workdir / "algorithms").mkdir(parents=True)
    (workdir / "algorithms" / "stand_in.py").write_text(STAND_IN)
    (workdir / "runs" / "PredatorPrey-v0__old__1__1").mkdir(parents=True)
    (workdir / "runs" / "PredatorPrey-v0__old__1__1" / "checkpoint.pt").write_bytes(b"old")
    monkeypatch.setenv("STAND_IN_REFUSAL", str(status))
    result = ray_runner.execute_run(["python", "algorithms/stand_in.py"], code, 1, str(workdir))
    assert result["resumed"]
    if status == ray_runner.REFUSED_RESUME:
        assert result["returncode"] == 0 and not workdir.exists()
    else:
        assert result["returncode"] == status and "refused (exit" not in (workdir / "console.log").read_text()


def test_a_second_threshold_adds_a_table_of_the_same_runs_reaching_it_sooner():
    """sher-vs-ddpg-push reports steps to 90% and, with also_thresholds, to 50%: each method reaches 50% no later
    than 90%, from the same runs; a threshold of 0 is refused."""
    push = definitions.check_definitions(definitions.EXPERIMENTS)[SMALL]
    text = report.report_text(push, ROOT / "experiments", draw=False)
    first, second = text.split("## To 50%")

    def steps(section):
        rows = [line.split("|") for line in section.split("## ")[0].splitlines() if line.startswith("| push |")]
        return {row[2].strip(): float(row[5].split("[")[0].replace(",", "")) for row in rows}

    to_90, to_50 = steps(first), steps(second)
    assert set(to_90) == set(to_50) == {"her_ddpg", "sher"}
    assert all(to_50[m] <= to_90[m] for m in to_90) and to_50 != to_90
    with pytest.raises(definitions.BadInput, match="also_thresholds"):
        definitions.check_definitions([definitions.replace(push, also_thresholds=(0,))])
