"""Learning tests: each script, run through its command line on seed 1, still learns what its calibration runs learnt.
A broken update, relabelling or switch shows as a run that does not reach its success rate in its budget.

The budgets and thresholds hold with margin on every calibration seed named in a test's docstring; a run is
deterministic for its seed (one torch thread), so a test fails only when what the script computes has changed.
About 80 s of CPU for the file, one script at a time (as much wall-clock on an idle 2-core machine).
"""
from conftest import read_scalars, run_script

FAST = ("--hidden-size", "64", "--num-envs", "32", "--num-steps", "64", "--minibatch-size", "256")  # README's
# FetchReach at about half the compute of the task defaults: one env, narrower networks; a test every 500 steps
FETCH_REACH = ("--env-id", "FetchReach-v4", "--num-envs", "1", "--hidden-size", "128", "--n-cycles", "10",
               "--n-test-rollouts", "10", "--total-timesteps", "2000")


def train(name, cwd, *flags) -> dict:
    """Run algorithms/<name>.py with seed 1 in its own folder; its scalars."""
    cwd.mkdir()
    out = run_script(name, cwd, *flags, "--seed", "1")
    assert out.returncode == 0, out.stderr
    return read_scalars(cwd)


def last(curve: dict) -> float:
    """The value at the last logged step, to 2 decimals (TensorBoard keeps float32: a logged 0.9 reads 0.8999999762)."""
    return round(curve[max(curve)], 2)


def test_ppo_her_learns_where_plain_ppo_does_not(tmp_path):
    """PPO-HER against plain PPO (--no-her) on random prey / random spawn, fast configuration, 53,248 env steps: HER
    reaches 90% success (the run stops there), plain PPO stays under 20%. Relabelling lost from the main loop turns
    the HER run into plain PPO, which fails the first assertion.
    Calibration: HER's first 90% at 30,720-43,008 steps in all 17 seeds seen (ppo-her-fig2-fast's 10, seeds 1-7 of
    the current script; seed 1: 30,720); plain PPO at most 4% success by 150,000 steps (10 seeds), <= 3% at 61,440
    (seeds 1-6)."""
    budget = ("--total-timesteps", "53248")
    her = train("ppo_her", tmp_path / "her", *FAST, *budget, "--stop-at-success", "0.9")["charts/success_rate"]
    ppo = train("ppo_her", tmp_path / "ppo", *FAST, *budget, "--no-her")["charts/success_rate"]
    assert last(her) >= 0.9, f"PPO-HER reached only {max(her.values()):.2f} success in {budget[1]} env steps"
    assert max(ppo) == 53248 and last(ppo) <= 0.2, f"plain PPO at {last(ppo):.2f}: the task no longer needs HER"


def test_meher_learns(tmp_path):
    """MEHER (S-ratio 0.6, random failures: the MEHER paper's Figs. 6-7 method) on random prey / random spawn, fast
    configuration: 90% success within 53,248 env steps (the run stops there).
    Calibration: first 90% at 34,816-36,864 steps on seeds 1-6 (seed 1: 36,864), 34,816-36,864 in
    meher-sratio-sweep-fast's 3 seeds; plain PPO stays under 5% there (test above)."""
    success = train("meher", tmp_path / "run", *FAST, "--s-ratio", "0.6", "--failure", "random",
                    "--stop-at-success", "0.9", "--total-timesteps", "53248")["charts/success_rate"]
    assert last(success) >= 0.9, f"MEHER reached only {max(success.values()):.2f} success in 53248 env steps"


def test_ppo_her_2_ppo_switches_off_her_and_learns_on(tmp_path):
    """PPO-HER-2-PPO (HER off above 50% success) on random prey / random spawn, fast configuration: HER goes off
    once, then PPO alone takes the run on to 90% success within 61,440 env steps (the run stops there). Without
    relabelling the run never reaches 50%, and HER is never switched off.
    Calibration, seeds 1-6: HER off at 24,576-28,672 steps, first 90% at 38,912-49,152 (seed 1: 24,576 and 43,008),
    as in ppo-her-2-ppo-threshold-fast's and meher-sratio-sweep-fast's records."""
    scalars = train("ppo_her_2_ppo", tmp_path / "run", *FAST, "--stop-at-success", "0.9", "--total-timesteps", "61440")
    assert "her/switch_step" in scalars, "HER was never switched off"
    (switch_step,) = scalars["her/switch_step"]
    assert last(scalars["her/enabled"]) == 0.0
    success = scalars["charts/success_rate"]
    assert last(success) >= 0.9 and max(success) > switch_step, \
        f"PPO-HER-2-PPO reached only {max(success.values()):.2f} success in 61440 env steps"


def test_her_ddpg_learns_fetch_reach(tmp_path):
    """DDPG + HER on FetchReach-v4 (one env, hidden 128, else the task defaults): 90% test success (10 deterministic
    episodes after each 500 env steps) within 2,000 env steps; the task defaults (two envs, hidden 256) take 3,000
    steps and twice the compute (docs/performance.md).
    Calibration, seeds 1-8: first >= 90% at 1,000 steps (seed 6: 1,500), at least two tests >= 90% in every seed,
    the test at 2,000 steps 100% (seed 7: 90%); seed 1: 10%, 100%, 100%, 100%, and without HER (--replay-k 0) 0%,
    0%, 0%, 10%."""
    test_success = train("her_ddpg", tmp_path / "run", *FETCH_REACH)["eval/success_rate"]
    assert round(max(test_success.values()), 2) >= 0.9, f"test success only {test_success}"


def test_sher_learns_fetch_reach(tmp_path):
    """SHER (SAC + HER, alpha 0.05) on FetchReach-v4 (one env, hidden 128, else the task defaults): 90% test success
    (10 deterministic episodes after each 500 env steps) within 2,000 env steps.
    Calibration, seeds 1-8: first >= 90% at 1,500 steps (seeds 1 and 6: 1,000), the test at 2,000 steps 100% in every
    seed; seed 1: 0%, 90%, 100%, 100%, and without HER (--replay-k 0) 0% throughout."""
    test_success = train("sher", tmp_path / "run", *FETCH_REACH)["eval/success_rate"]
    assert round(max(test_success.values()), 2) >= 0.9, f"test success only {test_success}"
