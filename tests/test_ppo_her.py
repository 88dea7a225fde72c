"""algorithms/ppo_her.py: relabelling, GAE of copies, recomputed log-probs/values, a short learning run, flags."""
import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, interrupt_script, load_script, read_scalars, run_script

ppo_her = load_script("ppo_her")
RADIUS = 1.0


@pytest.fixture(scope="module")
def env():
    import gymnasium as gym

    return gym.make("PredatorPrey-v0", radius=RADIUS).unwrapped


def hand_made_rollout():
    """Two envs x 6 steps, env-major: env 0 has a finished episode (steps 0-3) and an unfinished one (4-5);
    env 1 one unfinished fragment. The predator moves 0.5 along x per step from x = 0 (env 0) or x = 5 (env 1)."""
    x = np.concatenate([0.5 * np.arange(1, 5), 0.5 * np.arange(1, 3), 5 + 0.5 * np.arange(1, 7)])
    next_achieved = np.stack([x, np.zeros_like(x), np.zeros_like(x)], 1).astype(np.float32)
    fragment_end = np.zeros(12, bool)
    fragment_end[[3, 5, 11]] = True
    return dict(next_achieved_goal=next_achieved,
                episode_steps=np.array([1, 2, 3, 4, 1, 2, 1, 2, 3, 4, 5, 6]), fragment_end=fragment_end)


def relabel(env, strategy="final", k=1, seed=0):
    return ppo_her.relabel(hand_made_rollout(), strategy, k, env.compute_reward, np.random.default_rng(seed))


def test_final_goal_is_post_action_position_of_last_step(env):
    """`final` aims at the position after the fragment's last action, unfinished fragments included."""
    copies = relabel(env)
    rollout = hand_made_rollout()
    for end in (3, 5, 11):
        start = 0 if end == 3 else (4 if end == 5 else 6)
        members = (copies["index"] >= start) & (copies["index"] <= end)
        assert members.any(), f"fragment ending at {end} was not relabelled"
        assert np.all(copies["goal"][members] == rollout["next_achieved_goal"][end])


def test_rewards_equal_compute_reward_and_copy_ends_at_first_success(env):
    """Relabelled rewards are the env's compute_reward; a copy stops at its first hindsight capture (+1, terminal)."""
    copies = relabel(env)
    rollout = hand_made_rollout()
    expected = env.compute_reward(rollout["next_achieved_goal"][copies["index"]], copies["goal"],
                                  {"episode_steps": rollout["episode_steps"][copies["index"]]})
    np.testing.assert_array_equal(copies["reward"], expected)
    # fragment 0: goal x = 2.0, radius 1 -> first capture at x = 1.0 (step 1); steps 2, 3 are dropped
    fragment0 = copies["index"][copies["index"] <= 3]
    np.testing.assert_array_equal(fragment0, [0, 1])
    assert copies["reward"][1] == 1 and copies["terminal"][1] and copies["copy_end"][1]
    assert not copies["terminal"][0] and copies["reward"][0] == 0
    # every copy ends exactly once, with a success
    assert copies["copy_end"].sum() == 3 and np.all(copies["reward"][copies["copy_end"]] == 1)


@pytest.mark.parametrize("strategy", ["episode", "future"])
def test_episode_and_future_goals_come_from_own_fragment(env, strategy):
    """`episode`/`future` goals are positions reached inside the same fragment (future: at or after the copy's start)."""
    rollout = hand_made_rollout()
    bounds = {3: (0, 3), 5: (4, 5), 11: (6, 11)}
    for seed in range(20):
        copies = relabel(env, strategy, k=3, seed=seed)
        for copy in np.split(np.arange(len(copies["index"])), np.flatnonzero(copies["copy_end"])[:-1] + 1):
            first = copies["index"][copy[0]]
            start, stop = next(b for b in bounds.values() if b[0] <= first <= b[1])
            assert np.all(copies["index"][copy] <= stop), "a copy ran into the next fragment"
            # the goal is a position reached inside this fragment, and for `future` at or after the copy's start
            earliest = first if strategy == "future" else start
            assert (rollout["next_achieved_goal"][earliest : stop + 1] == copies["goal"][copy[0]]).all(1).any()


def test_k_copies_per_fragment(env):
    """--her-k k gives k copies of every fragment."""
    assert relabel(env, "episode", k=4)["copy_end"].sum() == 4 * 3


def test_gae_of_copy_treats_last_step_as_terminal():
    """The last step of a relabelled copy does not bootstrap: its advantage is r - V, whatever V(next) is."""
    advantages = ppo_her.compute_gae(
        rewards=np.array([0.0, 1.0, 0.0, 1.0]), values=np.array([0.2, 0.5, 0.1, 0.3]),
        next_values=np.array([0.5, 100.0, 0.3, 100.0]), terminals=np.array([0, 1, 0, 1.0]),
        sequence_ends=np.array([0, 1, 0, 1], bool), gamma=0.99, lam=0.95)
    assert advantages[1] == pytest.approx(0.5) and advantages[3] == pytest.approx(0.7)
    delta0 = 0.0 + 0.99 * 0.5 - 0.2
    assert advantages[0] == pytest.approx(delta0 + 0.99 * 0.95 * 0.5)


def test_logprobs_and_values_are_recomputed_under_new_goal(env):
    """Unchanged goal -> identical log-probs and values; a new goal -> different ones."""
    torch.manual_seed(0)
    agent = ppo_her.Agent(env.observation_space, 3, 64)
    obs = np.random.default_rng(0).uniform(-5, 5, (6, 9)).astype(np.float32)
    actions = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    with torch.no_grad():
        _, logprobs, _, values = agent.get_action_and_value(torch.from_numpy(obs), torch.from_numpy(actions))
    copies = dict(index=np.arange(6), goal=obs[:, -3:].copy(), reward=np.zeros(6, np.float32),
                  terminal=np.eye(6)[5], copy_end=np.eye(6, dtype=bool)[5])
    same = ppo_her.relabelled_batch(agent, obs, actions, copies, 3, 0.99, 0.95, "cpu")
    np.testing.assert_allclose(same["logprobs"], logprobs.numpy())
    np.testing.assert_allclose(same["values"], values.flatten().numpy())
    np.testing.assert_allclose(same["returns"], same["advantages"] + same["values"])
    copies["goal"] = copies["goal"] + 3.0
    moved = ppo_her.relabelled_batch(agent, obs, actions, copies, 3, 0.99, 0.95, "cpu")
    assert not np.allclose(moved["values"], same["values"])
    assert np.all(moved["obs"][:, -3:] == copies["goal"])


def test_short_run_learns_static_prey(tmp_path):
    """Static prey, apart spawn, seed 1: PPO-HER reaches >= 0.9 success within 30,000 env steps."""
    out = run_script("ppo_her", tmp_path, "--prey", "static", "--spawn", "apart", "--total-timesteps", "30000",
                     "--stop-at-success", "0.9")
    assert out.returncode == 0, out.stderr
    successes = [float(line.split("success")[1].split()[0]) for line in out.stdout.splitlines()
                 if line.startswith("step")]
    assert max(successes) >= 0.9, out.stdout


def test_no_her_runs(tmp_path):
    """--no-her is plain PPO: it runs and logs no relabelled data."""
    out = run_script("ppo_her", tmp_path, "--no-her", "--total-timesteps", "512", "--num-steps", "256")
    assert out.returncode == 0, out.stderr
    assert "step      512/512" in out.stdout


def test_ctrl_c_keeps_the_log(tmp_path):
    """Ctrl-C mid-run: exit 0, a note of where it stopped, and a readable TensorBoard log of the work done."""
    out = interrupt_script("ppo_her", tmp_path, "--num-steps", "256", "--total-timesteps", "10000000")
    assert out.returncode == 0 and "interrupted at step" in out.stdout and "Traceback" not in out.stderr, out.stderr
    assert "charts/SPS" in read_scalars(tmp_path)


@pytest.mark.parametrize("flags", [["--total-timesteps", "-5"], ["--prey", "jumpy"], ["--her-k", "0"],
                                   ["--env-id", "Nope-v0"], ["--her-strategy", "best"]])
def test_bad_flags_exit_with_one_line(tmp_path, flags):
    """Bad flags: non-zero exit, exactly one line on stderr, no traceback."""
    assert_one_line_error("ppo_her", tmp_path, *flags)
