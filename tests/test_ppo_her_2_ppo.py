"""algorithms/ppo_her_2_ppo.py: HER goes off for good at the first update after the success rate exceeds the
threshold, no relabelled data is used after it, the switch is logged, bad thresholds are refused."""
import pytest

from conftest import (assert_one_line_error, assert_one_line_error_in_process, assert_resume_is_identical, load_script,
                      read_scalars, run_script)

ppo_her_2_ppo = load_script("ppo_her_2_ppo")


def test_her_enabled_switches_once_and_for_good():
    """Rates at or below the threshold keep HER on; the first rate above it turns HER off; it never comes back.
    Only the last 100 episodes count; no episodes yet keeps HER on."""
    enabled, history = True, []
    for rate in (0.0, 0.3, 0.5, 0.51, 0.2, 0.9):
        enabled = ppo_her_2_ppo.her_enabled(enabled, [1.0] * round(100 * rate) + [0.0] * round(100 * (1 - rate)), 0.5)
        history.append(enabled)
    assert history == [True, True, True, False, False, False]
    assert ppo_her_2_ppo.her_enabled(True, [], 0.0)
    assert ppo_her_2_ppo.her_enabled(True, [1.0] * 50 + [0.0] * 100, 0.4), "only the last 100 episodes count"
    assert ppo_her_2_ppo.her_enabled(True, [1.0] * 100, 1.0), "a rate cannot exceed a threshold of 1"


def test_short_run_switches_off_and_stops_relabelling(tmp_path):
    """Static prey, apart spawn, threshold 0.05: her/enabled reads 1 until the first update whose success rate exceeds
    0.05, then 0 for good; relabelled data is logged only while HER is on; the switch's step and time are logged."""
    out = run_script("ppo_her_2_ppo", tmp_path, "--prey", "static", "--spawn", "apart", "--switch-threshold", "0.05",
                     "--total-timesteps", "8192", "--num-steps", "1024", "--update-epochs", "4", "--hidden-size", "64")
    assert out.returncode == 0, out.stderr
    scalars = read_scalars(tmp_path)
    steps = sorted(scalars["her/enabled"])
    enabled = [scalars["her/enabled"][step] for step in steps]
    # TensorBoard keeps float32: a logged rate of exactly 0.05 (which does not exceed 0.05) reads 0.05000000075
    first_above = next(step for step in steps if scalars["charts/success_rate"][step] > 0.05 + 1e-6)
    assert enabled == [float(step < first_above) for step in steps]
    assert enabled[0] == 1.0 and enabled[-1] == 0.0, "the run should show HER on, then off"
    assert sorted(scalars["her/relabelled_fraction"]) == [step for step in steps if step < first_above]
    assert all(fraction > 0 for fraction in scalars["her/relabelled_fraction"].values())
    assert scalars["her/switch_step"] == {first_above: first_above}
    assert scalars["her/switch_seconds"][first_above] > 0
    assert f"HER switched off at step {first_above}:" in out.stdout


@pytest.mark.parametrize("threshold", ["1.5", "-0.1"])
def test_bad_threshold_exits_with_one_line(tmp_path, threshold):
    """A threshold outside [0, 1]: one line on stderr naming the flag, non-zero exit, no run (in this process; 1.5
    also through the real command line)."""
    check = assert_one_line_error if threshold == "1.5" else assert_one_line_error_in_process
    out = check("ppo_her_2_ppo", tmp_path, "--switch-threshold", threshold)
    assert "--switch-threshold" in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_after_the_switch_keeps_her_off(tmp_path):
    """A run resumed after the switch continues bit-identically: HER stays off although the success rate has fallen
    back below the threshold (the switch is for good, and the checkpoint remembers it)."""
    flags = ["--prey", "static", "--switch-threshold", "0.1", "--num-envs", "8", "--num-steps", "64",
             "--hidden-size", "16", "--update-epochs", "2"]
    scalars = assert_resume_is_identical("ppo_her_2_ppo", tmp_path, flags, 1024, 2048)
    assert scalars["her/enabled"] == {512: 0.0, 1024: 0.0, 1536: 0.0, 2048: 0.0}
    assert min(scalars["charts/success_rate"].values()) <= 0.1, "the rate should fall back below the threshold"
