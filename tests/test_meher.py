"""algorithms/meher.py: S-ratio after dropping, H(S), failure goals and rewards, success copies, a short run, flags."""
import gymnasium as gym
import numpy as np
import pytest

from conftest import (assert_one_line_error, assert_one_line_error_in_process, assert_resume_is_identical, load_script,
                      read_scalars, run_in_process, run_script)

meher = load_script("meher")
RADIUS, GRID = 1.0, 10.0
S_RATIOS = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.fixture(scope="module")
def env():
    return gym.make("PredatorPrey-v0", radius=RADIUS, grid_size=GRID).unwrapped


def collect_rollout(skill, num_envs=4, num_steps=128, seed=0):
    """A real rollout in the script's flat, env-major layout: each step the predator heads for the prey with
    probability `skill`, else acts at random (skill 0: mostly failures, 1: mostly successes)."""
    envs = gym.make_vec("PredatorPrey-v0", num_envs=num_envs, vectorization_mode="vector_entry_point",
                        radius=RADIUS, grid_size=GRID, autoreset_mode="same_step")
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset(seed=seed)
    steps = {key: [] for key in ("next_achieved_goal", "desired_goal", "episode_steps", "reward", "terminal")}
    for _ in range(num_steps):
        toward = np.clip(obs["desired_goal"] - obs["achieved_goal"], -1, 1)
        action = np.where(rng.random((num_envs, 1)) < skill, toward, rng.uniform(-1, 1, toward.shape))
        steps["desired_goal"].append(obs["desired_goal"])
        obs, reward, terminal, _, infos = envs.step(action.astype(np.float32))
        steps["next_achieved_goal"].append(infos["final_obs"]["achieved_goal"] if "final_obs" in infos
                                           else obs["achieved_goal"])
        steps["episode_steps"].append(infos["episode_steps"])
        steps["reward"].append(reward)
        steps["terminal"].append(terminal.astype(np.float32))
    rollout = {key: np.swapaxes(np.array(value), 0, 1).reshape(num_envs * num_steps, *np.shape(value[0])[1:])
               for key, value in steps.items()}
    rollout["fragment_end"] = (rollout["terminal"] > 0) | (np.arange(num_envs * num_steps) % num_steps == num_steps - 1)
    rollout["truncated"] = np.zeros(num_envs * num_steps, bool)  # Predator-Prey's failure step terminates
    return rollout


def meher_batch(env, s_ratio, failure="random", skill=0.5, seed=0):
    rollout = collect_rollout(skill, seed=seed)
    copies, real_kept, outcomes, dropped = meher.meher_relabel(rollout, s_ratio, failure, "final", RADIUS, GRID,
                                                               env.compute_reward, np.random.default_rng(seed),
                                                               terminal_rewards=(1.0, -1.0))
    return rollout, copies, real_kept, outcomes, dropped


def split_copies(copies):
    """Positions (into the copies arrays) of each relabelled copy."""
    return np.split(np.arange(len(copies["index"])), np.flatnonzero(copies["copy_end"])[:-1] + 1)


@pytest.mark.parametrize("skill", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("s_ratio", S_RATIOS)
def test_batch_s_ratio_is_target_within_one_episode(env, s_ratio, skill):
    """After dropping, successes / finished episodes (real + relabelled) is D within one episode; whole episodes
    are dropped and unfinished real fragments are kept; the returned outcomes are those of the batch's episodes."""
    rollout, copies, real_kept, returned_outcomes, dropped = meher_batch(env, s_ratio, skill=skill)
    real_end = real_kept & (rollout["terminal"] > 0)
    outcomes = np.concatenate([rollout["reward"][real_end], copies["reward"][copies["copy_end"]]])
    assert np.all(np.isin(outcomes, [1, -1, 0])) and len(outcomes) > 0  # 0: a failure copy that bootstraps
    assert sorted(returned_outcomes) == sorted(outcomes == 1)
    assert abs(np.mean(outcomes == 1) - s_ratio) <= 1 / len(outcomes)
    if s_ratio in (0.0, 1.0):
        assert np.all((outcomes == 1) == (s_ratio == 1)), "D = 0 or 1 keeps one class only"
    total = (rollout["terminal"] > 0).sum() + rollout["fragment_end"].sum()  # real episodes + one copy per fragment
    assert dropped == total - len(outcomes)
    ends = np.flatnonzero(rollout["fragment_end"])
    fragment_kept = np.split(real_kept, ends[:-1] + 1)
    assert all(kept.all() or not kept.any() for kept in fragment_kept), "a real episode was cut, not dropped whole"
    unfinished = rollout["terminal"][ends] == 0
    assert all(kept.all() for kept, open_ in zip(fragment_kept, unfinished) if open_)


@pytest.mark.parametrize("skill, copies_succeed", [(0.0, True), (1.0, False)])
def test_success_probability_follows_real_success_rate(env, skill, copies_succeed):
    """N = clip(2D - A, 0, 1) at D = 0.5: real successes A = 0 make every copy a success, A = 1 every copy a failure."""
    rollout, copies, _, _, _ = meher_batch(env, 0.5, skill=skill)
    real_success = rollout["reward"][rollout["terminal"] > 0] == 1
    assert np.all(real_success != copies_succeed), "the rollout should be all failures (skill 0) or all successes (1)"
    assert np.all((copies["reward"][copies["copy_end"]] == 1) == copies_succeed)


@pytest.mark.parametrize("s_ratio", S_RATIOS)
@pytest.mark.parametrize("success", [[], [True] * 7, [False] * 7, [True] * 3 + [False] * 40, [True] * 40 + [False] * 3])
def test_keep_episodes_edge_cases(s_ratio, success):
    """Empty batches and batches with one class only: D = 0 or 1 drops the whole other class, otherwise the kept
    S-ratio is D within one episode, and only one class loses episodes."""
    success = np.array(success, bool)
    keep = meher.keep_episodes(success, s_ratio, np.random.default_rng(0))
    kept = success[keep]
    assert (keep[success].all() or keep[~success].all()), "both classes lost episodes"
    if len(kept):
        assert abs(kept.mean() - s_ratio) <= 1 / len(kept)
    assert s_ratio > 0 or not kept.any()
    assert s_ratio < 1 or kept.all()


def test_reward_entropy():
    """H(S) = -S log2 S - (1 - S) log2 (1 - S): 1 at 0.5, 0 at 0 and 1, 0.811 at 0.25 and 0.75."""
    assert meher.reward_entropy(0.5) == pytest.approx(1.0)
    assert meher.reward_entropy(0.0) == meher.reward_entropy(1.0) == 0.0
    assert meher.reward_entropy(0.25) == pytest.approx(0.8112781) == meher.reward_entropy(0.75)


@pytest.mark.parametrize("failure", ["random", "targeted"])
def test_failure_copies(env, failure):
    """D = 0 makes every copy a failure: its goal (inside the box) is within the radius of no achieved position of
    its fragment, a targeted goal lies 1.1 x radius from the final position, the copy covers the whole fragment,
    and its rewards are compute_reward's: -1 and terminal only where the real episode hit its time limit; where it
    ended at a capture (the episode would have gone on under the copy's goal) or at the rollout's end, 0 and no
    terminal, so the copy bootstraps there."""
    rollout, copies, _, _, _ = meher_batch(env, 0.0, failure, skill=0.5)
    ends = np.flatnonzero(rollout["fragment_end"])
    assert copies["copy_end"].sum() == len(ends)
    achieved = rollout["next_achieved_goal"]
    for copy, start, end in zip(split_copies(copies), np.concatenate([[0], ends[:-1] + 1]), ends):
        goal = copies["goal"][copy[0]]
        np.testing.assert_array_equal(copies["index"][copy], np.arange(start, end + 1))
        assert np.all(copies["goal"][copy] == goal) and np.all(np.abs(goal) <= GRID)
        assert np.linalg.norm(achieved[start : end + 1] - goal, axis=1).min() > RADIUS
        if failure == "targeted":
            assert np.linalg.norm(goal - achieved[end]) == pytest.approx(1.1 * RADIUS, rel=1e-5)
        expected = env.compute_reward(achieved[start : end + 1], goal,
                                      {"episode_steps": rollout["episode_steps"][start : end + 1]})
        np.testing.assert_array_equal(copies["reward"][copy], expected)
        time_limit = rollout["episode_steps"][end] > env.max_episode_steps
        assert copies["reward"][copy[-1]] == -float(time_limit) and copies["terminal"][copy[-1]] == time_limit
        assert not copies["terminal"][copy[:-1]].any()
    captured_early = (rollout["reward"][ends] == 1) & (rollout["episode_steps"][ends] <= env.max_episode_steps)
    assert captured_early.any() and (rollout["reward"][ends] == -1).any()  # both kinds of end are checked


def test_success_copies_end_at_first_hindsight_success(env):
    """D = 1 makes every copy a success (`final` goal): rewards are compute_reward's and each copy stops at its first
    hindsight capture, +1 and terminal."""
    rollout, copies, _, _, _ = meher_batch(env, 1.0, skill=0.0)
    achieved = rollout["next_achieved_goal"]
    expected = env.compute_reward(achieved[copies["index"]], copies["goal"],
                                  {"episode_steps": rollout["episode_steps"][copies["index"]]})
    np.testing.assert_array_equal(copies["reward"], expected)
    ends = np.flatnonzero(rollout["fragment_end"])
    for copy in split_copies(copies):
        end = ends[np.searchsorted(ends, copies["index"][copy[0]])]
        np.testing.assert_array_equal(copies["goal"][copy[0]], achieved[end])
        assert copies["reward"][copy[-1]] == 1 and copies["terminal"][copy[-1]]
        assert np.all(copies["reward"][copy[:-1]] == 0) and not copies["terminal"][copy[:-1]].any()


def test_short_run_keeps_s_ratio_on_target(tmp_path):
    """Every update of a short run has her/s_ratio within one finished episode of her/s_ratio_target."""
    out = run_script("meher", tmp_path, "--total-timesteps", "8192", "--num-steps", "1024", "--update-epochs", "2",
                     "--hidden-size", "64", "--s-ratio", "0.6", "--failure", "targeted")
    assert out.returncode == 0, out.stderr
    scalars = read_scalars(tmp_path)
    assert sorted(scalars["her/s_ratio"]) == [1024 * i for i in range(1, 9)]
    for step, s_ratio in scalars["her/s_ratio"].items():
        assert scalars["her/s_ratio_target"][step] == pytest.approx(0.6)
        assert abs(s_ratio - 0.6) <= 1 / scalars["her/finished_episodes"][step] + 1e-6, step
        assert scalars["her/reward_entropy"][step] == pytest.approx(meher.reward_entropy(s_ratio), abs=1e-6)
    assert sum(scalars["her/episodes_dropped"].values()) > 0


def test_failure_goals_without_a_box_are_other_fragments_goals():
    """Fetch (no box, G = inf): a random failure goal is the desired goal of another fragment that no position of this
    fragment reaches; a fragment that reaches every other fragment's goal gets NaN (no failure copy)."""
    def compute_reward(achieved, goal, info):  # Fetch's: 0 within 0.05, else -1
        return -(np.linalg.norm(achieved - goal, axis=-1) > 0.05).astype(np.float32)

    achieved = np.array([[0.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [2.0, 0, 0]])
    desired = np.array([[0.0, 0, 0], [5.0, 0, 0], [0.0, 0, 0], [6.0, 0, 0], [0.0, 0, 0], [7.0, 0, 0]])
    fragment_end = np.array([0, 1, 0, 1, 0, 1], bool)
    for seed in range(10):
        goals = meher.failure_goals(achieved, desired, fragment_end, "random", 0.05, np.inf, compute_reward,
                                    np.random.default_rng(seed))
        for fragment, goal in enumerate(goals):
            others = [desired[end] for end in (1, 3, 5) if end != 2 * fragment + 1]
            assert any(np.array_equal(goal, other) for other in others), "not another fragment's desired goal"
            assert np.linalg.norm(achieved[2 * fragment : 2 * fragment + 2] - goal, axis=1).min() > 0.05
    everywhere = np.array([[5.0, 0, 0], [6.0, 0, 0], [6.0, 0, 0], [5.0, 0, 0]])  # each reaches the other's goal
    goals = meher.failure_goals(everywhere, everywhere, np.array([0, 1, 0, 1], bool), "random", 0.05, np.inf,
                                compute_reward, np.random.default_rng(0))
    assert np.isnan(goals).all()


def test_no_failure_goal_in_a_covered_box_names_the_flag(env):
    """A box so small that one capture radius covers it has no failure goal: the run stops with a message that names
    --grid-size, not with an endless loop or a traceback."""
    achieved = np.zeros((3, 3), np.float32)
    with pytest.raises(SystemExit, match="--grid-size"):
        meher.failure_goals(achieved, achieved, np.array([0, 0, 1], bool), "random", RADIUS, 0.5,
                            env.compute_reward, np.random.default_rng(0))


@pytest.mark.parametrize("flags", [["--s-ratio", "1.5"], ["--s-ratio", "-0.1"], ["--her-k", "2"]])
def test_bad_flags_exit_with_one_line(tmp_path, flags):
    """An S-ratio outside [0, 1], more than one copy: one line on stderr naming the flag, non-zero exit, no run (in
    this process; `--s-ratio 1.5` also through the real command line)."""
    check = assert_one_line_error if flags == ["--s-ratio", "1.5"] else assert_one_line_error_in_process
    out = check("meher", tmp_path, *flags)
    assert flags[0] in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


def test_unknown_failure_method_names_the_choices(tmp_path):
    """An unknown failure method: tyro's message names --failure and the valid choices, non-zero exit, no
    traceback, no run."""
    out = run_in_process("meher", tmp_path, "--failure", "far")
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert "--failure" in out.stderr and "targeted" in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_continues_bit_identically(tmp_path):
    """MEHER's random draws (copy kinds, failure goals, dropped episodes) continue from the checkpoint: one iteration
    then `--resume` gives the same weights and the same S-ratios as two iterations in one run."""
    flags = ["--s-ratio", "0.6", "--failure", "targeted", "--num-envs", "8", "--num-steps", "64", "--hidden-size", "16",
             "--update-epochs", "2"]
    scalars = assert_resume_is_identical("meher", tmp_path, flags, 512, 1024)
    assert sorted(scalars["her/s_ratio"]) == [512, 1024]
