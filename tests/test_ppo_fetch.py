"""The three PPO scripts on the Fetch goal tasks: relabelling of truncated fragments, the frozen running normaliser,
MEHER's failure goals and S-ratio, bad --env-id input, and a short FetchReach-v4 run of each script."""
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import (NOT_VECTORISED_ENV, assert_one_line_error, assert_one_line_error_in_process, load_checkpoint,
                      load_script, only_run, read_scalars, run_script)

ppo_her = load_script("ppo_her")
meher = load_script("meher")
THRESHOLD = 0.05  # FetchReach's distance_threshold: a goal is reached within 5 cm


@pytest.fixture(scope="module")
def fetch():
    """One FetchReach-v4 env: its observation space and its vectorised compute_reward (-1, or 0 within 5 cm)."""
    env = gym.make("FetchReach-v4").unwrapped
    yield env
    env.close()


def fetch_like_rollout(episodes=6, length=50, num_steps=64, seed=0):
    """Fetch-like real data in the scripts' flat env-major layout: `episodes` envs x `num_steps` steps of episodes
    that only a time limit (`length` steps) ends, so every env has a truncated fragment and an unfinished one; the
    gripper wanders 1 cm per step from the start while each episode's goal lies 10-15 cm away; FetchReach's
    rewards (-1, or 0 within 5 cm of the goal)."""
    rng = np.random.default_rng(seed)
    n = episodes * num_steps
    step_in_episode = np.tile(np.arange(num_steps) % length + 1, episodes)
    truncated = step_in_episode == length
    fragment_end = truncated | (np.arange(n) % num_steps == num_steps - 1)
    fragment = np.cumsum(np.concatenate([[0], fragment_end[:-1]]))
    start, walk = np.array([1.3, 0.75, 0.5]), np.cumsum(rng.normal(0, 0.01, (n, 3)), 0)
    achieved = start + walk - walk[np.concatenate([[0], np.flatnonzero(fragment_end)[:-1] + 1])][fragment]
    direction = rng.normal(size=(fragment.max() + 1, 3))
    distance = rng.uniform(0.10, 0.15, (fragment.max() + 1, 1))
    desired = (start + distance * direction / np.linalg.norm(direction, axis=1, keepdims=True))[fragment]
    reward = -(np.linalg.norm(achieved - desired, axis=1) > THRESHOLD).astype(np.float32)
    return dict(next_achieved_goal=achieved.astype(np.float32), desired_goal=desired.astype(np.float32),
                episode_steps=step_in_episode, fragment_end=fragment_end, truncated=truncated,
                terminal=np.zeros(n, np.float32), reward=reward)


def test_copies_run_to_the_cut_and_bootstrap_from_the_final_observation(fetch):
    """Fetch has no terminal rewards: a copy covers its whole fragment, its rewards are compute_reward's (-1, or 0 on
    the goal) and none is terminal; at a time limit its next state is the episode's final observation under the
    copy's goal, not the next episode's first observation (which the flat layout has at the following index)."""
    rollout = fetch_like_rollout(episodes=2)
    copies = ppo_her.relabel(rollout, "final", 1, fetch.compute_reward, np.random.default_rng(0), ())
    np.testing.assert_array_equal(copies["index"], np.arange(len(rollout["fragment_end"])))
    np.testing.assert_array_equal(copies["reward"], fetch.compute_reward(rollout["next_achieved_goal"], copies["goal"],
                                                                           None))
    assert set(np.unique(copies["reward"])) == {-1.0, 0.0} and not copies["terminal"].any()
    np.testing.assert_array_equal(copies["copy_end"], rollout["fragment_end"])

    torch.manual_seed(0)
    agent = ppo_her.Agent(fetch.observation_space, 4, 16)
    n, rng = len(copies["index"]), np.random.default_rng(1)
    obs = rng.normal(1.0, 0.3, (n, 16)).astype(np.float32)
    next_obs = np.roll(obs, -1, axis=0)
    cut = 49  # env 0's first episode ends here by the time limit; its final observation is not obs[50]
    next_obs[cut] = rng.normal(1.0, 0.3, 16)
    actions = rng.normal(size=(n, 4)).astype(np.float32)
    batch = ppo_her.relabelled_batch(agent, obs, next_obs, actions, copies, 3, ppo_her.Args(), "cpu")
    goal = copies["goal"][cut]
    with torch.no_grad():
        value = lambda x: agent.get_value(torch.from_numpy(np.concatenate([x[:-3], goal])[None])).item()  # noqa: E731
        expected = copies["reward"][cut] + 0.99 * value(next_obs[cut]) - value(obs[cut])
        wrong = copies["reward"][cut] + 0.99 * value(obs[cut + 1]) - value(obs[cut])
    assert batch["advantages"][cut] == pytest.approx(expected, abs=1e-5)
    assert abs(expected - wrong) > 1e-3, "the test cannot tell the final observation from the next episode's first"


def test_normaliser_is_frozen_during_an_update_and_moves_after_it(fetch):
    """Fetch's observations are unbounded: the Agent normalises them with running statistics that a PPO update leaves
    alone (the first minibatch's ratio is exactly 1: the rollout's log-probs stay valid), and that update_normaliser
    then moves to the mean and standard deviation of all observations so far, floored at 0.01. Predator-Prey keeps
    its fixed scale."""
    torch.manual_seed(0)
    agent = ppo_her.Agent(fetch.observation_space, 4, 16, init_logstd=np.log(0.6))
    assert agent.running_normaliser and torch.allclose(agent.actor_logstd.exp(), torch.tensor(0.6))
    assert not ppo_her.Agent(gym.make("PredatorPrey-v0").observation_space, 3, 16).running_normaliser
    rng = np.random.default_rng(0)
    obs = torch.tensor(rng.normal(1.0, 0.2, (256, 16)), dtype=torch.float32)
    obs[:, 3] = 0.5  # a constant input, as FetchReach's gripper
    with torch.no_grad():
        actions, logprobs, _, values = agent.get_action_and_value(obs)
    batch = dict(obs=obs.numpy(), actions=actions.numpy(), logprobs=logprobs.numpy(), values=values.flatten().numpy(),
                 advantages=rng.normal(size=256).astype(np.float32), returns=rng.normal(size=256).astype(np.float32))
    args = ppo_her.Args(update_epochs=1, minibatch_size=256, weight_decay=1e-3)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3, weight_decay=args.weight_decay, fused=True)
    frozen = [buffer.clone() for buffer in agent.buffers()]
    losses = ppo_her.ppo_update(agent, optimizer, batch, args, "cpu")
    assert losses["approx_kl"] == pytest.approx(0.0, abs=1e-6) and losses["clipfrac"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(frozen, agent.buffers()))

    agent.update_normaliser(obs.double())
    torch.testing.assert_close(agent.obs_shift, obs.mean(0))
    torch.testing.assert_close(agent.obs_scale, obs.std(0, unbiased=False).clamp(min=0.01))
    more = torch.tensor(rng.normal(2.0, 0.5, (128, 16)), dtype=torch.float32)
    agent.update_normaliser(more.double())
    both = torch.cat([obs, more])
    torch.testing.assert_close(agent.obs_shift, both.mean(0))
    torch.testing.assert_close(agent.obs_scale, both.std(0, unbiased=False).clamp(min=0.01))
    assert agent.normalise(torch.full((1, 16), 100.0)).max() == 5.0  # clipped as baselines does


@pytest.mark.parametrize("failure", ["random", "targeted"])
@pytest.mark.parametrize("s_ratio", [0.0, 0.6, 1.0])
def test_meher_failure_goals_are_never_reached_and_s_ratio_holds(fetch, s_ratio, failure):
    """MEHER on Fetch-like fragments: a failure copy's goal is reached by no achieved goal of its fragment under
    compute_reward; `random` takes it from another episode's desired goal, `targeted` 1.1 x the distance threshold
    from the fragment's final position; whole failure copies run to their fragment's end, all -1, none terminal;
    successes / finished episodes (those the time limit ended, by their last reward) is D within one episode."""
    rollout = fetch_like_rollout()
    copies, real_kept, outcomes, _ = meher.meher_relabel(rollout, s_ratio, failure, "final", THRESHOLD, np.inf,
                                                         fetch.compute_reward, np.random.default_rng(0), ())
    ends = np.flatnonzero(rollout["fragment_end"])
    starts = np.concatenate([[0], ends[:-1] + 1])
    failures = 0
    for copy in np.split(np.arange(len(copies["index"])), np.flatnonzero(copies["copy_end"])[:-1] + 1):
        start = starts[np.searchsorted(ends, copies["index"][copy[0]])]
        end = ends[np.searchsorted(ends, copies["index"][copy[0]])]
        np.testing.assert_array_equal(copies["index"][copy], np.arange(start, end + 1))
        goal = copies["goal"][copy[0]]
        if copies["reward"][copy[-1]] == 0:
            continue  # a success copy
        failures += 1
        achieved = rollout["next_achieved_goal"][start : end + 1]
        assert not (fetch.compute_reward(achieved, np.broadcast_to(goal, achieved.shape), None) == 0).any()
        assert np.linalg.norm(achieved - goal, axis=1).min() > THRESHOLD
        assert np.all(copies["reward"][copy] == -1) and not copies["terminal"][copy].any()
        if failure == "random":
            sources = np.flatnonzero((rollout["desired_goal"][ends] == goal).all(1))
            assert sources.size and not np.isin(end, ends[sources]), "not another episode's desired goal"
        else:
            assert np.linalg.norm(goal - achieved[-1]) == pytest.approx(1.1 * THRESHOLD, rel=1e-4)
    if s_ratio == 0.0:
        assert failures == len(ends)  # every fragment has a failure copy
    finished = real_kept & rollout["truncated"]
    assert len(outcomes) == finished.sum() + copies["copy_end"].sum()
    assert abs(outcomes.mean() - s_ratio) <= 1 / len(outcomes) + 1e-9


def test_meher_gives_a_lone_fragment_no_failure_copy(fetch):
    """A rollout of one unfinished fragment has no other episode's goal to fail at: no failure copy, and no crash."""
    rollout = fetch_like_rollout(episodes=1, num_steps=20)
    copies, _, outcomes, _ = meher.meher_relabel(rollout, 0.0, "random", "final", THRESHOLD, np.inf,
                                                 fetch.compute_reward, np.random.default_rng(0), ())
    assert len(copies["index"]) == 0 and len(outcomes) == 0


@pytest.mark.parametrize("script", ["ppo_her", "meher", "ppo_her_2_ppo"])
def test_bad_env_input_is_one_line_on_the_command_line(tmp_path, monkeypatch, script):
    """Through each script's command line: a compute_reward that is not vectorised gives exit status 1, one line on
    stderr and no run folder."""
    (tmp_path / "one_goal_env.py").write_text(NOT_VECTORISED_ENV)
    monkeypatch.syspath_prepend(str(tmp_path))  # in this process: PYTHONPATH is sys.path
    out = assert_one_line_error_in_process(script, tmp_path, "--env-id", "one_goal_env:OneGoalAtATime-v0")
    assert "scores many goals at once" in out.stderr and not (tmp_path / "runs").exists(), out.stderr


SMALL = ["--env-id", "FetchReach-v4", "--num-envs", "2", "--num-steps", "256", "--hidden-size", "32",
         "--update-epochs", "2", "--init-logstd", "-0.5", "--weight-decay", "1e-4"]  # 512 env steps per iteration


@pytest.mark.parametrize("script", ["ppo_her", "meher", "ppo_her_2_ppo"])
def test_short_fetch_reach_run(tmp_path, script):
    """Two iterations on FetchReach-v4 with two MuJoCo subprocesses (PPO-HER: one, then `--resume` for the second,
    with fresh envs): the run logs 50-step episodes, a success rate and finite losses; its checkpoint holds the
    normaliser's statistics of all 1,024 real observations (and no envs), and the normaliser has moved from its
    start (shift 0, scale 1)."""
    flags = SMALL + (["--s-ratio", "0.6"] if script == "meher" else [])
    if script == "ppo_her":
        out = run_script(script, tmp_path, *flags, "--total-timesteps", "512")
        assert out.returncode == 0, out.stderr
        flags += ["--resume", str(only_run(tmp_path))]
    out = run_script(script, tmp_path, *flags, "--total-timesteps", "1024")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith("FetchReach-v4, budget 1024 env steps = 2 rollouts")
    scalars = read_scalars(tmp_path)
    assert sorted(scalars["charts/success_rate"]) == [512, 1024]
    assert set(scalars["charts/episodic_length"].values()) == {50.0}
    assert all(-50 <= value <= 0 for value in scalars["charts/episodic_return"].values())
    assert all(np.isfinite(list(scalars[f"losses/{name}"].values())).all() for name in ("value_loss", "approx_kl"))
    if script == "meher":
        for step, s_ratio in scalars["her/s_ratio"].items():
            assert abs(s_ratio - 0.6) <= 1 / scalars["her/finished_episodes"][step] + 1e-6
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint["envs"] is None and checkpoint["agent"]["obs_moments"][0].eq(1024).all()
    assert not torch.equal(checkpoint["agent"]["obs_scale"], torch.ones(16))


def test_fetch_video_or_one_line_error(tmp_path, monkeypatch):
    """--capture-video on FetchReach-v4: with MUJOCO_GL=egl an MP4 of one 50-step evaluation episode (51 pictures);
    where MuJoCo cannot draw (MUJOCO_GL=glfw without a display), one line before anything starts."""
    import imageio

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("MUJOCO_GL", "glfw")
    out = assert_one_line_error("ppo_her", tmp_path, *SMALL, "--total-timesteps", "512", "--capture-video")
    assert "--capture-video" in out.stderr and "MUJOCO_GL" in out.stderr and not (tmp_path / "runs").exists()
    monkeypatch.setenv("MUJOCO_GL", "egl")
    out = run_script("ppo_her", tmp_path, *SMALL, "--total-timesteps", "512", "--capture-video", "--eval-episodes", "1")
    if out.returncode != 0 and "cannot draw here" in out.stderr:
        pytest.skip(f"MuJoCo does not draw offscreen here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    (video,) = (tmp_path / "videos" / only_run(tmp_path).name).iterdir()
    frames = [frame for frame in imageio.get_reader(video)]
    assert len(frames) == 51 and frames[0].ndim == 3 and os.path.getsize(video) > 0
