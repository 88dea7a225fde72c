"""algorithms/sher.py (docs/sher.md): the squashed-Gaussian log-density, the mean test
action, the temperature, short runs on FetchReach and Predator-Prey, flags."""
import math

import numpy as np
import pytest
import torch

from conftest import (ALGORITHMS, assert_one_line_error, assert_one_line_error_in_process, interrupt_script,
                      load_script, read_scalars, run_script)

sher = load_script("sher")
IN, ACT, MAX_U, GAMMA, ALPHA = 5, 2, 2.0, 0.98, 0.2  # MAX_U != 1: the action scale must show in the log-density
TINY_RUN = ["--total-timesteps", "300", "--num-envs", "2", "--n-cycles", "2", "--n-batches", "3",
            "--n-test-rollouts", "1", "--batch-size", "16", "--hidden-size", "8"]


def tiny_learner() -> "sher.Learner":
    torch.manual_seed(1)  # fixed weights
    args = sher.Args(hidden_size=8, gamma=GAMMA, alpha=ALPHA)
    task = sher.Task(horizon=50, target_range=(-1.0 / (1.0 - GAMMA), 0.0), done_on_reward=False,
                     observe_achieved_goal=False)
    return sher.Learner(args, IN, ACT, MAX_U, task, torch.device("cpu"))


def hand_batch() -> dict:
    """Six transitions with rewards -1 and 0, two of them done, so that the mask and the clip both act."""
    g = torch.Generator().manual_seed(1)
    return dict(x=torch.randn(6, IN, generator=g), x_next=torch.randn(6, IN, generator=g),
                u=MAX_U * (2 * torch.rand(6, ACT, generator=g) - 1), r=torch.tensor([-1.0, 0, -1, -1, 0, 0]),
                done=torch.tensor([0.0, 0, 0, 1, 0, 1]))


@pytest.mark.parametrize("mean, log_std", [(0.3, -0.5), (-1.2, 0.4), (2.0, -1.5)])
def test_log_prob_is_the_density_of_the_squashed_action(mean, log_std):
    """log pi(u) equals the log of dF/du by central finite differences of the 1-D CDF of U = max_u tanh(Z),
    F(u) = Phi((atanh(u / max_u) - mean) / std); and it stays finite where tanh(z) rounds to 1 in float32."""
    noise = torch.linspace(-2.5, 2.5, 11, dtype=torch.float64)[:, None]
    u, log_pi = sher.squashed_gaussian(torch.full_like(noise, mean), torch.full_like(noise, log_std), noise, MAX_U)
    normal, h = torch.distributions.Normal(mean, math.exp(log_std)), 1e-6

    def cdf(v):  # P(U <= v)
        return normal.cdf(torch.atanh(v / MAX_U))

    torch.testing.assert_close(log_pi, torch.log((cdf(u[:, 0] + h) - cdf(u[:, 0] - h)) / (2 * h)), rtol=1e-6, atol=1e-6)
    saturated = sher.squashed_gaussian(torch.full((1, 1), 12.0), torch.zeros(1, 1), torch.zeros(1, 1), MAX_U)[1]
    assert torch.isfinite(saturated).all()


def test_test_action_is_the_mean_and_training_actions_are_samples():
    """Evaluation acts with max_u tanh(mean), deterministically; training samples in [-max_u, max_u]."""
    learner, x = tiny_learner(), hand_batch()["x"]
    mean = learner.actor(x)[0].detach()
    test_u = learner.act(x, False, np.random.default_rng(0))
    torch.testing.assert_close(torch.as_tensor(test_u), MAX_U * torch.tanh(mean))
    train_u = learner.act(x, True, np.random.default_rng(0))
    assert np.abs(train_u).max() <= MAX_U and not np.allclose(train_u, test_u)


@pytest.mark.parametrize("env_id, autotune", [("FetchReach-v4", False), ("PredatorPrey-v0", True)])
def test_short_run_logs_and_temperature(tmp_path, env_id, autotune):
    """A tiny run exits 0, saves its networks and logs eval/success_rate and stability/delta_s each epoch;
    losses/alpha stays at --alpha (0.05) without --autotune, and with it falls (the first policies' entropy is
    above the target -|A|: so they are at width 64; at width 8 a random init can start below it, as on
    Predator-Prey with seed 1 once its networks see [o, ag, g])."""
    autotune_flags = ["--autotune", "--hidden-size", "64"] if autotune else []  # the last --hidden-size wins
    out = run_script("sher", tmp_path, "--env-id", env_id, "--save-model", *TINY_RUN, *autotune_flags)
    assert out.returncode == 0, out.stderr[-2000:]
    (model,) = tmp_path.glob("runs/*/sher.cleanrl_model")
    assert {"actor", "qf1", "qf2", "vf", "log_alpha", "o_norm"} <= set(torch.load(model, weights_only=False))
    scalars = read_scalars(tmp_path)
    assert scalars["eval/success_rate"].keys() == scalars["stability/delta_s"].keys() != set()
    alpha = [value for _, value in sorted(scalars["losses/alpha"].items())]
    if autotune:
        assert len(alpha) > 1 and all(later < earlier for earlier, later in zip([0.05] + alpha, alpha))
    else:
        assert alpha == pytest.approx([0.05] * len(alpha), rel=1e-6)


@pytest.mark.parametrize("alpha", ["0", "-1"])
def test_bad_alpha_is_a_one_line_error(tmp_path, alpha):
    """A temperature <= 0 is refused before anything starts (in this process; 0 also through the real command line)."""
    check = assert_one_line_error if alpha == "0" else assert_one_line_error_in_process
    check("sher", tmp_path, "--alpha", alpha)


def test_ctrl_c_exits_130_with_a_checkpoint(tmp_path):
    """Ctrl-C during a FetchReach run with env subprocesses (as her_ddpg.py's test): the run says why it stopped,
    saves its model and its checkpoint, closes its TensorBoard log and exits 130."""
    proc = interrupt_script("sher", tmp_path, "--env-id", "FetchReach-v4", "--n-batches", "1", "--n-cycles", "1",
                            "--n-test-rollouts", "1", "--total-timesteps", "1000000", "--save-model")
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1].startswith("interrupted by Ctrl-C: step") and "Traceback" not in proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert {path.name.split(".")[0] for path in run_dir.iterdir()} == {"events", "checkpoint", "sher"}
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["script"] == "sher.py"


def test_everything_outside_the_learner_is_her_ddpg_line_for_line():
    """`diff her_ddpg.py sher.py` shows only the learner: outside the LEARNER block the two scripts differ only in
    the lines that describe the learner (the header, `import math`, the learner's flags in Args, TASK_DEFAULTS and
    the flag checks), so that a fix to the shared code cannot silently miss one script."""
    learner_flags = ('"action_l2"', '"random_eps"', '"alpha"')

    def shared_lines(name: str) -> list[str]:
        lines = (ALGORITHMS / f"{name}.py").read_text().splitlines()
        imports = lines.index("import dataclasses")
        learner_args = next(i for i, line in enumerate(lines) if line.startswith("    # Learner:"))
        task_defaults = next(i for i, line in enumerate(lines) if line.startswith("TASK_DEFAULTS"))
        task_defaults_end = lines.index("}", task_defaults)
        learner = next(i for i, line in enumerate(lines) if line.startswith("# ====="))
        end_learner = next(i for i, line in enumerate(lines) if "END LEARNER" in line)
        kept = [*range(imports, learner_args), *range(task_defaults_end, learner), *range(end_learner, len(lines))]
        return [lines[i] for i in kept
                if lines[i] != "import math" and not any(flag in lines[i] for flag in learner_flags)]

    her_ddpg_lines, sher_lines = shared_lines("her_ddpg"), shared_lines("sher")
    assert len(her_ddpg_lines) > 300
    assert her_ddpg_lines == sher_lines
