"""Tests of the Predator-Prey goal environment (envs/predator_prey.py).

What they protect: the task's rules (step order, rewards, prey behaviours, spawns), gymnasium conformance,
seeding, bad input, autoreset, the rgb_array pictures and pickled copies that continue exactly like the
original. State is set directly through `env.unwrapped.core` where a test needs an exact situation.
"""

import itertools
import pickle
import re
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from envs import PREY_BEHAVIOURS, SPAWN_MODES, PredatorPreyEnv, PredatorPreyVectorEnv
from envs import predator_prey_render as picture

CONDITIONS = list(itertools.product(PREY_BEHAVIOURS, SPAWN_MODES))
G = 10.0  # default grid_size
HYPOTHESIS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_single(**kwargs) -> PredatorPreyEnv:
    # not gymnasium.make: it takes max_episode_steps for its own TimeLimit wrapper instead of passing it on
    return PredatorPreyEnv(**kwargs)


def make_vector(num_envs, **kwargs) -> PredatorPreyVectorEnv:
    return gymnasium.make_vec("PredatorPrey-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def set_state(env, predator, prey, prey_vel=0.0) -> None:
    """Put the predator and the prey of every game of `env` at the given places."""
    core = env.unwrapped.core
    core.predator[:], core.prey_pos[:], core.prey_vel[:] = predator, prey, prey_vel


def random_actions(seed, steps, num_envs, num_dims=3, scale=1.5) -> np.ndarray:
    """Uniform actions, some of them out of range (they are clipped)."""
    return np.random.default_rng(seed).uniform(-scale, scale, (steps, num_envs, num_dims)).astype(np.float32)


def greedy(obs) -> np.ndarray:
    """Full speed straight at the prey: the direction scaled so that its largest component is 1."""
    direction = obs["desired_goal"] - obs["achieved_goal"]
    return direction / np.abs(direction).max(-1, keepdims=True)


def speed(obs) -> np.ndarray:
    return np.linalg.norm(obs["observation"].astype(np.float64), axis=-1)


def cap(num_dims) -> float:
    return np.sqrt(num_dims) / 2


# -- gymnasium conformance ---------------------------------------------------------------------------
@pytest.mark.parametrize("prey,spawn", CONDITIONS)
def test_check_env_passes(prey, spawn):
    """The single env passes gymnasium's env checker, without a single warning, in every condition."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gymnasium.make("PredatorPrey-v0", prey=prey, spawn=spawn).unwrapped)


# -- reward = compute_reward --------------------------------------------------------------------------
@HYPOTHESIS
@given(condition=st.sampled_from(CONDITIONS), num_dims=st.integers(2, 6), seed=st.integers(0, 2**31),
       data=st.data())
def test_step_reward_equals_compute_reward_unbatched(condition, num_dims, seed, data):
    """Single env: r_t == compute_reward(achieved_goal of obs_t+1, desired_goal of obs_t, info_t), per step
    and for the whole trajectory at once with a list of infos."""
    prey, spawn = condition
    actions = data.draw(arrays(np.float32, (30, num_dims), elements=st.floats(-3, 3, width=32)))
    env = make_single(prey=prey, spawn=spawn, num_dims=num_dims)
    obs, _ = env.reset(seed=seed)
    transitions = []
    for action in actions:
        next_obs, reward, terminated, _, info = env.step(action)
        assert reward == env.compute_reward(next_obs["achieved_goal"], obs["desired_goal"], info)
        transitions.append((next_obs["achieved_goal"], obs["desired_goal"], info, reward))
        obs = env.reset()[0] if terminated else next_obs
    achieved, desired, infos, rewards = zip(*transitions)
    np.testing.assert_array_equal(env.compute_reward(np.stack(achieved), np.stack(desired), infos), rewards)


@HYPOTHESIS
@given(condition=st.sampled_from(CONDITIONS), autoreset_mode=st.sampled_from(["same_step", "next_step"]),
       seed=st.integers(0, 2**31))
def test_step_reward_equals_compute_reward_batched(condition, autoreset_mode, seed):
    """Vector env: the whole batch's rewards == compute_reward(next achieved_goal, desired_goal, infos) in one
    call (next_step mode: except on the reset steps, which reward 0)."""
    prey, spawn = condition
    env = make_vector(64, prey=prey, spawn=spawn, autoreset_mode=autoreset_mode)
    obs, _ = env.reset(seed=seed)
    resetting = np.zeros(64, bool)
    for action in random_actions(seed, 30, 64):
        next_obs, reward, terminated, _, infos = env.step(action)
        achieved = next_obs["achieved_goal"]
        if "final_obs" in infos:
            achieved = np.where(infos["_final_obs"][:, None], infos["final_obs"]["achieved_goal"], achieved)
        expected = env.compute_reward(achieved, obs["desired_goal"], infos)
        np.testing.assert_array_equal(reward[~resetting], expected[~resetting])
        assert (reward[resetting] == 0).all()
        if autoreset_mode == "next_step":
            resetting = terminated
        obs = next_obs


# -- step order and episode ends ----------------------------------------------------------------------
@pytest.mark.parametrize("prey_x,prey_vx,action_x,captured", [
    (1.8, 0.0, 1.0, True),    # caught only because the predator moves before the check
    (2.0, 0.0, 1.0, True),    # caught at exactly the radius
    (1.5, 0.8, 1.0, True),    # escapes if it moved before the check
    (1.5, -0.8, 0.0, False),  # caught if it moved before the check
])
def test_capture_is_checked_after_predator_moves_and_before_prey_moves(prey_x, prey_vx, action_x, captured):
    """Step order: the predator moves, capture (distance <= radius) is checked, then the (uncaught) prey moves;
    compute_reward agrees."""
    env = make_single(prey="static", spawn="apart")
    env.reset(seed=0)
    set_state(env, predator=0.0, prey=[prey_x, 0, 0], prey_vel=[prey_vx, 0, 0])
    desired = env.unwrapped.core.observe(0)["desired_goal"]
    obs, reward, terminated, _, info = env.step(np.array([action_x, 0, 0], np.float32))
    assert reward == env.compute_reward(obs["achieved_goal"], desired, info)
    assert (reward, terminated, info["is_success"]) == ((1.0, True, 1.0) if captured else (0.0, False, 0.0))
    assert obs["achieved_goal"][0] == action_x
    assert obs["desired_goal"][0] == np.float32(prey_x if captured else prey_x + prey_vx)


@pytest.mark.parametrize("max_episode_steps", [20, 5])
def test_step_after_max_episode_steps_without_capture_fails(max_episode_steps):
    """Steps 1..max_episode_steps reward 0; the next one (the 21st by default) rewards -1 and ends the episode."""
    env = make_single(prey="static", spawn="apart", max_episode_steps=max_episode_steps)
    env.reset(seed=0)
    for t in range(1, max_episode_steps + 2):
        _, reward, terminated, truncated, info = env.step(np.zeros(3, np.float32))
        last = t == max_episode_steps + 1
        assert (reward, terminated, truncated) == ((-1.0 if last else 0.0), last, False)
        assert info == {"is_success": 0.0, "episode_steps": t}


@pytest.mark.parametrize("prey,spawn", CONDITIONS)
def test_every_episode_returns_plus_or_minus_one(prey, spawn):
    """Random play: every finished episode returns exactly +1 (is_success) or -1, within 21 steps."""
    env = make_vector(256, prey=prey, spawn=spawn, autoreset_mode="same_step")
    env.reset(seed=1)
    returns, lengths, finished = np.zeros(256), np.zeros(256, int), []
    for action in random_actions(1, 60, 256, scale=1.0):
        _, reward, terminated, _, infos = env.step(action)
        returns += reward
        lengths += 1
        assert (lengths <= 21).all()
        assert (infos["is_success"][terminated] == (returns[terminated] == 1)).all()
        finished.extend(returns[terminated])
        returns[terminated], lengths[terminated] = 0, 0
    assert len(finished) >= 256 and set(finished) <= {1.0, -1.0}


# -- prey behaviours ----------------------------------------------------------------------------------
@pytest.mark.parametrize("num_dims", range(2, 7))
@pytest.mark.parametrize("prey", PREY_BEHAVIOURS)
def test_prey_speed_never_exceeds_cap(prey, num_dims):
    """Prey speed <= sqrt(D)/2; the directed behaviours move at exactly the cap, static at 0."""
    env = make_vector(256, prey=prey, num_dims=num_dims, autoreset_mode="same_step")
    speeds = [speed(env.reset(seed=2)[0])]
    for action in random_actions(2, 30, 256, num_dims):
        speeds.append(speed(env.step(action)[0]))
    speeds = np.concatenate(speeds)
    assert speeds.max() <= cap(num_dims) * (1 + 1e-6)
    if prey == "static":
        assert speeds.max() == 0
    elif prey == "random":
        assert 0.45 * cap(num_dims) < speeds.mean() < 0.55 * cap(num_dims)  # speed ~ U(0, cap)
    else:
        np.testing.assert_allclose(speeds, cap(num_dims), rtol=1e-6)


def test_straight_away_moves_directly_away_from_predator():
    """straight_away: the prey velocity is parallel to prey - predator and points away from the predator."""
    env = make_vector(256, prey="straight_away", autoreset_mode="same_step")
    obs, _ = env.reset(seed=3)
    for action in random_actions(3, 30, 256):
        away = obs["desired_goal"] - obs["achieved_goal"]
        cosine = (obs["observation"] * away).sum(-1) / (speed(obs) * np.linalg.norm(away, axis=-1))
        np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)
        obs = env.step(action)[0]


def test_random_direction_keeps_its_velocity():
    """random_direction: the velocity stays constant within an episode and moves the prey unless it hits a wall."""
    env = make_vector(256, prey="random_direction", autoreset_mode="same_step")
    obs, _ = env.reset(seed=4)
    moved = 0
    for action in random_actions(4, 40, 256):
        next_obs, _, terminated, _, _ = env.step(action)
        going = ~terminated
        np.testing.assert_array_equal(next_obs["observation"][going], obs["observation"][going])
        free = going & (np.abs(next_obs["desired_goal"]) < G).all(-1)
        np.testing.assert_allclose(next_obs["desired_goal"][free] - obs["desired_goal"][free],
                                   obs["observation"][free], atol=1e-5)
        moved += free.sum()
        obs = next_obs
    assert moved > 1000


@pytest.mark.parametrize("prey,sign", [("attract", -1), ("repel", 1)])
def test_attract_approaches_and_repel_flees_on_average(prey, sign):
    """With the predator standing still, attract closes the distance on average and repel opens it."""
    env = make_vector(1000, prey=prey)
    obs, _ = env.reset(seed=5)
    next_obs = env.step(np.zeros((1000, 3), np.float32))[0]
    change = (np.linalg.norm(next_obs["desired_goal"] - next_obs["achieved_goal"], axis=-1)
              - np.linalg.norm(obs["desired_goal"] - obs["achieved_goal"], axis=-1))
    assert sign * change.mean() > 0.2


# -- spawns -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_dims,grid_size", [(2, 10.0), (3, 10.0), (6, 10.0), (3, 8.0)])
def test_apart_spawns_predator_at_origin_and_prey_at_half_grid(num_dims, grid_size):
    """apart: predator at the origin, prey at (0, ..., 0, G/2), after every reset."""
    env = make_vector(8, spawn="apart", num_dims=num_dims, grid_size=grid_size, autoreset_mode="same_step")
    prey = np.zeros(num_dims, np.float32)
    prey[-1] = grid_size / 2
    obs, _ = env.reset(seed=6)
    new, resets = np.ones(8, bool), 0
    for action in random_actions(6, 25, 8, num_dims):  # passes the 21st step: every game resets at least once
        np.testing.assert_array_equal(obs["achieved_goal"][new], 0.0)
        np.testing.assert_array_equal(obs["desired_goal"][new], np.broadcast_to(prey, (new.sum(), num_dims)))
        obs, _, new, _, _ = env.step(action)
        resets += new.sum()
    assert resets >= 8


@pytest.mark.parametrize("num_dims,radius", [(3, 1.0), (2, 4.0)])
def test_random_spawns_are_never_captured(num_dims, radius):
    """random: predator and prey spawn uniformly in the box, farther apart than the radius."""
    env = make_vector(10_000, num_dims=num_dims, radius=radius)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        distance = np.linalg.norm(obs["desired_goal"] - obs["achieved_goal"], axis=-1)
        assert distance.min() > radius
        for place in (obs["achieved_goal"], obs["desired_goal"]):
            assert -G <= place.min() < -0.99 * G and 0.99 * G < place.max() <= G


# -- seeding ------------------------------------------------------------------------------------------
def vector_trajectory(seed, prey, spawn, num_envs=16, autoreset_mode="same_step", steps=50, **options) -> list:
    env = make_vector(num_envs, prey=prey, spawn=spawn, autoreset_mode=autoreset_mode, **options)
    trajectory = [env.reset(seed=seed)[0]]
    for action in random_actions(seed, steps, num_envs):
        trajectory.append(env.step(action)[:3])
    return trajectory


def single_trajectory(seed, prey, spawn, steps=50, **options) -> list:
    env = make_single(prey=prey, spawn=spawn, **options)
    trajectory = [env.reset(seed=seed)[0]]
    for (action,) in random_actions(seed, steps, 1):
        obs, reward, terminated, _, _ = env.step(action)
        trajectory.append((obs, reward, terminated))
        if terminated:  # what a same_step vector env does inside the step
            trajectory[-1] = (env.reset()[0], reward, terminated)
    return trajectory


def batch_of_one(trajectory) -> list:
    """The single env's trajectory as a vector env of one would return it."""
    def as_batch(x):
        if isinstance(x, dict):
            return {k: v[None] for k, v in x.items()}
        return np.array([x], np.float32 if isinstance(x, float) else bool)
    return [as_batch(trajectory[0])] + [tuple(map(as_batch, step)) for step in trajectory[1:]]


def assert_same(a, b) -> None:
    data_equivalence(a, b) or pytest.fail("trajectories differ")


@pytest.mark.parametrize("prey,spawn", CONDITIONS)
@pytest.mark.parametrize("trajectory", [vector_trajectory, single_trajectory])
def test_same_seed_same_trajectory(trajectory, prey, spawn):
    """Both faces: the same seed and actions give identical trajectories; with a random spawn another seed does not."""
    first = trajectory(7, prey, spawn)
    assert_same(first, trajectory(7, prey, spawn))
    if spawn == "random":
        assert not data_equivalence(first[0], trajectory(8, prey, spawn)[0])


@pytest.mark.parametrize("prey,spawn", CONDITIONS)
def test_vector_env_of_one_equals_single_env(prey, spawn):
    """A (same_step) vector env of one game follows the single env exactly under the same seed, across episodes."""
    assert_same(vector_trajectory(9, prey, spawn, num_envs=1), batch_of_one(single_trajectory(9, prey, spawn)))


# -- greedy pursuit -----------------------------------------------------------------------------------
def test_greedy_pursuit_always_catches_static_prey():
    """Full speed straight at a static prey from a random spawn captures it in each of 1,000 episodes."""
    env = make_vector(1000, prey="static")
    obs, _ = env.reset(seed=10)
    outcome = np.zeros(1000)
    for _ in range(21):
        obs, reward, terminated, _, _ = env.step(greedy(obs))
        outcome = np.where((outcome == 0) & terminated, reward, outcome)
    np.testing.assert_array_equal(outcome, 1.0)


# -- actions and options ------------------------------------------------------------------------------
@pytest.mark.parametrize("action", [[5.0, -5.0, 5.0], [1e9, -1e9, 0.5]])
def test_out_of_range_actions_are_clipped(action):
    """An action beyond [-1, 1] moves the predator at most 1 per axis."""
    env = make_single(prey="static", spawn="apart")
    env.reset(seed=0)
    obs = env.step(np.array(action, np.float32))[0]
    np.testing.assert_array_equal(obs["achieved_goal"], np.clip(action, -1, 1))


def test_predator_and_prey_are_clipped_to_the_box():
    """Moves that would leave [-G, G]^D stop at the wall, for the predator and the prey alike."""
    env = make_single(prey="static", spawn="apart")
    env.reset(seed=0)
    set_state(env, predator=[9.5, -9.5, 0], prey=[-9.5, 9.5, 5], prey_vel=[-0.8, 0.8, 0])
    obs = env.step(np.array([1, -1, 0], np.float32))[0]
    np.testing.assert_array_equal(obs["achieved_goal"], [G, -G, 0])
    np.testing.assert_array_equal(obs["desired_goal"], [-G, G, 5])


@pytest.mark.parametrize("kwargs,valid", [
    ({"prey": "wolf"}, "static, random, attract, repel, straight_away, random_direction"),
    ({"spawn": "near"}, "random, apart"),
    ({"num_dims": 1}, "2, 3, 4, 5, 6"),
    ({"num_dims": 7}, "2, 3, 4, 5, 6"),
    ({"radius": 0.0}, "radius must be in (0, 1e6]"),
    ({"radius": -1.0}, "radius must be in (0, 1e6]"),
    ({"grid_size": 0.0}, "grid_size must be in (0, 1e6]"),
    ({"grid_size": -10.0}, "grid_size must be in (0, 1e6]"),
    ({"grid_size": 1e7}, "grid_size must be in (0, 1e6]"),
    ({"max_episode_steps": 2**64}, "max_episode_steps must be in (0, 1e6]"),
])
@pytest.mark.parametrize("make", [make_single, lambda **kwargs: make_vector(4, **kwargs)], ids=["single", "vector"])
def test_bad_option_raises_value_error_naming_valid_values(make, kwargs, valid):
    """An invalid option is a ValueError whose one-line message starts with the option's name (envs.make_goal_env
    turns it into the scripts' flag) and names the valid values."""
    with pytest.raises(ValueError, match=re.escape(valid)) as error:
        make(**kwargs)
    assert "\n" not in str(error.value) and str(error.value).startswith(next(iter(kwargs)))


@pytest.mark.parametrize("make,action,valid", [
    (make_single, np.zeros(2), r"\(3,\)"),
    (make_single, np.zeros((1, 3)), r"\(3,\)"),
    (make_single, np.array([0.0, np.nan, 0.0]), "finite"),
    (lambda: make_vector(4), np.zeros((4, 2)), r"\(4, 3\)"),
    (lambda: make_vector(4), np.zeros(3), r"\(4, 3\)"),
    (lambda: make_vector(4), np.full((4, 3), np.nan), "finite"),
], ids=["single-short", "single-batched", "single-nan", "vector-short", "vector-unbatched", "vector-nan"])
def test_bad_action_raises_value_error_and_leaves_state(make, action, valid):
    """A wrong action shape or a NaN is a one-line ValueError naming what is valid, and the game does not advance."""
    env = make()
    env.reset(seed=0)
    core = env.unwrapped.core
    before = (core.predator.copy(), core.steps.copy())
    with pytest.raises(ValueError, match=valid) as error:
        env.step(action)
    assert "\n" not in str(error.value)
    np.testing.assert_array_equal(core.predator, before[0])
    np.testing.assert_array_equal(core.steps, before[1])


# -- vector autoreset ---------------------------------------------------------------------------------
@pytest.fixture
def two_games():
    """Two apart games, prey static at (0, 0, 5): game 0 walks at it (caught on step 4), game 1 stands still.
    Gives a function: autoreset mode -> a step function, with the first 3 steps taken."""
    def make(autoreset_mode):
        env = make_vector(2, prey="static", spawn="apart", autoreset_mode=autoreset_mode)
        env.reset(seed=0)
        action = np.array([[0, 0, 1], [0, 0, 0]], np.float32)
        for _ in range(3):
            env.step(action)
        return lambda: env.step(action)
    return make


def test_same_step_autoreset_returns_new_episode_and_final_obs(two_games):
    """same_step: the capturing step returns game 0's new episode, with its last obs in infos["final_obs"]."""
    step = two_games("same_step")
    obs, reward, terminated, _, infos = step()
    assert reward.tolist() == [1.0, 0.0] and terminated.tolist() == [True, False]
    assert infos["_final_obs"].tolist() == [True, False] and infos["is_success"].tolist() == [1.0, 0.0]
    np.testing.assert_array_equal(infos["final_obs"]["achieved_goal"][0], [0, 0, 4])
    np.testing.assert_array_equal(obs["achieved_goal"][0], [0, 0, 0])
    obs, reward, terminated, _, infos = step()
    assert reward.tolist() == [0.0, 0.0] and infos["episode_steps"].tolist() == [1, 5] and "final_obs" not in infos
    np.testing.assert_array_equal(obs["achieved_goal"][0], [0, 0, 1])


def test_next_step_autoreset_resets_on_following_step_with_zero_reward(two_games):
    """next_step: the capturing step returns game 0's last obs; the next step resets it with reward 0."""
    step = two_games("next_step")
    obs, reward, terminated, _, infos = step()
    assert reward.tolist() == [1.0, 0.0] and terminated.tolist() == [True, False] and "final_obs" not in infos
    np.testing.assert_array_equal(obs["achieved_goal"][0], [0, 0, 4])
    obs, reward, terminated, _, infos = step()
    assert reward.tolist() == [0.0, 0.0] and terminated.tolist() == [False, False]
    assert infos["episode_steps"].tolist() == [0, 5]
    np.testing.assert_array_equal(obs["achieved_goal"][0], [0, 0, 0])
    np.testing.assert_array_equal(step()[0]["achieved_goal"][0], [0, 0, 1])


# -- rgb_array pictures -------------------------------------------------------------------------------
@pytest.mark.parametrize("num_dims,shape", [(2, (400, 400, 3)), (3, (400, 800, 3)), (6, (400, 800, 3))])
def test_render_returns_uint8_picture_per_game(num_dims, shape):
    """rgb_array: the single env renders one HxWx3 uint8 picture (two views for D >= 3), the vector env a
    tuple with one per game."""
    env = gymnasium.make("PredatorPrey-v0", render_mode="rgb_array", num_dims=num_dims)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == shape and frame.dtype == np.uint8
    vector = make_vector(3, num_dims=num_dims, render_mode="rgb_array")
    vector.reset(seed=0)
    frames = vector.render()
    assert len(frames) == 3 and all(f.shape == shape and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # random spawns differ, and so do their pictures


def centroid(frame, color, view) -> np.ndarray:
    """(row, column) centre of the pixels of exactly `color` inside view `view` (below the header)."""
    area = frame[picture.HEADER:, view * picture.PANEL:(view + 1) * picture.PANEL]
    rows, cols = np.nonzero((area == color).all(-1))
    assert rows.size > 20, f"no {color} disk in view {view}"
    return np.array([rows.mean(), cols.mean()])


def test_render_moves_predator_and_prey_pixels_with_them():
    """The predator's and the prey's disks move in the picture by what they move in the world (up = +y/+z),
    in both views of a 3-D game; a static prey's disk stays put."""
    for prey_vel in ([0, -0.8, 0.5], [0, 0, 0]):
        env = make_single(prey="random_direction", spawn="apart", render_mode="rgb_array")
        env.reset(seed=0)
        set_state(env, predator=[-4, 2, -3], prey=[5, -2, 3], prey_vel=prey_vel)
        env.unwrapped.core.prey_heading[:] = prey_vel  # random_direction keeps this heading
        before = env.render()
        env.step(np.array([1, 0.5, -1], np.float32))
        after = env.render()
        pixels = picture.BOX / (2 * G)  # per world unit
        for view, (across, up) in enumerate([(0, 1), (0, 2)]):
            for color, move in ((picture.PREDATOR, [1, 0.5, -1]), (picture.PREY, prey_vel)):
                expected = np.array([-move[up], move[across]]) * pixels  # rows grow downwards
                shift = centroid(after, color, view) - centroid(before, color, view)
                np.testing.assert_allclose(shift, expected, atol=0.6)


def test_render_shows_capture_in_green():
    """The capture circle is drawn in the 'caught' colour only once the prey is caught."""
    env = make_single(prey="static", spawn="apart", render_mode="rgb_array")
    env.reset(seed=0)
    green = lambda frame: (frame[picture.HEADER:] == picture.CAUGHT).all(-1).sum()  # noqa: E731
    for _ in range(3):
        env.step(np.array([0, 0, 1], np.float32))
        assert green(env.render()) == 0
    assert env.step(np.array([0, 0, 1], np.float32))[2]
    assert green(env.render()) > 50


@pytest.mark.parametrize("trajectory", [vector_trajectory, single_trajectory])
def test_render_mode_does_not_change_the_game(trajectory):
    """The same seed and actions give the same trajectory with and without rgb_array rendering."""
    assert_same(trajectory(11, "attract", "random"), trajectory(11, "attract", "random", render_mode="rgb_array"))


@pytest.mark.parametrize("make", [make_single, lambda: make_vector(4)], ids=["single", "vector"])
def test_without_render_mode_render_returns_none_and_no_trail_is_kept(make):
    """render_mode None (the default): render() returns None, and steps keep no positions for pictures."""
    env = make()
    env.reset(seed=0)
    env.step(env.action_space.sample())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert env.render() is None
    assert env.unwrapped.core.trail is None


@pytest.mark.parametrize("make", [make_single, lambda **kwargs: make_vector(4, **kwargs)], ids=["single", "vector"])
def test_unknown_render_mode_raises_value_error_naming_valid_ones(make):
    """An unknown render mode is a one-line ValueError that names the option first and lists the valid ones."""
    with pytest.raises(ValueError, match="^render_mode must be one of None, rgb_array, got 'video'") as error:
        make(render_mode="video")
    assert "\n" not in str(error.value)


# -- pickled copies (checkpoints) ---------------------------------------------------------------------
def continue_both(env, copy, actions) -> None:
    """Step the original and its copy with the same actions; everything they return must match."""
    for action in actions:
        original, copied = env.step(action), copy.step(action)
        assert_same(original, copied)
        if env.unwrapped.render_mode is not None:  # the positions kept for the pictures
            np.testing.assert_array_equal(env.unwrapped.core.trail, copy.unwrapped.core.trail)
        if isinstance(env, gymnasium.Env) and original[2]:  # the single env: start the next episode unseeded
            assert_same(env.reset(), copy.reset())
    if env.unwrapped.render_mode is not None:
        np.testing.assert_array_equal(env.render(), copy.render())


@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
@pytest.mark.parametrize("autoreset_mode", ["same_step", "next_step"])
@pytest.mark.parametrize("prey", ["random", "attract", "random_direction"])
def test_pickled_vector_env_continues_like_the_original(prey, autoreset_mode, render_mode):
    """A vector env pickled mid-episode (some games just finished, resets pending) and loaded again gives the
    same observations, rewards, endings and infos as the original for the next 50 steps, and its action
    space draws the same samples."""
    env = make_vector(16, prey=prey, autoreset_mode=autoreset_mode, render_mode=render_mode)
    obs, chasing = env.reset(seed=12)[0], np.arange(16)[:, None] < 8
    for _ in range(40):  # half the games chase their prey: pickle right after the first captures
        obs, _, terminated, _, _ = env.step(np.where(chasing, greedy(obs), 0.0))
        if terminated.any():  # next_step: resets pending; the other games are mid-episode
            break
    assert terminated.any() and not terminated.all()
    copy = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(copy.action_space.sample(), env.action_space.sample())
    continue_both(env, copy, random_actions(12, 50, 16))


@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
@pytest.mark.parametrize("prey,spawn", [("random", "random"), ("repel", "apart")])
def test_pickled_single_env_continues_like_the_original(prey, spawn, render_mode):
    """gymnasium.make's env (wrappers included) pickled mid-episode continues exactly like the original over
    the next 50 steps, across the unseeded resets that start new episodes."""
    env = gymnasium.make("PredatorPrey-v0", prey=prey, spawn=spawn, render_mode=render_mode)
    env.reset(seed=13)
    actions = random_actions(13, 57, 1)[:, 0]
    for action in actions[:7]:
        env.step(action)
    copy = pickle.loads(pickle.dumps(env))
    assert copy.unwrapped.core.steps[0] == 7
    continue_both(env, copy, actions[7:])
