"""The experiment definitions: every experiment behind the docs' results, one per paper figure or study, as data.

An `Experiment` says which script runs, with which flags (the methods compared x the conditions they are compared
on), how many seeds, the env-step budget, which scalar and threshold summarise a run, which paper figure it
reproduces and about how long it takes. `Run` is one run of it: its command line and its id. The Ray runner
(ray_runner.py) runs them, the report (report.py) summarises their records; benchmarks/experiments.py is the
command line. See docs/experiments.md.
"""
import hashlib
import shlex
from dataclasses import dataclass, replace  # noqa: F401 (replace: for definitions files and tests)
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "experiments"
RESULTS = ROOT / "docs" / "results"
SCRIPTS = ROOT / "algorithms"

THREADED_SCRIPTS = ("her_ddpg", "sher")  # the scripts with a --torch-threads flag
# --checkpoint-every of each script's runs: PPO iterations (10 take about a minute at the paper defaults, seconds in
# the fast configuration, whose checkpoint is 0.3 MB) or her_ddpg / sher epochs (a few minutes on Fetch)
CHECKPOINT_EVERY = {"ppo_her": 10, "meher": 10, "ppo_her_2_ppo": 10, "her_ddpg": 1, "sher": 1}
ANALYSES = ("sratio", "iteration_cost", "delta_s", "best_and_final")
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
    also_thresholds: tuple = ()  # more levels of `tag`, each with a table of steps and minutes to it
    cpus_per_run: int = 1  # the default of --cpus-per-run
    analyses: tuple = ()  # extra report sections, from ANALYSES
    compare: tuple = ()  # (experiment, method, label): finished runs of another experiment, reported beside these
    pairs: tuple = ()  # (label A, label B): methods the report compares condition by condition (separated or not)
    pairs_summed: tuple = ()  # (label A, label B): the side-by-side table ends with every pair's counts added up
    cut: str = ""  # where it departs from the paper's grid, seeds and budget (shown in the report)
    hours: float = 0.0  # about how long all its runs take on a 2-core machine (`list`; docs/experiments.md)

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
NO_STOP = "--stop-at-success 1.1"  # meher.py stops at 95% success unless told otherwise
PPO_HER_AT_PAPER_DEFAULTS = ("ppo-vs-ppo-her", "ppo_her", "ppo_her")  # compared with, on random-random


def random_random_cut(budget: int, paper_seeds: int = 16, seeds: int = 3) -> str:
    """What a one-condition (random prey / random spawn) study cuts from the paper's grid."""
    return (f"11 of the 12 conditions; {seeds} seeds, not {paper_seeds}; {budget:,} env steps per run, not 1,000,000; "
            f"{PAPER_STOP}")
SRATIOS = [f"{tenths / 10:.1f}" for tenths in range(11)]  # the MEHER paper's grid: 0, 0.1, ..., 1
TARGETED_SRATIOS = SRATIOS[:-1]  # at 1 no failure copy is made: targeted and random failures are one method
FETCH_PPO = "--init-logstd -0.51"  # log 0.6: the PPO-HER paper's initial policy std on Fetch
FETCH_WEIGHT_DECAY = f"{FETCH_PPO} --weight-decay 1e-4"  # the middle of the paper's 1e-2 .. 1e-5
FETCH_METHODS = {**PPO_AND_PPO_HER, "meher0.6": "meher --s-ratio 0.6"}  # runs that stop at a success rate
FETCH_HARD = {"pickandplace": "--env-id FetchPickAndPlace-v4", "slide": "--env-id FetchSlide-v4"}
HAND = {"hand_reach": "--env-id HandReach-v3", "hand_block": "--env-id HandManipulateBlock-v1",
        "hand_egg": "--env-id HandManipulateEgg-v1", "hand_pen": "--env-id HandManipulatePen-v1"}


def with_and_without_her(flag: str, values, label: str) -> dict:
    """PPO-HER and plain PPO at every value of one flag: {ppo_her_<label><value>: ..., ppo_<label><value>: ...}."""
    with_her = sweep("ppo_her", flag, values, f"ppo_her_{label}")
    without_her = sweep("ppo_her", flag, values, f"ppo_{label}", "--no-her")
    return {**with_her, **without_her}


def with_and_without_her_fast(name: str, flag: str, values, label: str, hours: float, figure: str,
                              paper_seeds: int = 16) -> "Experiment":
    """A figure that varies one setting, with and without HER, on random prey / random spawn: fast configuration,
    runs stop at 95% success, 5 seeds, 300,000 env steps."""
    return Experiment(name=name, figure=figure, methods=with_and_without_her(flag, values, label),
                      conditions=RANDOM_RANDOM, flags=FAST_STOPPING, budget=300_000, hours=hours, seeds=5,
                      cut=random_random_cut(300_000, paper_seeds, seeds=5))


EXPERIMENTS = [
    Experiment(
        name="ppo-vs-ppo-her",
        figure="PPO-HER paper (arXiv 2410.22524) Fig. 2: PPO vs PPO-HER on 4 of its 12 prey x spawn conditions, "
               "paper defaults, runs stop at 95% success",
        methods=PPO_AND_PPO_HER, conditions=FOUR_CONDITIONS, flags="--stop-at-success 0.95", budget=300_000, hours=2.5,
        seeds=5),
    Experiment(
        name="ppo-her-fast",
        figure="PPO-HER paper Fig. 2 at the fast configuration (4 conditions, stop at 95% success); the workload "
               "of benchmarks/runner_overhead.py",
        methods=PPO_AND_PPO_HER, conditions=FOUR_CONDITIONS, flags=f"{FAST} --stop-at-success 0.95",
        budget=150_000, hours=0.1),
    Experiment(
        name="meher-paper-defaults",
        figure="MEHER paper (arXiv 2410.24016) Figs. 6-7: MEHER 0.6 (random and targeted failures) and "
               "PPO-HER-2-PPO on random prey / random spawn, paper defaults, runs stop at 95% success; "
               "PPO-HER from ppo-vs-ppo-her",
        methods={"meher0.6": "meher --s-ratio 0.6 --failure random",
                 "meher0.6targeted": "meher --s-ratio 0.6 --failure targeted",
                 "ppo_her_2_ppo": "ppo_her_2_ppo"},
        conditions=RANDOM_RANDOM, flags="--stop-at-success 0.95", budget=300_000, hours=1.8, seeds=5,
        compare=(PPO_HER_AT_PAPER_DEFAULTS,), analyses=("iteration_cost",)),
    Experiment(
        name="meher-past-peak",
        figure="MEHER paper Figs. 6-7's setting with meher.py's own defaults (S-ratio 0.5, random failures): random "
               "prey / random spawn, paper defaults, once with the script's stop at 95% success and once for the "
               "whole 300,000 env steps: where success goes after its peak",
        methods={"meher": "meher", "meher_no_stop": f"meher {NO_STOP}"}, conditions=RANDOM_RANDOM,
        budget=300_000, hours=0.6, seeds=5, compare=(PPO_HER_AT_PAPER_DEFAULTS,), analyses=("best_and_final",)),
    Experiment(
        name="meher-sratio-sweep-fast",
        figure="MEHER paper Figs. 2-3 (S-ratio 0, 0.1, ..., 1, random failures) on 2 of its 12 conditions, with "
               "Fig. 6's comparisons (MEHER 0.6 targeted, PPO-HER, PPO-HER-2-PPO); fast configuration, no early "
               "stop",
        methods={**sweep("meher", "--s-ratio", SRATIOS, "meher", f"--failure random {NO_STOP}"),
                 "meher0.6targeted": f"meher --s-ratio 0.6 --failure targeted {NO_STOP}",
                 "ppo_her": "ppo_her", "ppo_her_2_ppo": "ppo_her_2_ppo"},
        conditions={c: FOUR_CONDITIONS[c] for c in ("random-random", "straight_away-apart")}, flags=FAST,
        budget=150_000, hours=0.5, seeds=5, analyses=("sratio", "iteration_cost")),
    Experiment(
        name="sher-vs-ddpg-push",
        figure="SHER paper (arXiv 2002.02089) Fig. 4 and Table 1, FetchPush column: SHER (alpha 0.05) vs "
               "DDPG + HER, task defaults, 1 CPU per run",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions={"push": "--env-id FetchPush-v4"},
        budget=640_000, hours=9.2, seeds=5, tag="eval/success_rate", also_thresholds=(0.5,), cpus_per_run=1,
        analyses=("delta_s",)),
    Experiment(
        name="sher-alpha-push",
        figure="SHER paper Fig. 5 (temperature alpha; the paper used FetchSlide) on FetchPush: alpha 0.03 and 0.1, "
               "and alpha 0.05 from sher-vs-ddpg-push read up to the same 320,000 steps; 1 CPU per run",
        methods={"sher_alpha0.03": "sher --alpha 0.03", "sher_alpha0.1": "sher --alpha 0.1"},
        conditions={"push": "--env-id FetchPush-v4"}, budget=320_000, hours=4.6, seeds=5, tag="eval/success_rate",
        also_thresholds=(0.5,), cpus_per_run=1, compare=(("sher-vs-ddpg-push", "sher", "sher_alpha0.05"),),
        analyses=("delta_s",)),
    # Every Predator-Prey experiment of the two Crowder et al. papers; docs/experiments.md has their budget and cuts.
    Experiment(
        name="ppo-her-fig2-fast",
        figure="PPO-HER paper Fig. 2: PPO vs PPO-HER on all 12 prey x spawn conditions, fast configuration, runs "
               "stop at 95% success; the paper defaults beside it on 4 conditions (ppo-vs-ppo-her)",
        methods=PPO_AND_PPO_HER, conditions=TWELVE_CONDITIONS, flags=FAST_STOPPING, budget=150_000, hours=0.95, seeds=10,
        compare=(("ppo-vs-ppo-her", "ppo_her", "ppo_her_defaults"), ("ppo-vs-ppo-her", "ppo", "ppo_defaults")),
        cut=f"10 seeds, not 16; 150,000 env steps per run, not 1,000,000; the paper defaults on 8 of the 12 "
            f"conditions; {PAPER_STOP}"),
    with_and_without_her_fast(
        "ppo-her-lr-fast", "--learning-rate", ["3e-3", "3e-4", "3e-5"], "lr", hours=0.25, paper_seeds=4,
        figure="PPO-HER paper Fig. 4: learning rate 3e-3 / 3e-4 / 3e-5, with and without HER, random prey / random "
               "spawn, fast configuration, runs stop at 95% success"),
    Experiment(
        name="ppo-her-strategy-fast",
        figure="PPO-HER paper Fig. A1: HER strategy final / future / episode x relabelled copies k = 1, 2, 4, 8, "
               "random prey / random spawn, fast configuration, runs stop at 95% success",
        methods={f"{strategy}_k{k}": f"ppo_her --her-strategy {strategy} --her-k {k}"
                 for strategy in ("final", "future", "episode") for k in (1, 2, 4, 8)},
        conditions=RANDOM_RANDOM, flags=FAST_STOPPING, budget=150_000, hours=0.3, seeds=5,
        cut=random_random_cut(150_000, seeds=5)),
    with_and_without_her_fast(
        "ppo-her-radius-fast", "--radius", ["1", "0.5", "0.2", "0.1"], "radius", hours=0.45,
        figure="PPO-HER paper Fig. A2: capture radius 1 / 0.5 / 0.2 / 0.1, with and without HER, random prey / "
               "random spawn, fast configuration, runs stop at 95% success"),
    with_and_without_her_fast(
        "ppo-her-box-fast", "--grid-size", ["10", "20", "30", "40", "50"], "box", hours=0.55,
        figure="PPO-HER paper Fig. A3: box half-width 10 / 20 / 30 / 40 / 50 (20-step episodes throughout), with "
               "and without HER, random prey / random spawn, fast configuration, runs stop at 95% success"),
    with_and_without_her_fast(
        "ppo-her-dims-fast", "--num-dims", ["2", "3", "4", "5", "6"], "dims", hours=0.33, paper_seeds=4,
        figure="PPO-HER paper Figs. A4-A5: 2 to 6 dimensions, with (A4) and without (A5) HER, random prey / random "
               "spawn, fast configuration, runs stop at 95% success"),
    Experiment(
        name="off-policy-predator-prey",
        figure="PPO-HER paper Figs. 1-2 (its SAC + HER curves): her_ddpg.py and sher.py (alpha 0.05, and alpha "
               "learnt with --autotune) with their Predator-Prey task defaults on the 4 README conditions, in env "
               "steps and in wall-clock, summarised by training and by test success, beside PPO-HER at the "
               "paper defaults (ppo-vs-ppo-her) and at the fast configuration (ppo-her-fig2-fast); no early stop "
               "(the off-policy scripts have none)",
        methods={"her_ddpg": "her_ddpg", "sher": "sher", "sher_autotune": "sher --autotune"},  # alpha: fixed, learnt
        conditions=FOUR_CONDITIONS, flags="--env-id PredatorPrey-v0",
        budget=100_000, hours=1.7, seeds=3, also_tags=("eval/success_rate",), analyses=("delta_s",),
        compare=(("ppo-vs-ppo-her", "ppo_her", "ppo_her_defaults"), ("ppo-her-fig2-fast", "ppo_her", "ppo_her_fast")),
        cut="8 of the 12 conditions; 3 seeds, not 16; 100,000 env steps per run, not 1,000,000; the "
            "paper's off-policy method was SB3's SAC with HER, not DDPG or SHER"),
    Experiment(
        name="meher-sratio-12-fast",
        figure="MEHER paper Figs. 2-3: S-ratio 0, 0.1, ..., 1 (random failures) on all 12 conditions, with the "
               "ranking metric; fast configuration, no early stop (the metric needs whole curves); beside PPO-HER of "
               "Fig. 2, whose runs stop at 95% success (compare its env steps to 90%, not its final success)",
        methods=sweep("meher", "--s-ratio", SRATIOS, "meher", f"--failure random {NO_STOP}"),
        conditions=TWELVE_CONDITIONS, flags=FAST, budget=150_000, hours=2.6, seeds=5,
        analyses=("sratio", "iteration_cost"), compare=(("ppo-her-fig2-fast", "ppo_her", "ppo_her"),),
        cut="5 seeds, not 16; 150,000 env steps per run, not 1,000,000"),
    Experiment(
        name="meher-targeted-12-fast",
        figure="MEHER paper Figs. 4-5: S-ratio 0, 0.1, ..., 0.9 with targeted (near-miss) failures on all 12 "
               "conditions, beside the same S-ratios with random failures (meher-sratio-12-fast); fast "
               "configuration, no early stop",
        methods={f"meher{d}targeted": f"meher --s-ratio {d} --failure targeted {NO_STOP}"
                 for d in TARGETED_SRATIOS},
        conditions=TWELVE_CONDITIONS, flags=FAST, budget=150_000, hours=2.8, seeds=5,
        compare=tuple(("meher-sratio-12-fast", f"meher{d}", f"meher{d}") for d in TARGETED_SRATIOS),
        pairs=tuple((f"meher{d}targeted", f"meher{d}") for d in TARGETED_SRATIOS),
        pairs_summed=("targeted, every S-ratio", "random, same S-ratio"),
        cut="S-ratio 1 (no failure copy is made, so the kind of failure does not matter: its line is "
            "meher-sratio-12-fast's); 5 seeds, not 16; 150,000 env steps per run, not 1,000,000"),
    Experiment(
        name="meher-fig6-12-fast",
        figure="MEHER paper Figs. 6-7: MEHER 0.6 with random and with targeted failures, PPO-HER-2-PPO and PPO-HER "
               "on all 12 conditions, side by side, with the computation each spends; fast configuration, runs "
               "stop at 95% success",
        methods={"meher0.6": "meher --s-ratio 0.6 --failure random",
                 "meher0.6targeted": "meher --s-ratio 0.6 --failure targeted", "ppo_her_2_ppo": "ppo_her_2_ppo",
                 "ppo_her": "ppo_her"},
        conditions=TWELVE_CONDITIONS, flags=FAST_STOPPING, budget=150_000, hours=0.85, seeds=5,
        analyses=("iteration_cost",),
        pairs=(("meher0.6targeted", "meher0.6"), ("ppo_her_2_ppo", "ppo_her"), ("meher0.6", "ppo_her")),
        cut=f"5 seeds, not 16; 150,000 env steps per run, not 1,000,000; {PAPER_STOP}"),
    Experiment(
        name="ppo-her-2-ppo-threshold-fast",
        figure="MEHER paper, open question 2, on its Figs. 6-7 line of PPO-HER-2-PPO (HER off at 50% success): "
               "HER off at 30% / 50% / 70% success, beside PPO-HER that never switches, side by side under the same "
               "load; random prey and random_direction prey (where PPO-HER stalls), random spawn, fast "
               "configuration, runs stop at 95% success",
        methods={**sweep("ppo_her_2_ppo", "--switch-threshold", ["0.3", "0.5", "0.7"], "switch"),
                 "ppo_her": "ppo_her"},
        conditions={c: TWELVE_CONDITIONS[c] for c in ("random-random", "random_direction-random")},
        flags=FAST_STOPPING, budget=150_000, hours=0.3, seeds=5, analyses=("iteration_cost",),
        cut="the paper has no such figure (it is its open question 2); two conditions, 5 seeds"),
    # The PPO scripts on the Fetch tasks (PPO-HER paper Fig. 5, the MEHER paper's first open question), with the
    # authors' Fetch options: initial policy standard deviation 0.6 and Adam weight decay (they tried 1e-2 to 1e-5)
    Experiment(
        name="ppo-her-fetch-reach-weight-decay",
        figure="PPO-HER paper Fig. 5's weight decay 1e-2 / 1e-3 / 1e-4 / 1e-5 (and none), PPO-HER on FetchReach, "
               "initial policy std 0.6, runs stop at 90% success: picks the weight decay of the other Fetch runs",
        methods=sweep("ppo_her", "--weight-decay", ["0", "1e-2", "1e-3", "1e-4", "1e-5"], "ppo_her_wd"),
        conditions={"reach": "--env-id FetchReach-v4"}, flags=f"{FETCH_PPO} --stop-at-success 0.9",
        budget=300_000, hours=2.8, seeds=2,
        cut="FetchReach only, 2 seeds, not 4; 300,000 env steps per run, not 1,000,000; runs stop at 90% success "
            "(the paper's Fetch runs did not stop early)"),
    Experiment(
        name="ppo-fetch-reach",
        figure="PPO-HER paper Fig. 5 (FetchReach) and the MEHER paper's open question 1: PPO, PPO-HER, MEHER 0.6 "
               "and PPO-HER-2-PPO on FetchReach, initial policy std 0.6, weight decay 1e-4, runs stop at 90% "
               "success",
        methods={**FETCH_METHODS, "ppo_her_2_ppo": "ppo_her_2_ppo"},
        conditions={"reach": "--env-id FetchReach-v4"}, flags=f"{FETCH_WEIGHT_DECAY} --stop-at-success 0.9",
        budget=300_000, hours=1.6, seeds=3,
        cut="3 seeds, not 4; 300,000 env steps per run, not 1,000,000; runs stop at 90% success (the paper's "
            "Fetch runs did not stop early); one weight decay, not four"),
    Experiment(
        name="off-policy-fetch-reach",
        figure="PPO-HER paper Fig. 5 (FetchReach), its off-policy side: DDPG + HER and SHER (alpha 0.05) with their "
               "task defaults, 1 CPU per run, summarised by training and by test success, beside ppo-fetch-reach "
               "under the same load (two runs at a time)",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions={"reach": "--env-id FetchReach-v4"},
        budget=10_000, hours=0.3, seeds=5, also_tags=("eval/success_rate",), analyses=("delta_s",),
        cut="the papers' FetchReach runs were longer; 10,000 env steps (the scripts' FetchReach default) reach 90% "
            "test success"),
    Experiment(
        name="ppo-fetch-push",
        figure="PPO-HER paper Fig. 5 (FetchPush): PPO vs PPO-HER, and MEHER 0.6, on FetchPush, initial policy std "
               "0.6, weight decay 1e-4, 1,000,000 env steps, no early stop",
        methods={**FETCH_METHODS, "meher0.6": f"meher --s-ratio 0.6 {NO_STOP}"},
        conditions={"push": "--env-id FetchPush-v4"}, flags=FETCH_WEIGHT_DECAY,
        budget=1_000_000, hours=2.7, seeds=2,
        cut="2 seeds, not 4; one weight decay, not four; FetchSlide and FetchPickAndPlace are ppo-fetch-slide-pick"),
    Experiment(
        name="ppo-fetch-slide-pick",
        figure="PPO-HER paper Fig. 5 (FetchSlide, FetchPickAndPlace): PPO vs PPO-HER, initial policy std 0.6, "
               "weight decay 1e-4, 1,000,000 env steps, no early stop",
        methods=PPO_AND_PPO_HER, conditions=FETCH_HARD, flags=FETCH_WEIGHT_DECAY, budget=1_000_000, hours=5.4, seeds=2,
        cut="2 seeds, not 4; one weight decay, not four; MEHER 0.6 not run (it waits on PPO-HER learning FetchPush)"),
    # SHER's benchmark beyond FetchPush; docs/experiments.md has the budget.
    Experiment(
        name="sher-vs-ddpg-pick-slide",
        figure="SHER paper Fig. 4 and Table 1, FetchPickAndPlace and FetchSlide columns: SHER (alpha 0.05) vs "
               "DDPG + HER, task defaults, 1 CPU per run, success thresholds 50% and 90%",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions=FETCH_HARD, budget=1_500_000, hours=20, seeds=5,
        tag="eval/success_rate", threshold=0.5, also_thresholds=(0.9,), cpus_per_run=1, analyses=("delta_s",),
        cut="CHER, the paper's third method (not implemented here); 5 seeds, 1,500,000 env steps per run (at "
            "1,000,000 no seed-1 run reached 90% test success)"),
    Experiment(
        name="sher-alpha-slide",
        figure="SHER paper Fig. 5: temperature alpha 0.03 and 0.1 on FetchSlide, and alpha 0.05 from "
               "sher-vs-ddpg-pick-slide read up to the same 750,000 steps; 1 CPU per run, success thresholds 50% "
               "and 90%",
        methods={"sher_alpha0.03": "sher --alpha 0.03", "sher_alpha0.1": "sher --alpha 0.1"},
        conditions={"slide": FETCH_HARD["slide"]}, budget=750_000, hours=6.4, seeds=5, tag="eval/success_rate",
        threshold=0.5, also_thresholds=(0.9,), cpus_per_run=1,
        compare=(("sher-vs-ddpg-pick-slide", "sher", "sher_alpha0.05"),),
        analyses=("delta_s",),
        cut="5 seeds, 750,000 env steps per run (half of sher-vs-ddpg-pick-slide's budget)"),
    Experiment(
        name="sher-vs-ddpg-hand",
        figure="SHER paper Fig. 4 and Table 1, Hand columns: SHER (alpha 0.05) vs DDPG + HER on HandReach, "
               "HandManipulateBlock, HandManipulateEgg and HandManipulatePen (the newest ids gymnasium-robotics "
               "registers), task defaults, 2 CPUs per run, success threshold 50%",
        methods={"her_ddpg": "her_ddpg", "sher": "sher"}, conditions=HAND, budget=640_000, hours=6.5, seeds=1,
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
        conditions={"hand_reach": HAND["hand_reach"]}, budget=320_000, hours=1.2, seeds=1, tag="eval/success_rate",
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
                    "" if e.hours >= 0 else "hours must be >= 0",
                    "" if all(t > 0 for t in e.also_thresholds) else "also_thresholds must be > 0",
                    "" if set(e.analyses) <= set(ANALYSES) else f"analyses must be among {', '.join(ANALYSES)}"]
        labels = {*e.methods, *[label for _, _, label in e.compare]}
        problems += [f"pair {pair!r} names a method it does not have" for pair in e.pairs if not set(pair) <= labels]
        problems += ["pairs_summed adds up pairs: it needs pairs"] if e.pairs_summed and not e.pairs else []
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
        raise BadInput(f"no experiment named {name!r}; python benchmarks/experiments.py list shows them")
    return experiments[name]
