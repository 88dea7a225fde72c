"""Experiments as code: every experiment behind the docs' results is one definition below, run on Ray.

    python benchmarks/experiments.py list
    python benchmarks/experiments.py run NAME [--seeds N] [--methods M1,M2] [--conditions C1,C2] [--address ADDR]
                                              [--cpus-per-run C] [--dry-run]
    python benchmarks/experiments.py report NAME

A definition says which script runs, with which flags (the methods compared x the conditions they are compared
on), how many seeds, the env-step budget, which TensorBoard scalar and threshold summarise a run, and which paper
figure it reproduces. `run` starts every run that has not finished: each run is one Ray task that runs the
script's own command line (`python algorithms/<script>.py <flags> --seed S --exp-name <run id>`) in a work
folder of its own and sends the run's log folder back, to experiments/NAME/<run id>/ here. The script writes a
checkpoint there regularly; an interrupted or failed run keeps its work folder, and the next `run` resumes it
from that checkpoint. Without --address the runs go to a Ray instance started for this command on this machine,
listening on 127.0.0.1 only; with --address they go to a running Ray cluster. `report` prints the IQM and 95%
bootstrap intervals across seeds and writes the table and the learning curves to docs/results/NAME/. See
docs/experiments.md.
"""
import argparse
import contextlib
import hashlib
import io
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "experiments"
RESULTS = ROOT / "docs" / "results"
SCRIPTS = ROOT / "algorithms"
sys.path.insert(0, str(Path(__file__).resolve().parent))
if __name__ == "__main__":  # a definitions file's `from experiments import Experiment` gets this very module
    sys.modules.setdefault("experiments", sys.modules["__main__"])

THREADED_SCRIPTS = ("her_ddpg", "sher")  # the scripts with a --torch-threads flag
# --checkpoint-every of each script's runs: PPO iterations (10 take about a minute at the paper defaults, seconds in
# the fast configuration, whose checkpoint is 0.3 MB) or her_ddpg / sher epochs (a few minutes on Fetch)
CHECKPOINT_EVERY = {"ppo_her": 10, "meher": 10, "ppo_her_2_ppo": 10, "her_ddpg": 1, "sher": 1}
ANALYSES = ("sratio", "iteration_cost", "delta_s")
LABEL_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass
class Experiment:
    """One paper figure or study: the methods compared x the conditions they are compared on x seeds."""

    name: str
    figure: str  # the paper figure or table it reproduces, and how it differs
    methods: dict  # label -> "script [flags]" (script = a file of algorithms/ without .py)
    conditions: dict  # label -> flags
    budget: int  # env steps per run, passed as --total-timesteps
    seeds: int = 3  # seeds 1..seeds
    flags: str = ""  # flags of every run
    tag: str = "charts/success_rate"  # the scalar that summarises a run
    also_tags: tuple = ()  # more scalars, each summarised in a table and curves of its own (runs that log it)
    threshold: float = 0.9  # steps and minutes to this level of `tag`
    cpus_per_run: int = 1  # the default of --cpus-per-run
    analyses: tuple = ()  # extra report sections, from ANALYSES
    compare: tuple = ()  # (experiment, method, label): finished runs of another experiment, reported beside these
    cut: str = ""  # where it departs from the paper's grid, seeds and budget (shown in the report)

    def runs(self, seeds: int | None = None) -> list["Run"]:
        """Every run, seeds outermost (an interrupted experiment has its first seeds of every configuration)."""
        return [Run(self.name, method, condition, *split_method(command, self.conditions[condition], self),
                    seed)
                for seed in range(1, (seeds or self.seeds) + 1)
                for method, command in self.methods.items() for condition in self.conditions]


def split_method(command: str, condition_flags: str, experiment: Experiment) -> tuple[str, tuple]:
    script, *method_flags = shlex.split(command)
    flags = (*method_flags, *shlex.split(condition_flags), *shlex.split(experiment.flags),
             "--total-timesteps", str(experiment.budget))
    return script, tuple(flags)


@dataclass(frozen=True)
class Run:
    experiment: str
    method: str
    condition: str
    script: str
    flags: tuple
    seed: int

    @property
    def config_hash(self) -> str:
        """8 hex digits of the script and its flags (not the seed): a changed definition is a different run."""
        return hashlib.sha256(" ".join((self.script, *self.flags)).encode()).hexdigest()[:8]

    @property
    def run_id(self) -> str:
        return f"{self.method}-{self.condition}-s{self.seed}-{self.config_hash}"

    def argv(self, cpus: int) -> list[str]:
        """The command line, as a user would type it from the repository root."""
        threads = ["--torch-threads", str(cpus)] if (self.script in THREADED_SCRIPTS
                                                     and "--torch-threads" not in self.flags) else []
        every = CHECKPOINT_EVERY.get(self.script) if "--checkpoint-every" not in self.flags else None
        checkpoints = ["--checkpoint-every", str(every)] if every else []  # not part of the run id
        return ["python", f"algorithms/{self.script}.py", *self.flags, *checkpoints, "--seed", str(self.seed),
                "--exp-name", self.run_id, *threads]


def sweep(script: str, flag: str, values, label: str, flags: str = "") -> dict:
    """One method per value of one flag: {label+value: "script flag value flags"}."""
    return {f"{label}{value}": f"{script} {flag} {value} {flags}".strip() for value in values}


# ---------------------------------------------------------------------------------------------------------------
# The definitions
# ---------------------------------------------------------------------------------------------------------------
FOUR_CONDITIONS = {  # the README's four prey x spawn conditions
    "random-random": "--prey random --spawn random",
    "straight_away-apart": "--prey straight_away --spawn apart",
    "static-random": "--prey static --spawn random",
    "repel-random": "--prey repel --spawn random",
}
FAST = "--hidden-size 64 --num-envs 32 --num-steps 64 --minibatch-size 256"  # the README's fast configuration
PPO_AND_PPO_HER = {"ppo_her": "ppo_her", "ppo": "ppo_her --no-her"}
PREY = ("static", "random", "attract", "repel", "straight_away", "random_direction")
TWELVE_CONDITIONS = {f"{prey}-{spawn}": f"--prey {prey} --spawn {spawn}"  # the papers' 2 x 6 grid, row by row
                     for spawn in ("random", "apart") for prey in PREY}
RANDOM_RANDOM = {"random-random": TWELVE_CONDITIONS["random-random"]}
FAST_STOPPING = f"{FAST} --stop-at-success 0.95"
PAPER_STOP = "runs stop at 95% success, the paper's at 1.3 x the step of their first 100% success"


def random_random_cut(budget: int, paper_seeds: int = 16) -> str:
    """What a one-condition (random prey / random spawn) study cuts from the paper's grid."""
    return (f"11 of the 12 conditions; 3 seeds, not {paper_seeds}; {budget:,} env steps per run, not 1,000,000; "
            f"{PAPER_STOP}")
SRATIOS = ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
TARGETED_SRATIOS = ["0.2", "0.4", "0.6", "0.8"]
FETCH_PPO = "--init-logstd -0.51"  # log 0.6: the PPO-HER paper's initial policy std on Fetch
FETCH_WEIGHT_DECAY = f"{FETCH_PPO} --weight-decay 1e-4"  # the middle of the paper's 1e-2 .. 1e-5
FETCH_METHODS = {**PPO_AND_PPO_HER, "meher0.6": "meher --s-ratio 0.6"}
FETCH_HARD = {"pickandplace": "--env-id FetchPickAndPlace-v4", "slide": "--env-id FetchSlide-v4"}
HAND = {"hand_reach": "--env-id HandReach-v3", "hand_block": "--env-id HandManipulateBlock-v1",
        "hand_egg": "--env-id HandManipulateEgg-v1", "hand_pen": "--env-id HandManipulatePen-v1"}


def with_and_without_her(flag: str, values, label: str) -> dict:
    """PPO-HER and plain PPO at every value of one flag: {ppo_her_<label><value>: ..., ppo_<label><value>: ...}."""
    with_her = sweep("ppo_her", flag, values, f"ppo_her_{label}")
    without_her = sweep("ppo_her", flag, values, f"ppo_{label}", "--no-her")
    return {**with_her, **without_her}


EXPERIMENTS = [
    Experiment(
        name="ppo-vs-ppo-her",
        figure="PPO-HER paper (arXiv 2410.22524) Fig. 2: PPO vs PPO-HER on 4 of its 12 prey x spawn conditions, "
               "paper defaults, runs stop at 95% success",
        methods=PPO_AND_PPO_HER, conditions=FOUR_CONDITIONS, flags="--stop-at-success 0.95", budget=300_000),
    Experiment(
        name="ppo-her-fast",
        figure="PPO-HER paper Fig. 2 at the fast configuration (4 conditions, stop at 95% success); the workload "
               "of benchmarks/runner_overhead.py",
        methods=PPO_AND_PPO_HER, conditions=FOUR_CONDITIONS, flags=f"{FAST} --stop-at-success 0.95",
        budget=150_000),
    Experiment(
        name="meher-paper-defaults",
        figure="MEHER paper (arXiv 2410.24016) Figs. 6-7: MEHER 0.6 (random and targeted failures) and "
               "PPO-HER-2-PPO on random prey / random spawn, paper defaults, runs stop at 95% success; "
               "PPO-HER from ppo-vs-ppo-her",
        methods={"meher0.6": "meher --s-ratio 0.6 --failure random",
                 "meher0.6targeted": "meher --s-ratio 0.6 --failure targeted",
                 "ppo_her_2_ppo": "ppo_her_2_ppo"},
        conditions={"random-random": FOUR_CONDITIONS["random-random"]}, flags="--stop-at-success 0.95",
        budget=300_000, compare=(("ppo-vs-ppo-her", "ppo_her", "ppo_her"),), analyses=("iteration_cost",)),
    Experiment(
        name="meher-sratio-sweep-fast",
        figure="MEHER paper Figs. 2-3 (S-ratio 0, 0.1, ..., 1, random failures) on 2 of its 12 conditions, with "
               "Fig. 6's comparisons (MEHER 0.6 targeted, PPO-HER, PPO-HER-2-PPO); fast configuration, no early "
               "stop",
        methods={**sweep("meher", "--s-ratio", [f"{d / 10:.1f}" for d in range(11)], "meher", "--failure random"),
                 "meher0.6targeted": "meher --s-ratio 0.6 --failure targeted",
                 "ppo_her": "ppo_her", "ppo_her_2_ppo": "ppo_her_2_ppo"},
        conditions={c: FOUR_CONDITIONS[c] for c in ("random-random", "straight_away-apart")}, flags=FAST,
        budget=150_000, analyses=("sratio", "iteration_cost")),
    Experiment(
        name="sher-vs-ddpg-push",
        figure="SHER paper (arXiv 2002.02089) Fig. 4 and Table 1, FetchPush column: SHER (alpha 0.05) vs "
               "DDPG + HER, task defaults, 1 CPU per run",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions={"push": "--env-id FetchPush-v4"},
        budget=640_000, seeds=2, tag="eval/success_rate", cpus_per_run=1, analyses=("delta_s",)),
    Experiment(
        name="sher-alpha-push",
        figure="SHER paper Fig. 5 (temperature alpha; the paper used FetchSlide) on FetchPush: alpha 0.03 and 0.1, "
               "and alpha 0.05 from sher-vs-ddpg-push read up to the same 320,000 steps; 1 CPU per run",
        methods={"sher_alpha0.03": "sher --alpha 0.03", "sher_alpha0.1": "sher --alpha 0.1"},
        conditions={"push": "--env-id FetchPush-v4"}, budget=320_000, seeds=2, tag="eval/success_rate",
        cpus_per_run=1, compare=(("sher-vs-ddpg-push", "sher", "sher_alpha0.05"),), analyses=("delta_s",)),
    # Every Predator-Prey experiment of the two Crowder et al. papers; docs/experiments.md has their budget and cuts.
    Experiment(
        name="ppo-her-fig2-fast",
        figure="PPO-HER paper Fig. 2: PPO vs PPO-HER on all 12 prey x spawn conditions, fast configuration, runs "
               "stop at 95% success; the paper defaults beside it on 4 conditions (ppo-vs-ppo-her)",
        methods=PPO_AND_PPO_HER, conditions=TWELVE_CONDITIONS, flags=FAST_STOPPING, budget=150_000, seeds=5,
        compare=(("ppo-vs-ppo-her", "ppo_her", "ppo_her_defaults"), ("ppo-vs-ppo-her", "ppo", "ppo_defaults")),
        cut=f"5 seeds, not 16; 150,000 env steps per run, not 1,000,000; the paper defaults on 8 of the 12 "
            f"conditions; {PAPER_STOP}"),
    Experiment(
        name="ppo-her-lr-fast",
        figure="PPO-HER paper Fig. 4: learning rate 3e-3 / 3e-4 / 3e-5, with and without HER, random prey / random "
               "spawn, fast configuration, runs stop at 95% success",
        methods=with_and_without_her("--learning-rate", ["3e-3", "3e-4", "3e-5"], "lr"),
        conditions=RANDOM_RANDOM, flags=FAST_STOPPING, budget=300_000, seeds=3,
        cut=random_random_cut(300_000, paper_seeds=4)),
    Experiment(
        name="ppo-her-strategy-fast",
        figure="PPO-HER paper Fig. A1: HER strategy final / future / episode x relabelled copies k = 1, 2, 4, 8, "
               "random prey / random spawn, fast configuration, runs stop at 95% success",
        methods={f"{strategy}_k{k}": f"ppo_her --her-strategy {strategy} --her-k {k}"
                 for strategy in ("final", "future", "episode") for k in (1, 2, 4, 8)},
        conditions=RANDOM_RANDOM, flags=FAST_STOPPING, budget=150_000, seeds=3,
        cut=random_random_cut(150_000)),
    Experiment(
        name="ppo-her-radius-fast",
        figure="PPO-HER paper Fig. A2: capture radius 1 / 0.5 / 0.2 / 0.1, with and without HER, random prey / "
               "random spawn, fast configuration, runs stop at 95% success",
        methods=with_and_without_her("--radius", ["1", "0.5", "0.2", "0.1"], "radius"),
        conditions=RANDOM_RANDOM, flags=FAST_STOPPING, budget=300_000, seeds=3,
        cut=random_random_cut(300_000)),
    Experiment(
        name="ppo-her-box-fast",
        figure="PPO-HER paper Fig. A3: box half-width 10 / 20 / 30 / 40 / 50 (20-step episodes throughout), with "
               "and without HER, random prey / random spawn, fast configuration, runs stop at 95% success",
        methods=with_and_without_her("--grid-size", ["10", "20", "30", "40", "50"], "box"),
        conditions=RANDOM_RANDOM, flags=FAST_STOPPING, budget=300_000, seeds=3,
        cut=random_random_cut(300_000)),
    Experiment(
        name="ppo-her-dims-fast",
        figure="PPO-HER paper Figs. A4-A5: 2 to 6 dimensions, with (A4) and without (A5) HER, random prey / random "
               "spawn, fast configuration, runs stop at 95% success",
        methods=with_and_without_her("--num-dims", ["2", "3", "4", "5", "6"], "dims"),
        conditions=RANDOM_RANDOM, flags=FAST_STOPPING, budget=300_000, seeds=3,
        cut=random_random_cut(300_000, paper_seeds=4)),
    Experiment(
        name="off-policy-predator-prey",
        figure="PPO-HER paper Figs. 1-2 (its SAC + HER curves): her_ddpg.py and sher.py (alpha 0.05, and alpha "
               "learnt with --autotune) with their Predator-Prey task defaults on the 4 README conditions, in env "
               "steps and in wall-clock, summarised by training and by test success, beside PPO-HER at the "
               "paper defaults (ppo-vs-ppo-her) and at the fast configuration (ppo-her-fig2-fast); no early stop "
               "(the off-policy scripts have none)",
        methods={"her_ddpg": "her_ddpg", "sher": "sher", "sher_autotune": "sher --autotune"},  # alpha: fixed, learnt
        conditions=FOUR_CONDITIONS, flags="--env-id PredatorPrey-v0",
        budget=100_000, seeds=3, also_tags=("eval/success_rate",), analyses=("delta_s",),
        compare=(("ppo-vs-ppo-her", "ppo_her", "ppo_her_defaults"), ("ppo-her-fig2-fast", "ppo_her", "ppo_her_fast")),
        cut="8 of the 12 conditions; 3 seeds, not 16; 100,000 env steps per run, not 1,000,000; the "
            "paper's off-policy method was SB3's SAC with HER, not DDPG or SHER"),
    Experiment(
        name="meher-sratio-12-fast",
        figure="MEHER paper Figs. 2-3: S-ratio 0, 0.2, ..., 1 (random failures) on all 12 conditions, with the "
               "ranking metric; fast configuration, no early stop (the metric needs whole curves)",
        methods=sweep("meher", "--s-ratio", SRATIOS, "meher", "--failure random"),
        conditions=TWELVE_CONDITIONS, flags=FAST, budget=150_000, seeds=5, analyses=("sratio", "iteration_cost"),
        cut="S-ratios 0.1, 0.3, 0.5, 0.7 and 0.9 (meher-sratio-sweep-fast has all 11, on 2 conditions); 5 "
            "seeds, not 16; 150,000 env steps per run, not 1,000,000"),
    Experiment(
        name="meher-targeted-12-fast",
        figure="MEHER paper Figs. 4-5: S-ratio 0.2 / 0.4 / 0.6 / 0.8 with targeted (near-miss) failures on all 12 "
               "conditions, beside the same S-ratios with random failures (meher-sratio-12-fast); fast "
               "configuration, no early stop",
        methods={f"meher{d}targeted": f"meher --s-ratio {d} --failure targeted" for d in TARGETED_SRATIOS},
        conditions=TWELVE_CONDITIONS, flags=FAST, budget=150_000, seeds=5,
        compare=tuple(("meher-sratio-12-fast", f"meher{d}", f"meher{d}") for d in TARGETED_SRATIOS),
        cut="S-ratios 0, 0.1, 0.3, 0.5, 0.7, 0.9 and 1 (at 1 no failure copy is made, so the kind of "
            "failure does not matter); 5 seeds, not 16; 150,000 env steps per run, not 1,000,000"),
    Experiment(
        name="meher-fig6-12-fast",
        figure="MEHER paper Figs. 6-7: MEHER 0.6 with random and with targeted failures, PPO-HER-2-PPO, and PPO-HER "
               "(from ppo-her-fig2-fast) on all 12 conditions, with the computation each spends; fast "
               "configuration, runs stop at 95% success",
        methods={"meher0.6": "meher --s-ratio 0.6 --failure random",
                 "meher0.6targeted": "meher --s-ratio 0.6 --failure targeted", "ppo_her_2_ppo": "ppo_her_2_ppo"},
        conditions=TWELVE_CONDITIONS, flags=FAST_STOPPING, budget=150_000, seeds=5,
        compare=(("ppo-her-fig2-fast", "ppo_her", "ppo_her"),), analyses=("iteration_cost",),
        cut=f"5 seeds, not 16; 150,000 env steps per run, not 1,000,000; {PAPER_STOP}"),
    Experiment(
        name="ppo-her-2-ppo-threshold-fast",
        figure="MEHER paper, open question 2, on its Figs. 6-7 line of PPO-HER-2-PPO (HER off at 50% success): "
               "HER off at 30% / 50% / 70% success, beside PPO-HER that never switches (from ppo-her-fig2-fast); "
               "random prey and random_direction prey (where PPO-HER stalls), random spawn, fast configuration, "
               "runs stop at 95% success",
        methods=sweep("ppo_her_2_ppo", "--switch-threshold", ["0.3", "0.5", "0.7"], "switch"),
        conditions={c: TWELVE_CONDITIONS[c] for c in ("random-random", "random_direction-random")},
        flags=FAST_STOPPING, budget=150_000, seeds=3,
        compare=(("ppo-her-fig2-fast", "ppo_her", "ppo_her"),), analyses=("iteration_cost",),
        cut="the paper has no such figure (it is its open question 2); two conditions, 3 seeds"),
    # The PPO scripts on the Fetch tasks (PPO-HER paper Fig. 5, the MEHER paper's first open question), with the
    # authors' Fetch options: initial policy standard deviation 0.6 and Adam weight decay (they tried 1e-2 to 1e-5)
    Experiment(
        name="ppo-her-fetch-reach-weight-decay",
        figure="PPO-HER paper Fig. 5's weight decay 1e-2 / 1e-3 / 1e-4 / 1e-5 (and none), PPO-HER on FetchReach, "
               "initial policy std 0.6, runs stop at 90% success: picks the weight decay of the other Fetch runs",
        methods=sweep("ppo_her", "--weight-decay", ["0", "1e-2", "1e-3", "1e-4", "1e-5"], "ppo_her_wd"),
        conditions={"reach": "--env-id FetchReach-v4"}, flags=f"{FETCH_PPO} --stop-at-success 0.9",
        budget=300_000, seeds=2,
        cut="FetchReach only, 2 seeds, not 4; 300,000 env steps per run, not 1,000,000; runs stop at 90% success "
            "(the paper's Fetch runs did not stop early)"),
    Experiment(
        name="ppo-fetch-reach",
        figure="PPO-HER paper Fig. 5 (FetchReach) and the MEHER paper's open question 1: PPO, PPO-HER, MEHER 0.6 "
               "and PPO-HER-2-PPO on FetchReach, initial policy std 0.6, weight decay 1e-4, runs stop at 90% "
               "success",
        methods={**FETCH_METHODS, "ppo_her_2_ppo": "ppo_her_2_ppo"},
        conditions={"reach": "--env-id FetchReach-v4"}, flags=f"{FETCH_WEIGHT_DECAY} --stop-at-success 0.9",
        budget=300_000, seeds=3,
        cut="3 seeds, not 4; 300,000 env steps per run, not 1,000,000; runs stop at 90% success (the paper's "
            "Fetch runs did not stop early); one weight decay, not four"),
    Experiment(
        name="off-policy-fetch-reach",
        figure="PPO-HER paper Fig. 5 (FetchReach), its off-policy side: DDPG + HER and SHER (alpha 0.05) with their "
               "task defaults, 1 CPU per run, summarised by training and by test success, beside ppo-fetch-reach "
               "under the same load (two runs at a time)",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions={"reach": "--env-id FetchReach-v4"},
        budget=10_000, seeds=3, also_tags=("eval/success_rate",), analyses=("delta_s",),
        cut="the papers' FetchReach runs were longer; 10,000 env steps (the scripts' FetchReach default) reach 90% "
            "test success"),
    Experiment(
        name="ppo-fetch-push",
        figure="PPO-HER paper Fig. 5 (FetchPush): PPO vs PPO-HER, and MEHER 0.6, on FetchPush, initial policy std "
               "0.6, weight decay 1e-4, 1,000,000 env steps, no early stop",
        methods=FETCH_METHODS, conditions={"push": "--env-id FetchPush-v4"}, flags=FETCH_WEIGHT_DECAY, budget=1_000_000,
        seeds=2, cut="2 seeds, not 4; one weight decay, not four; FetchSlide and FetchPickAndPlace are "
                     "ppo-fetch-slide-pick"),
    Experiment(
        name="ppo-fetch-slide-pick",
        figure="PPO-HER paper Fig. 5 (FetchSlide, FetchPickAndPlace): PPO vs PPO-HER, initial policy std 0.6, "
               "weight decay 1e-4, 1,000,000 env steps, no early stop",
        methods=PPO_AND_PPO_HER, conditions=FETCH_HARD, flags=FETCH_WEIGHT_DECAY, budget=1_000_000, seeds=2,
        cut="2 seeds, not 4; one weight decay, not four; MEHER 0.6 not run (it waits on PPO-HER learning FetchPush)"),
    # SHER's benchmark beyond FetchPush; docs/experiments.md has the budget.
    Experiment(
        name="sher-vs-ddpg-pick-slide",
        figure="SHER paper Fig. 4 and Table 1, FetchPickAndPlace and FetchSlide columns: SHER (alpha 0.05) vs "
               "DDPG + HER, task defaults, 2 CPUs per run, success threshold 50%",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions=FETCH_HARD, budget=1_500_000, seeds=2,
        tag="eval/success_rate", threshold=0.5, cpus_per_run=2, analyses=("delta_s",),
        cut="CHER, the paper's third method (not implemented here); 2 seeds, 1,500,000 env steps per run"),
    Experiment(
        name="sher-alpha-slide",
        figure="SHER paper Fig. 5: temperature alpha 0.03 and 0.1 on FetchSlide, and alpha 0.05 from "
               "sher-vs-ddpg-pick-slide read up to the same 750,000 steps; 2 CPUs per run, success threshold 50%",
        methods={"sher_alpha0.03": "sher --alpha 0.03", "sher_alpha0.1": "sher --alpha 0.1"},
        conditions={"slide": FETCH_HARD["slide"]}, budget=750_000, seeds=2, tag="eval/success_rate", threshold=0.5,
        cpus_per_run=2, compare=(("sher-vs-ddpg-pick-slide", "sher", "sher_alpha0.05"),), analyses=("delta_s",),
        cut="2 seeds, 750,000 env steps per run (half of sher-vs-ddpg-pick-slide's budget)"),
    Experiment(
        name="sher-vs-ddpg-hand",
        figure="SHER paper Fig. 4 and Table 1, Hand columns: SHER (alpha 0.05) vs DDPG + HER on HandReach, "
               "HandManipulateBlock, HandManipulateEgg and HandManipulatePen (the newest ids gymnasium-robotics "
               "registers), task defaults, 2 CPUs per run, success threshold 50%",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions=HAND, budget=640_000, seeds=1,
        tag="eval/success_rate", threshold=0.5, cpus_per_run=2, analyses=("delta_s",),
        cut="CHER (not implemented here); one seed, 640,000 env steps per run (16 epochs of HandReach, 8 "
            "of the 100-step HandManipulate tasks): the start of learning, not its end"),
    Experiment(
        name="sher-alpha-hand-reach",
        figure="SHER paper Fig. 5 and Sec. 5.4 (the temperature alpha must suit the task) on HandReach, where alpha 0.05 leaves the 20-dim "
               "policy at maximal entropy: alpha 0.01 (0.05 x 4 / 20, the same bonus per action dimension as "
               "0.05 on Fetch) and alpha learnt with --autotune, beside sher-vs-ddpg-hand's SHER (alpha 0.05) and "
               "DDPG + HER read up to the same 320,000 steps; 1 CPU per run, success threshold 50%",
        methods={"sher_alpha0.01": "sher --alpha 0.01", "sher_autotune": "sher --autotune"},
        conditions={"hand_reach": HAND["hand_reach"]}, budget=320_000, seeds=1, tag="eval/success_rate",
        threshold=0.5, cpus_per_run=1, analyses=("delta_s",),
        compare=(("sher-vs-ddpg-hand", "sher", "sher_alpha0.05"), ("sher-vs-ddpg-hand", "her_ddpg", "her_ddpg")),
        cut="a diagnostic beside the paper's grid: one seed, 320,000 env steps (8 HandReach epochs)"),
]


# ---------------------------------------------------------------------------------------------------------------
# Checking input
# ---------------------------------------------------------------------------------------------------------------
class BadInput(Exception):
    """A one-line error for the user (exit status 2)."""


def check_definitions(experiments) -> dict:
    """{name: experiment}; a malformed definition is a BadInput naming it."""
    table = {}
    for e in experiments:
        problems = ["duplicate name" if e.name in table else "",
                    "" if e.budget > 0 and e.seeds > 0 and e.cpus_per_run > 0 else "budget, seeds, cpus must be > 0",
                    "" if set(e.analyses) <= set(ANALYSES) else f"analyses must be among {', '.join(ANALYSES)}"]
        for label in [*e.methods, *e.conditions]:
            if not label or not set(label) <= LABEL_CHARACTERS or "__" in label:  # "__" separates a log's name
                problems.append(f"label {label!r} may hold only letters, digits, '.', '-' and single '_'")
        for command in e.methods.values():
            script = shlex.split(command)[0]
            if not (SCRIPTS / f"{script}.py").is_file():
                problems.append(f"no script algorithms/{script}.py")
        problems = [p for p in problems if p]
        if problems:
            raise BadInput(f"experiment {e.name!r}: {'; '.join(problems)}")
        table[e.name] = e
    return table


def load_definitions(extra_file: str | None) -> dict:
    experiments = list(EXPERIMENTS)
    if extra_file:
        import runpy

        if not Path(extra_file).is_file():
            raise BadInput(f"no definitions file {extra_file}")
        extra = runpy.run_path(extra_file).get("EXPERIMENTS")
        if not isinstance(extra, list):
            raise BadInput(f"{extra_file} must define EXPERIMENTS, a list of Experiment")
        experiments += extra
    return check_definitions(experiments)


def find(experiments: dict, name: str) -> Experiment:
    if name not in experiments:
        raise BadInput(f"unknown experiment {name!r}; valid: {', '.join(experiments)}")
    return experiments[name]


# ---------------------------------------------------------------------------------------------------------------
# Ray: where the runs go
# ---------------------------------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_address(address: str) -> str:
    """host:port of the cluster (`auto`: the one in RAY_ADDRESS or the last `ray start` on this machine); a
    BadInput, within seconds, when nothing listens there."""
    if address.startswith("ray://"):
        return address  # Ray Client: Ray checks it
    if address == "auto":
        recorded = Path(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp") / "ray" / \
            "ray_current_cluster"  # where `ray start` records its address, as Ray looks for it
        address = os.environ.get("RAY_ADDRESS") or (recorded.read_text().strip() if recorded.is_file() else "")
        if not address:
            raise BadInput("--address auto: no running Ray cluster found (start one with `ray start --head`)")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"--address {address!r}: expected host:port, auto or ray://host:port")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
    except OSError as error:
        raise BadInput(f"--address {address}: no Ray cluster there ({error.strerror or error})") from None
    return address


def start_ray(address: str | None):
    """Ray, started on this machine (no address) or joined (address); returns the module."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    if address is None or is_loopback(address.rpartition(":")[0]):
        # Ray replaces a loopback address by the host's own address unless it believes it is a one-machine
        # instance; with this it keeps every socket, and every connection, on 127.0.0.1. Read when ray is imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import logging

    import ray

    settings = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    with captured_stderr() as messages:  # Ray's C++ side repeats each failed connection attempt on stderr
        try:
            if address is None:  # its processes ignore Ctrl-C and hang-ups: the driver stops the runs in order
                with ignored_signals(signal.SIGINT, signal.SIGHUP):
                    ray.init(address="local", num_cpus=os.cpu_count(), **settings)
            else:
                ray.init(address=address, **settings)
            error = None
        except Exception as raised:
            error = raised
    if error is None:
        sys.stderr.write(messages())
        return ray
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    reasons = [line.rsplit("RPC error: ", 1)[-1] for line in messages().splitlines() if "RPC error" in line]
    hint = " (give the driver the cluster's token: RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)" if any(
        "AuthToken" in r for r in reasons) else ""
    raise BadInput(f"could not start or join {where}: {(reasons or str(error).strip().splitlines())[-1]}{hint}")


@contextlib.contextmanager
def ignored_signals(*signals):
    """In the block, `signals` are ignored, also by the processes started in it (an inherited disposition)."""
    main = threading.current_thread() is threading.main_thread()  # the only thread that may set handlers
    previous = [signal.signal(number, signal.SIG_IGN) for number in signals] if main else []
    try:
        yield
    finally:
        for number, handler in zip(signals, previous):
            signal.signal(number, handler)


@contextlib.contextmanager
def captured_stderr():
    """Collects what this process and its libraries write to file descriptor 2 in the block; yields a function
    that returns it once the block has ended."""
    sys.stderr.flush()
    saved, captured = os.dup(2), []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: "".join(captured)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def node_cpus(ray) -> list[float]:
    return [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]]


# ---------------------------------------------------------------------------------------------------------------
# One run: the Ray task
# ---------------------------------------------------------------------------------------------------------------
# The script is started through this tiny program, which asks Linux to kill it if the task's worker process dies
# (a cancelled or lost task leaves no orphan training run), unblocks Ctrl-C (SIGINT, which Ray's worker blocks and
# would pass on blocked), then becomes `python algorithms/<script>.py ...`.
EXEC_WITH_PARENT_DEATH_SIGNAL = (
    "import ctypes, os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass  # not Linux: the task kills the script itself when it is cancelled\n"
    "if os.getppid() != int(os.environ.pop('RUN_PARENT_PID')):\n"
    "    sys.exit(137)  # the worker died before the signal was armed\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")


def execute_run(argv: list, code: dict, cpus: int, workdir: str, grace_seconds: float = 20.0) -> dict:
    """Runs `argv` (`python algorithms/<script>.py ...`) in `workdir` (a relative one: under this node's temporary
    folder) holding `code` (the scripts and the env package), with `cpus` threads; returns its exit code, seconds,
    and the folder's output as tar.gz bytes. A checkpoint left in the folder by an earlier attempt is resumed. The
    folder is deleted afterwards unless the run did not finish and has a checkpoint; a cancelled task first sends
    the script Ctrl-C, which makes it write its checkpoint, and kills it after `grace_seconds`."""
    import io
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import tarfile
    import tempfile
    import time

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ray's cancel raises KeyboardInterrupt only with this
    workdir = os.path.join(tempfile.gettempdir(), workdir)  # an absolute workdir stays as it is
    os.makedirs(workdir, exist_ok=True)
    resume = resume_flags(workdir, code, argv[1])
    afresh = not resume and os.path.isdir(os.path.join(workdir, "runs"))  # an attempt left no checkpoint to resume
    if afresh:
        shutil.rmtree(os.path.join(workdir, "runs"))
    for relative, data in code.items():
        os.makedirs(os.path.dirname(os.path.join(workdir, relative)), exist_ok=True)
        with open(os.path.join(workdir, relative), "wb") as f:
            f.write(data)
    threads = str(cpus)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
               PYTHONUNBUFFERED="1", RUN_PARENT_PID=str(os.getpid()),
               PYTHONPATH=os.pathsep.join(p for p in (workdir, os.environ.get("PYTHONPATH")) if p))

    def attempt(extra: list, note: str) -> tuple[int, bytes]:
        """The script's exit code and what it printed; console.log keeps what earlier attempts printed."""
        with open(os.path.join(workdir, "console.log"), "ab") as console:
            console.write(f"experiments.py: {note}\n".encode() if note else b"")
            console.flush()
            begin = console.tell()
            process = subprocess.Popen([sys.executable, "-c", EXEC_WITH_PARENT_DEATH_SIGNAL, *argv[1:], *extra],
                                       cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=console,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                while process.poll() is None:
                    time.sleep(0.2)  # polling, not wait(): a cancel's KeyboardInterrupt lands here at once
            except BaseException:
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the script ends its iteration with a checkpoint
                try:
                    process.wait(grace_seconds)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                raise
        with open(os.path.join(workdir, "console.log"), "rb") as console:
            console.seek(begin)
            return process.returncode, console.read()

    started = time.time()
    returncode, output = attempt(resume, f"resuming from {resume[1]}/checkpoint.pt" if resume else
                                 "no checkpoint of these scripts to resume: starting afresh" if afresh else "")
    # a one-line error after --resume is the script refusing the checkpoint (corrupt, or at the end of the budget):
    # the same flags were accepted without it
    if resume and returncode != 0 and b"\nerror: " in b"\n" + output:
        shutil.rmtree(os.path.join(workdir, "runs"), ignore_errors=True)
        returncode, _ = attempt([], "the checkpoint was refused: starting afresh")
    seconds = time.time() - started
    archive = io.BytesIO()
    skip_checkpoint = lambda info: None if info.name.endswith("checkpoint.pt") else info  # noqa: E731 (stays here)
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in sorted(os.listdir(workdir)):
            if name not in {os.path.dirname(relative) for relative in code}:
                tar.add(os.path.join(workdir, name), arcname=name, filter=skip_checkpoint)
    if returncode == 0 or not resume_flags(workdir, code, argv[1]):
        shutil.rmtree(workdir)
    return dict(returncode=returncode, seconds=seconds, node=socket.gethostname(), workdir=workdir,
                resumed=bool(resume), archive=archive.getvalue())


def resume_flags(workdir: str, code: dict, script: str) -> list:
    """`--resume runs/<folder>` when `workdir` holds one run folder with a checkpoint.pt, left by the same
    `script` and env code as in `code` (the files of the earlier attempt are still there); otherwise none."""
    import glob
    import os

    def unchanged(relative: str) -> bool:
        path = os.path.join(workdir, relative)
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            return f.read() == code[relative]

    checkpoints = glob.glob(os.path.join(glob.escape(workdir), "runs", "*", "checkpoint.pt"))
    if len(checkpoints) != 1 or not all(unchanged(r) for r in code if r == script or r.startswith("envs")):
        return []
    return ["--resume", os.path.relpath(os.path.dirname(checkpoints[0]), workdir)]


def code_snapshot() -> dict:
    """{relative path: bytes} of algorithms/*.py and envs/**/*.py: what a run needs besides the requirements."""
    files = [*sorted(SCRIPTS.glob("*.py")),
             *sorted(p for p in (ROOT / "envs").rglob("*.py") if "__pycache__" not in p.parts)]
    return {str(path.relative_to(ROOT)): path.read_bytes() for path in files}


def save_run(run: Run, result: dict, folder: Path, info: dict) -> Path:
    """Unpacks a run's output as folder/<run id>/ (its TensorBoard folder's contents, console.log) and writes the
    marker: finished.json after exit 0, failed.json otherwise. The folder appears complete or not at all."""
    from run_logs import FAILED, MARKER

    incoming = folder / f".incoming-{run.run_id}"
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    if result.get("archive"):
        with tarfile.open(fileobj=io.BytesIO(result["archive"]), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths out of the folder
                tar.extractall(incoming, filter="data")
            else:
                tar.extractall(incoming)
    logs = [p for p in (incoming / "runs").glob("*") if p.is_dir()] if (incoming / "runs").is_dir() else []
    if len(logs) == 1:  # flatten runs/<env>__<run id>__<seed>__<time>/ into the run folder
        for item in logs[0].iterdir():
            item.rename(incoming / item.name)
        shutil.rmtree(incoming / "runs")
        info.update(env_id=logs[0].name.split("__")[0], tensorboard_run_name=logs[0].name)
    info.update(returncode=result.get("returncode"), wall_seconds=round(result.get("seconds", 0.0), 1),
                node=result.get("node"), workdir=result.get("workdir"), resumed=result.get("resumed"),
                error=result.get("error"),
                ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    (incoming / (MARKER if result.get("returncode") == 0 else FAILED)).write_text(json.dumps(info, indent=1) + "\n")
    target = folder / run.run_id
    shutil.rmtree(target, ignore_errors=True)
    os.replace(incoming, target)
    return target


def last_lines(folder: Path, n=6) -> list[str]:
    path = folder / "console.log"
    lines = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
    return lines[-n:]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------------------------
def is_finished(folder: Path, run: Run) -> bool:
    from run_logs import MARKER

    return (folder / run.run_id / MARKER).is_file()


def run_experiment(experiment: Experiment, seeds=None, address=None, cpus_per_run=None, logs=LOGS,
                   dry_run=False, methods=None, conditions=None) -> int:
    """Runs every run of `experiment` that has not finished (of `methods` and `conditions` only, if given); returns
    the exit status (0, 1: some failed, 130: interrupted). Bad input raises BadInput."""
    cpus = cpus_per_run or experiment.cpus_per_run
    if seeds is not None and seeds < 1:
        raise BadInput("--seeds must be at least 1")
    if cpus < 1:
        raise BadInput("--cpus-per-run must be at least 1")
    if address is None and cpus > os.cpu_count():
        raise BadInput(f"--cpus-per-run {cpus} is more than this machine's {os.cpu_count()} CPUs")
    for flag, chosen, valid in (("methods", methods, experiment.methods), ("conditions", conditions,
                                                                          experiment.conditions)):
        unknown = sorted(set(chosen or ()) - set(valid))
        if unknown:
            raise BadInput(f"--{flag}: {experiment.name} has no {flag[:-1]} {', '.join(unknown)}; valid: "
                           f"{', '.join(valid)}")
    folder = Path(logs) / experiment.name
    runs = [run for run in experiment.runs(seeds) if (not methods or run.method in methods)
            and (not conditions or run.condition in conditions)]
    todo = [run for run in runs if not is_finished(folder, run)]
    if dry_run:
        code = code_snapshot()
        for run in todo:  # the --resume a run would get here (on a cluster, its node would know)
            workdir = Path(work_folder(folder, run, address))
            resume = resume_flags(str(workdir), code, run.argv(cpus)[1]) if address is None else []
            resume = [resume[0], str(workdir / resume[1])] if resume else []  # typed from the repository root
            print(f"OMP_NUM_THREADS={cpus} {shlex.join(run.argv(cpus) + resume)}")
        print(f"# {experiment.name}: {len(todo)} of {len(runs)} runs to run, {len(runs) - len(todo)} finished")
        return 0
    if not todo:
        print(f"{experiment.name}: all {len(runs)} runs finished, nothing to run ({folder})")
        return 0
    if address is not None:
        address = resolve_address(address)
    ray = start_ray(address)
    try:
        return run_on_ray(ray, experiment, todo, cpus, folder, len(runs), address)
    finally:
        ray.shutdown()
        with contextlib.suppress(OSError):
            (folder / ".work").rmdir()  # once no run has a work folder left


def work_folder(folder: Path, run: Run, address: str | None) -> str:
    """Where a run's task works (kept while the run has a checkpoint to resume): beside the logs on this machine,
    or, on a cluster, under the temporary folder of the node that runs it (relative: execute_run completes it)."""
    if address is None:
        return str((folder / ".work" / run.run_id).resolve())
    return os.path.join("hindsight-runs", run.experiment, run.run_id)


def run_on_ray(ray, experiment, todo, cpus, folder, total, address=None) -> int:
    from tqdm import tqdm

    cpus_of_nodes = node_cpus(ray)
    if cpus > max(cpus_of_nodes, default=0):
        raise BadInput(f"--cpus-per-run {cpus}: no node of the Ray cluster has that many CPUs "
                       f"(largest: {max(cpus_of_nodes, default=0):g})")
    capacity = sum(int(c // cpus) for c in cpus_of_nodes)
    if threading.current_thread() is threading.main_thread():
        for stop in (signal.SIGTERM, signal.SIGHUP):  # stopped or hung up: end as after Ctrl-C (after ray.init,
            signal.signal(stop, interrupt)             # which installs its own handlers)
    if __name__ != "__main__":  # imported (tests, benchmarks): send the task's code, not a module name to import
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    code = code_snapshot()
    code_ref = ray.put(code)
    common = dict(experiment=experiment.name, cpus_per_run=cpus, git_commit=git_commit(),
                  code_sha256=hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(code.items()))).hexdigest())
    task = ray.remote(num_cpus=cpus)(execute_run)
    pending = {task.remote(run.argv(cpus), code_ref, cpus, work_folder(folder, run, address)): run for run in todo}
    print(f"{experiment.name}: {len(todo)} of {total} runs to run, {capacity} at a time; logs in {folder}",
          flush=True)
    done, failed = [], []
    bar = tqdm(total=len(todo), unit="run", desc=experiment.name, dynamic_ncols=True, mininterval=1.0)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                run = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:  # the task itself failed: its worker or node died
                    result = dict(returncode=None, error=str(error).strip().splitlines()[0])
                info = dict(common, run_id=run.run_id, method=run.method, condition=run.condition, seed=run.seed,
                            script=run.script, flags=list(run.flags), config_hash=run.config_hash,
                            command=f"OMP_NUM_THREADS={cpus} {shlex.join(run.argv(cpus))}")
                target = save_run(run, result, folder, info)
                (done if result.get("returncode") == 0 else failed).append((run, target, result))
            bar.set_postfix(done=len(done), running=min(len(pending), capacity), failed=len(failed), refresh=False)
            bar.update(len(ready))
    except KeyboardInterrupt:
        bar.close()
        cancel(ray, list(pending))
        resumable = "those with a checkpoint on their node" if address else sum(
            bool(resume_flags(work_folder(folder, run, None), code, run.argv(cpus)[1])) for run in pending.values())
        print(f"interrupted: {len(done)} runs finished and kept, {len(failed)} failed, {len(pending)} stopped "
              f"({resumable} will resume from their checkpoint); `run {experiment.name}` again runs the rest",
              file=sys.stderr)
        return 130
    bar.close()
    print(f"{experiment.name}: {len(done)} runs finished, {len(failed)} failed ({folder})")
    for run, target, result in failed:
        why = f"exit {result['returncode']}" if result.get("returncode") is not None else result.get("error")
        print(f"failed: {run.run_id} ({why}): {shlex.join(run.argv(cpus))}", file=sys.stderr)
        for line in last_lines(target):
            print(f"    {line}", file=sys.stderr)
    return 1 if failed else 0


def cancel(ray, refs, grace_seconds=30.0):
    """Cancel the runs still going: first politely (the task sends its script Ctrl-C, which writes a checkpoint,
    and kills it if it has not ended within 20 s), then by killing the workers of those that have not ended after
    `grace_seconds`."""
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:
            pass
    deadline = time.time() + grace_seconds
    remaining = list(refs)
    while remaining and time.time() < deadline:
        try:
            _, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.5)
        except Exception:
            break
    for ref in remaining:
        try:
            ray.cancel(ref, force=True)
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------
def definition_runs(experiment: Experiment, logs: Path, experiments: dict):
    """The finished runs that belong to the current definition (any number of seeds), and the borrowed ones of
    `experiment.compare`, relabelled; plus how many finished runs in the folder no longer match the definition."""
    from run_logs import load_runs

    def matching(source: Experiment, methods: dict) -> tuple[list, int]:
        templates = {(r.method, r.condition): r for r in source.runs(seeds=1)}
        loaded = load_runs(Path(logs) / source.name)
        keep = []
        for run in loaded:
            template = templates.get((run.method, run.condition))
            if template and template.condition in experiment.conditions and run.method in methods and \
                    replace(template, seed=run.seed).run_id == run.run_id:
                run.method = methods[run.method]
                keep.append(run)
        return keep, len(loaded) - len(keep)

    runs, stale = matching(experiment, {m: m for m in experiment.methods})
    for name, method, label in experiment.compare:
        runs += matching(find(experiments, name), {method: label})[0]
    return runs, stale


def write_report(experiment: Experiment, logs=LOGS, results=RESULTS, experiments=None) -> str:
    """The report's markdown (also written to results/NAME/table.md, beside the curves' PNGs)."""
    from plot_results import markdown_table, plot_curves, summarise

    runs, stale = definition_runs(experiment, logs, experiments or {experiment.name: experiment})
    if not runs:
        raise BadInput(f"no finished runs of {experiment.name} under {Path(logs) / experiment.name}; "
                       f"run `python benchmarks/experiments.py run {experiment.name}` first")
    out = Path(results) / experiment.name
    out.mkdir(parents=True, exist_ok=True)
    methods = [*experiment.methods, *[label for _, _, label in experiment.compare]]
    conditions = [c for c in experiment.conditions if any(run.condition == c for run in runs)]  # none: no curves
    rows = summarise(runs, experiment.tag, experiment.threshold, experiment.budget, methods, conditions)
    plots = plot_curves(runs, experiment.tag, experiment.budget, out, methods, conditions)
    borrowed = "".join(f" {label} is method {method} of `{name}`." for name, method, label in experiment.compare)
    parts = [
        f"# {experiment.name}",
        f"{experiment.figure}.{borrowed}" + (f" Cut from the paper: {experiment.cut}." if experiment.cut else ""),
        f"Reproduce: `python benchmarks/experiments.py run {experiment.name}` then "
        f"`python benchmarks/experiments.py report {experiment.name}`. {len(runs)} finished runs, budget "
        f"{experiment.budget:,} env steps, summarised by `{experiment.tag}`.",
        f"IQM across seeds [95% bootstrap CI]; a run that never reached {experiment.threshold:g} counts at the budget "
        f"(env steps) or at the minutes it ran; \"all\" rows pool the conditions (bootstrap stratified by condition). "
        f"Minutes are wall-clock and depend on what else shared the machine.",
        markdown_table(rows, experiment.threshold, experiment.tag),
        " ".join(f"![]({os.path.basename(p)})" for p in plots),
    ]
    for tag in experiment.also_tags:
        also = summarise(runs, tag, experiment.threshold, experiment.budget, methods, conditions)
        prefix = tag.replace("/", "-") + "-"
        also_plots = plot_curves([r for r in runs if r.scalar(tag)], tag, experiment.budget, out, methods, conditions,
                                 prefix=prefix)
        parts += [f"## Summarised by `{tag}`", markdown_table(also, experiment.threshold, tag) if also else
                  f"(no run logs `{tag}`)", " ".join(f"![]({os.path.basename(p)})" for p in also_plots)]
    if "sratio" in experiment.analyses:
        from sratio_metric import report as sratio_report

        parts += ["## S-ratio metric", sratio_report(runs, experiment.threshold, experiment.budget, str(out))]
    if "iteration_cost" in experiment.analyses:
        from iteration_cost import cost_table

        parts += ["## Computation per iteration", cost_table(runs, experiment.budget, methods, conditions)]
    if "delta_s" in experiment.analyses:
        from delta_s_table import delta_s_table

        parts += ["## Mean delta_S (SHER paper, Table 1)", delta_s_table(runs, experiment.budget, methods)]
    if stale:
        parts.append(f"({stale} finished runs in {Path(logs) / experiment.name} do not match the current definition "
                     f"and are left out.)")
    text = "\n\n".join(parts) + "\n"
    (out / "table.md").write_text(text)
    return text


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------
def interrupt(signum, frame):
    raise KeyboardInterrupt


class OneLineErrors(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message}\n")


def main(argv=None) -> int:
    parser = OneLineErrors(description=__doc__.splitlines()[0])
    common = OneLineErrors(add_help=False)
    common.add_argument("--definitions", metavar="FILE", help="a Python file whose EXPERIMENTS list adds definitions")
    common.add_argument("--logs", default=str(LOGS), metavar="DIR", help="where run folders go (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrors)
    commands.add_parser("list", parents=[common], help="one line per experiment: name, runs, paper figure")
    run = commands.add_parser("run", parents=[common], help="run every run of NAME that has not finished")
    run.add_argument("name")
    run.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default: the definition's)")
    run.add_argument("--address", default=None, help="a Ray cluster: host:port or auto (default: this machine)")
    run.add_argument("--cpus-per-run", type=int, default=None, help="CPUs and torch threads of each run")
    run.add_argument("--methods", type=lambda text: text.split(","), default=None, metavar="M1,M2",
                     help="run only these of the definition's methods (default: all)")
    run.add_argument("--conditions", type=lambda text: text.split(","), default=None, metavar="C1,C2",
                     help="run only these of the definition's conditions (default: all)")
    run.add_argument("--dry-run", action="store_true", help="print the command lines; run nothing")
    report = commands.add_parser("report", parents=[common], help="tables and curves of NAME's finished runs")
    report.add_argument("name")
    report.add_argument("--results", default=str(RESULTS), metavar="DIR",
                        help="where table.md and the PNGs go, in DIR/NAME (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "list" or getattr(args, "dry_run", False):  # no Ray here: `| head` may close the pipe
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        experiments = load_definitions(args.definitions)
        if args.command == "list":
            width = max(map(len, experiments))
            for e in experiments.values():
                print(f"{e.name:<{width}}  {len(e.runs()):>4} runs  {e.figure}")
            return 0
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
