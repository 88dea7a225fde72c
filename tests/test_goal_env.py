"""envs/goal_env.py: the one constructor of a goal task's vector env, its refusals, and the episode player that
records MP4 files."""
import imageio
import numpy as np
import pytest

from conftest import NOT_VECTORISED_ENV
from envs import GoalEnvError, make_goal_env, play_episodes


def step_until_an_episode_ends(envs, seed=0):
    """Steps with random actions until some env finishes; returns that step's results and the obs before it."""
    obs, _ = envs.reset(seed=seed)
    envs.action_space.seed(seed)
    while True:
        before = obs
        obs, reward, terminated, truncated, infos = envs.step(envs.action_space.sample())
        if (terminated | truncated).any():
            return before, obs, reward, terminated | truncated, infos


def test_predator_prey_restarts_a_finished_episode_inside_its_step():
    """Predator-Prey: the finished env restarts in the same step (its new obs is a fresh spawn, its last one is in
    final_obs), and the info counts the episode: length and return (+1 or -1, the task's only rewards)."""
    envs = make_goal_env("PredatorPrey-v0", 4, prey="static", max_episode_steps=5)
    _, obs, reward, done, infos = step_until_an_episode_ends(envs)
    i = np.flatnonzero(done)[0]
    assert infos["episode_return"][i] == reward[i] and abs(reward[i]) == 1
    assert 1 <= infos["episode_steps"][i] <= 6
    assert not np.array_equal(infos["final_obs"]["achieved_goal"][i], obs["achieved_goal"][i])
    assert envs.max_episode_steps == 5
    goals = np.zeros((2, 3))
    np.testing.assert_array_equal(envs.compute_reward(goals, goals, None), [1.0, 1.0])


def test_fetch_reach_restarts_in_subprocesses_or_waits_for_a_reset():
    """FetchReach-v4 with two envs (subprocesses): at the 50-step time limit both episodes restart in the same step
    with new goals, final_obs holds the last observation; with restart_finished=False they wait for a reset."""
    envs = make_goal_env("FetchReach-v4", 2)
    assert envs.max_episode_steps == 50 and "Async" in repr(envs)
    before, obs, _, done, infos = step_until_an_episode_ends(envs)
    assert done.all() and list(infos["episode_steps"]) == [50, 50] and (infos["episode_return"] <= 0).all()
    assert not np.array_equal(obs["desired_goal"], before["desired_goal"])  # new episodes, new goals
    np.testing.assert_array_equal(infos["final_obs"]["desired_goal"], before["desired_goal"])
    envs.close()
    waiting = make_goal_env("FetchReach-v4", 1, restart_finished=False)
    before, obs, _, done, _ = step_until_an_episode_ends(waiting)
    np.testing.assert_array_equal(obs["desired_goal"], before["desired_goal"])  # not reset
    waiting.close()


@pytest.mark.parametrize("env_id, options, says", [
    ("NoSuchEnv-v0", {}, "--env-id NoSuchEnv-v0"),
    ("CartPole-v1", {}, "--env-id CartPole-v1: must be a goal env"),
    ("one_goal_env:OneGoalAtATime-v0", {}, "compute_reward scores many goals at once"),
    ("FetchReach-v4", dict(prey="static", radius=2.0, num_dims=3), "--prey static, --radius 2.0: Predator-Prey"),
    ("PredatorPrey-v0", dict(num_dims=9), "--num-dims 9: must be one of 2, 3, 4, 5, 6"),
    ("PredatorPrey-v0", dict(max_episode_steps=-1), "--max-episode-steps -1: must be in (0, 1e6]"),
    ("PredatorPrey-v0", dict(radius=6.0), "--radius 6.0: must be below --grid-size / 2"),
])
def test_refusals_name_the_flag(tmp_path, monkeypatch, env_id, options, says):
    """A task that cannot be built as asked is one GoalEnvError whose one line names the flag as the scripts spell
    it; Predator-Prey's options at their defaults are accepted for any task."""
    (tmp_path / "one_goal_env.py").write_text(NOT_VECTORISED_ENV)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(GoalEnvError) as refused:
        make_goal_env(env_id, 1, **options)
    assert says in str(refused.value) and "\n" not in str(refused.value), str(refused.value)
    make_goal_env("FetchReach-v4", 1, prey="random", num_dims=3).close()


def test_a_bad_option_is_refused_as_itself_even_with_video():
    """With capture_video the video check runs only after the options are checked, so a bad option is named as
    itself, not reported as a task that cannot draw."""
    with pytest.raises(GoalEnvError, match="--num-dims 9: must be one of"):
        make_goal_env("PredatorPrey-v0", 1, capture_video=True, num_dims=9)
    with pytest.raises(GoalEnvError, match="--prey static: Predator-Prey options"):
        make_goal_env("FetchReach-v4", 1, capture_video=True, prey="static")


def test_terminal_rewards_are_the_tasks_own():
    """Relabelling ends a copy at a terminal reward: Predator-Prey's capture and failure; none for Fetch."""
    assert make_goal_env("PredatorPrey-v0", 2).terminal_rewards == (1.0, -1.0)
    assert make_goal_env("FetchReach-v4", 1).terminal_rewards == ()


def test_play_episodes_records_every_step_and_the_last_picture(tmp_path):
    """Two Predator-Prey episodes of a policy that never moves against static prey (spawned apart: never caught,
    21 steps each): both fail, and the MP4 read back holds 2 x (21 steps + the last picture) frames of the
    rendered size. The same seed gives the same outcomes without a video."""
    path = tmp_path / "eval.mp4"
    stand_still = lambda obs: np.zeros(3, np.float32)  # noqa: E731
    successes = play_episodes("PredatorPrey-v0", stand_still, 2, 5, str(path), prey="static", spawn="apart")
    np.testing.assert_array_equal(successes, [0.0, 0.0])
    frames = [frame for frame in imageio.get_reader(path)]  # list() would ask its length: unknown
    assert len(frames) == 44 and frames[0].shape == (400, 800, 3)
    again = play_episodes("PredatorPrey-v0", stand_still, 2, 5, prey="static", spawn="apart")
    np.testing.assert_array_equal(again, successes)
