"""Relabelling: PPO-HER's copies of Predator-Prey failures and of fragments cut by the rollout's end
(algorithms/ppo_her.py relabel, relabelled_batch), and MEHER's PPO batch: the kept real fragments plus the copies
(algorithms/meher.py main loop). Expected values are hand computations or observations of a run."""
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import load_script, read_scalars, run_in_process

ppo_her = load_script("ppo_her")
GOAL_DIM, GAMMA = 3, 0.99
W = np.array([0.0, 0, 0, 0.1, -0.2, 0.3, 0.5, 0.25, -1.0])  # V(x) = W . x over [observation, achieved, desired goal]
PREY = np.array([9.0, 9.0, 9.0])  # the real desired goal, never reached


@pytest.fixture(scope="module")
def env():
    return gym.make("PredatorPrey-v0", radius=1.0).unwrapped


def rollout_of_one_env():
    """One env, 25 steps: a failed episode (steps 1-21, the 21st the failure step) and an episode cut by the
    rollout's end after 4 steps. The predator starts each episode at (-8, -8, -8) and moves 0.8 along each axis per
    step (1.39 per step: farther than the capture radius 1, so a position captures no other one). Returns the
    rollout for relabel() and the flat observations before and after each step."""
    steps = np.concatenate([np.arange(1, 22), np.arange(1, 5)])
    before, after = (np.repeat(-8.0 + 0.8 * k[:, None], 3, 1) for k in (steps - 1, steps))
    fragment_end = np.zeros(25, bool)
    fragment_end[[20, 24]] = True
    rollout = dict(next_achieved_goal=after.astype(np.float32), episode_steps=steps, fragment_end=fragment_end)
    obs, next_obs = (np.concatenate([np.zeros((25, 3)), pos, np.tile(PREY, (25, 1))], 1).astype(np.float32)
                     for pos in (before, after))
    return rollout, obs, next_obs


class LinearCritic:
    """An agent stand-in for relabelled_batch: V(x) = W . x, log-probs 0."""

    def get_value(self, x):
        return x @ torch.as_tensor(W, dtype=torch.float32)[:, None]

    def get_action_and_value(self, x, action):
        return action, torch.zeros(len(x)), torch.zeros(len(x)), self.get_value(x)


def v(row, goal) -> float:
    """V of a flat observation with its desired goal replaced, by hand."""
    return float(W[:6] @ row[:6] + W[6:] @ goal)


def relabel_and_score(compute_reward, terminal_rewards):
    rollout, obs, next_obs = rollout_of_one_env()
    copies = ppo_her.relabel(rollout, "final", 1, compute_reward, np.random.default_rng(0), terminal_rewards)
    scored = ppo_her.relabelled_batch(LinearCritic(), obs, next_obs, np.zeros((25, 3), np.float32), copies, GOAL_DIM,
                                      ppo_her.Args(gamma=GAMMA), "cpu")
    return copies, scored, obs, next_obs


def test_a_capture_on_the_last_step_is_plus_one_even_on_the_failure_step(env):
    """`final` goals with Predator-Prey's reward: each copy runs its whole fragment and is captured on its last step
    only: +1 and terminal both on the failure step 21 (a capture beats the -1) and on the cut fragment's last step."""
    copies = relabel_and_score(env.compute_reward, (1.0, -1.0))[0]
    last = np.isin(np.arange(25), [20, 24])
    np.testing.assert_array_equal(copies["index"], np.arange(25))
    np.testing.assert_array_equal(copies["reward"], last.astype(np.float32))
    np.testing.assert_array_equal(copies["terminal"], last)
    np.testing.assert_array_equal(copies["copy_end"], last)


def test_a_copy_reaching_the_failure_step_gets_minus_one_and_does_not_bootstrap(env):
    """A copy whose goal its fragment never captures (Predator-Prey's reward of a goal moved out of reach) gets the
    task's -1 on the failure step 21, ends there (terminal), and its advantage there is -1 - V(s, g'), whatever
    V(s', g') is."""
    def out_of_reach(achieved, goal, info):
        return env.compute_reward(achieved, goal + 100.0, info)

    copies, scored, obs, next_obs = relabel_and_score(out_of_reach, (1.0, -1.0))
    first = copies["index"] <= 20
    np.testing.assert_array_equal(copies["index"][first], np.arange(21))
    np.testing.assert_array_equal(copies["reward"][first], [0.0] * 20 + [-1.0])
    np.testing.assert_array_equal(copies["terminal"][first], np.arange(21) == 20)
    assert copies["copy_end"][20] and not copies["copy_end"][:20].any()
    goal = next_obs[20, 3:6]  # `final`: the position after the fragment's last action
    assert v(next_obs[20], goal) != 0
    assert scored["advantages"][20] == pytest.approx(-1.0 - v(obs[20], goal), abs=1e-5)


def test_a_cut_fragments_copy_bootstraps_from_v_of_the_next_state_under_the_new_goal():
    """Fetch's reward (0 within 0.05 of the goal, else -1; no terminal reward): the copy of the fragment cut by the
    rollout's end ends with reward 0 and, not terminal, its last advantage is 0 + gamma V(s', g') - V(s, g'), with
    g' the copy's goal in the next observation too (not the real desired goal)."""
    def fetch_reward(achieved, goal, info):
        return -(np.linalg.norm(achieved - goal, axis=-1) > 0.05).astype(np.float32)

    copies, scored, obs, next_obs = relabel_and_score(fetch_reward, ())
    last = len(copies["index"]) - 1
    assert copies["index"][last] == 24 and copies["copy_end"][last] and not copies["terminal"].any()
    assert copies["reward"][last] == 0 and (copies["reward"][last - 3 : last] == -1).all()
    goal = next_obs[24, 3:6]
    expected = GAMMA * v(next_obs[24], goal) - v(obs[24], goal)
    assert expected != pytest.approx(GAMMA * v(next_obs[24], PREY) - v(obs[24], goal), abs=1e-3)
    assert scored["advantages"][last] == pytest.approx(expected, abs=1e-5)


def test_meher_ppo_batch_is_the_kept_real_steps_plus_the_copies(tmp_path):
    """Static prey in a small box (real successes and failures), --s-ratio 1 (every real failure dropped): one
    iteration's PPO batch, as ppo_update receives it, holds exactly the real steps meher_relabel kept (fewer than
    the rollout's 4 x 64) followed by the copies as relabelled_batch scored them; her/relabelled_fraction is
    copies / batch."""
    seen = {}

    def record(frame, event, arg):
        name = frame.f_code.co_name
        if event == "return" and name == "meher_relabel":
            seen["copies"], seen["real_kept"] = arg[0], arg[1]
        elif event == "call" and name == "relabelled_batch":
            seen["real_obs"] = frame.f_locals["obs"]
        elif event == "return" and name == "relabelled_batch":
            seen["copy_obs"] = arg["obs"]
        elif event == "call" and name == "ppo_update":
            seen["batch_obs"] = frame.f_locals["batch"]["obs"]

    sys.setprofile(record)
    try:
        out = run_in_process("meher", tmp_path, "--prey", "static", "--grid-size", "3", "--s-ratio", "1",
                             "--num-envs", "4", "--num-steps", "64", "--total-timesteps", "256", "--hidden-size", "16",
                             "--update-epochs", "1")
    finally:
        sys.setprofile(None)
    assert out.returncode == 0, out.stderr[-2000:]
    kept, num_copies = int(seen["real_kept"].sum()), len(seen["copies"]["index"])
    assert 0 < kept < 4 * 64 and num_copies > 0
    assert len(seen["batch_obs"]) == kept + num_copies
    np.testing.assert_array_equal(seen["batch_obs"], np.concatenate([seen["real_obs"][seen["real_kept"]],
                                                                     seen["copy_obs"]]))
    (fraction,) = read_scalars(tmp_path)["her/relabelled_fraction"].values()
    assert fraction == pytest.approx(num_copies / (kept + num_copies))
