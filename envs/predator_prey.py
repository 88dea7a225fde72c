"""The 3-D Predator-Prey goal task of Crowder et al. (PPO-HER, arXiv 2410.22524; MEHER, arXiv 2410.24016).

The agent is a predator in the box [-G, G]^D chasing a prey. Goal-env view of it:
    observation   = prey velocity      (what the predator can read about the prey's intent)
    achieved_goal = predator position  (what the agent controls)
    desired_goal  = prey position      (where it has to be)
Reward is +1 on capture (|prey - predator| <= radius, the episode ends), -1 on the 21st step
without capture (the episode ends), 0 otherwise: every episode returns exactly +1 or -1.

Each step: the step counter grows by one, the predator moves by its action (clipped to [-1, 1] per
axis, then to the box), capture is checked, and only then does an uncaught prey move (clipped to the
box) and draw its next velocity. The prey's speed is at most |ones(D)| / 2, half the predator's top
speed; its six behaviours are listed at `PredatorPreyCore._prey_velocity`.

One batched numpy core (`PredatorPreyCore`, N environments in lock-step) has two faces:
`PredatorPreyVectorEnv` (a gymnasium VectorEnv, for training) and `PredatorPreyEnv` (a plain
gymnasium Env, N = 1). Both take render_mode="rgb_array" (pictures drawn by envs/predator_prey_render.py)
and pickle with their whole state (positions, velocities, step counters, pending autoresets and the
random generators), so that a checkpoint can store an env mid-episode and a restored copy continues
exactly as the original would.
"""

from __future__ import annotations

import numpy as np
import gymnasium as gym
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from envs.predator_prey_render import render_frame

PREY_BEHAVIOURS = ("static", "random", "attract", "repel", "straight_away", "random_direction")
SPAWN_MODES = ("random", "apart")
RENDER_MODES = ("rgb_array",)
RENDER_FPS = 4
AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


def _choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(map(str, valid))}, got {value!r}")


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = a - b
    return (diff * diff).sum(-1)


def _unit_rows(v: np.ndarray) -> np.ndarray:
    """Rows of v scaled to length 1; zero rows stay zero."""
    norm = np.sqrt((v * v).sum(-1, keepdims=True))
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


class PredatorPreyCore:
    """N predator-prey games stepped together with numpy; float32 throughout."""

    def __init__(self, num_envs=1, prey="random", spawn="random", num_dims=3, grid_size=10.0, radius=1.0,
                 max_episode_steps=20):
        _choice("prey", prey, PREY_BEHAVIOURS)
        _choice("spawn", spawn, SPAWN_MODES)
        _choice("num_dims", num_dims, range(2, 7))
        for name, value in (("grid_size", grid_size), ("radius", radius), ("max_episode_steps", max_episode_steps)):
            if not 0 < value <= 1e6:  # float32 positions: the squared distances of a larger box overflow
                raise ValueError(f"{name} must be in (0, 1e6], got {value!r}")
        if 2 * radius >= grid_size:
            raise ValueError(f"radius must be below grid_size / 2 so that random spawns exist, got {radius!r}")
        self.num_envs, self.prey, self.spawn, self.num_dims = int(num_envs), prey, spawn, int(num_dims)
        self.grid_size, self.radius, self.max_episode_steps = float(grid_size), float(radius), int(max_episode_steps)
        self.prey_speed_cap = np.float32(np.sqrt(num_dims) / 2)  # |ones(D)| / 2: half the predator's top speed
        n, d = self.num_envs, self.num_dims
        self.predator = np.zeros((n, d), np.float32)
        self.prey_pos = np.zeros((n, d), np.float32)
        self.prey_vel = np.zeros((n, d), np.float32)
        self.prey_heading = np.zeros((n, d), np.float32)  # random_direction: drawn at reset, then constant
        self.steps = np.zeros(n, np.int64)
        self.rng = np.random.default_rng()
        self.trail = None  # (max_episode_steps + 2, predator / prey, N, D) positions, kept only for rendering

    def keep_trail(self) -> None:
        """Record every game's positions since its episode began (row t = after step t), for pictures."""
        self.trail = np.zeros((self.max_episode_steps + 2, 2, self.num_envs, self.num_dims), np.float32)

    def _record_trail(self, idx=slice(None)) -> None:
        games = np.arange(self.num_envs)[idx]
        row = np.minimum(self.steps[games], len(self.trail) - 1)  # a next_step game past its end is reset next
        self.trail[row, 0, games], self.trail[row, 1, games] = self.predator[games], self.prey_pos[games]

    def seed(self, seed=None) -> None:
        self.rng = np.random.default_rng(seed)

    # -- dynamics ---------------------------------------------------------------------------------
    def reset(self, idx: np.ndarray | slice = slice(None)) -> None:
        """Start new episodes in the environments `idx`."""
        g, d = self.grid_size, self.num_dims
        n = self.steps[idx].shape[0]
        if self.spawn == "apart":
            self.predator[idx] = 0.0
            self.prey_pos[idx] = 0.0
            self.prey_pos[idx, -1] = g / 2
        else:  # uniform in the box, redrawn until farther apart than the radius
            predator = self.rng.uniform(-g, g, (n, d)).astype(np.float32)
            prey = self.rng.uniform(-g, g, (n, d)).astype(np.float32)
            close = _sq_dist(predator, prey) <= self.radius**2
            while close.any():
                prey[close] = self.rng.uniform(-g, g, (int(close.sum()), d))
                close = _sq_dist(predator, prey) <= self.radius**2
            self.predator[idx], self.prey_pos[idx] = predator, prey
        self.steps[idx] = 0
        self.prey_heading[idx] = self.rng.uniform(-1, 1, (n, d))
        self.prey_vel[idx] = self._prey_velocity(self.predator[idx], self.prey_pos[idx], self.prey_heading[idx])
        if self.trail is not None:
            self._record_trail(idx)

    def _prey_velocity(self, predator, prey, heading) -> np.ndarray:
        """The prey's next velocity, speed * direction / |direction| (a zero direction gives zero velocity):
        static       0
        random       speed ~ U(0, cap), direction ~ U(-1, 1)^D, both redrawn every step
        attract      speed cap, direction m * o + (1 - m) * (predator - prey), m ~ U(0.1, 1)
        repel        speed cap, direction m * o + (1 - m) * (prey - predator), m ~ U(0, 1)
        straight_away  speed cap, direction prey - predator
        random_direction  speed cap, direction ~ U(-1, 1)^D drawn at reset, then kept
        where o is a random vector orthogonal to the base direction and of the same length."""
        cap, shape = self.prey_speed_cap, prey.shape
        if self.prey == "static":
            return np.zeros(shape, np.float32)
        if self.prey == "random":
            speed = self.rng.uniform(0, cap, (shape[0], 1)).astype(np.float32)
            return speed * _unit_rows(self.rng.uniform(-1, 1, shape).astype(np.float32))
        if self.prey == "random_direction":
            return cap * _unit_rows(heading)
        base = prey - predator if self.prey in ("repel", "straight_away") else predator - prey
        if self.prey == "straight_away":
            return cap * _unit_rows(base)
        # attract / repel: mix the base direction with an orthogonal one of the same length
        low = 0.1 if self.prey == "attract" else 0.0
        mix = self.rng.uniform(low, 1.0, (shape[0], 1)).astype(np.float32)
        draw = self.rng.standard_normal(shape).astype(np.float32)
        base_sq = (base * base).sum(-1, keepdims=True)
        along = np.divide((draw * base).sum(-1, keepdims=True), base_sq, out=np.zeros_like(base_sq),
                          where=base_sq > 0)
        orthogonal = _unit_rows(draw - along * base) * np.sqrt(base_sq)
        return cap * _unit_rows(mix * orthogonal + (1 - mix) * base)

    def step(self, actions: np.ndarray):
        """Advance every game one step; returns (reward, terminated, is_success) arrays."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, self.num_dims):
            raise ValueError(f"action shape must be {(self.num_envs, self.num_dims)}, got {actions.shape}")
        if not np.isfinite(actions).all():
            raise ValueError("actions must be finite (got NaN or inf)")
        g = self.grid_size
        self.steps += 1
        self.predator += np.clip(actions, -1.0, 1.0).astype(np.float32, copy=False)
        np.clip(self.predator, -g, g, out=self.predator)
        captured = _sq_dist(self.predator, self.prey_pos) <= np.float32(self.radius**2)
        reward = captured.astype(np.float32) - ((self.steps > self.max_episode_steps) & ~captured)
        # a captured prey stays put: the final observation shows the capture
        self.prey_pos += self.prey_vel * ~captured[:, None]
        np.clip(self.prey_pos, -g, g, out=self.prey_pos)
        self.prey_vel = self._prey_velocity(self.predator, self.prey_pos, self.prey_heading)
        if self.trail is not None:
            self._record_trail()
        return reward, reward != 0, captured.astype(np.float32)

    def observe(self, idx=slice(None)) -> dict:
        return {"observation": self.prey_vel[idx].copy(), "achieved_goal": self.predator[idx].copy(),
                "desired_goal": self.prey_pos[idx].copy()}

    # -- goal-env interface -----------------------------------------------------------------------
    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        """r_t = compute_reward(achieved_goal of obs_{t+1}, desired_goal of obs_t, info_t), vectorised over
        leading axes. `info` is None, a dict with an "episode_steps" entry (array or number), or a sequence
        of such dicts (what HER code usually keeps); without episode_steps there is no -1."""
        achieved_goal = np.asarray(achieved_goal, np.float32)
        captured = _sq_dist(achieved_goal, np.asarray(desired_goal, np.float32)) <= np.float32(self.radius**2)
        steps = None
        if isinstance(info, dict):
            steps = info.get("episode_steps")
        elif info is not None and len(info) and isinstance(np.asarray(info).flat[0], dict):
            steps = np.vectorize(lambda i: i.get("episode_steps", 0), otypes=[np.int64])(np.asarray(info))
        failed = np.zeros_like(captured) if steps is None else (np.asarray(steps) > self.max_episode_steps)
        return captured.astype(np.float32) - (failed & ~captured)

    def spaces(self):
        g, d = np.float32(self.grid_size), self.num_dims
        cap = self.prey_speed_cap
        obs = spaces.Dict({
            "observation": spaces.Box(-cap, cap, (d,), np.float32),
            "achieved_goal": spaces.Box(-g, g, (d,), np.float32),
            "desired_goal": spaces.Box(-g, g, (d,), np.float32),
        })
        return obs, spaces.Box(-1.0, 1.0, (d,), np.float32)


class PredatorPreyEnv(gym.Env):
    """Single Predator-Prey game (the N = 1 core); passes gymnasium's check_env.

    render_mode="rgb_array": `render()` returns the current picture, (400, 400, 3) uint8 for D = 2 and
    (400, 800, 3) for D >= 3 (two views side by side); see envs/predator_prey_render.py."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS}
    reward_range = (-1.0, 1.0)

    def __init__(self, prey="random", spawn="random", num_dims=3, grid_size=10.0, radius=1.0,
                 max_episode_steps=20, render_mode=None):
        _choice("render_mode", render_mode, (None, *RENDER_MODES))
        self.core = PredatorPreyCore(1, prey, spawn, num_dims, grid_size, radius, max_episode_steps)
        self.observation_space, self.action_space = self.core.spaces()
        self.max_episode_steps = self.core.max_episode_steps
        self.render_mode = render_mode
        if render_mode is not None:
            self.core.keep_trail()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.core.seed(seed)
        self.core.reset()
        return self.core.observe(0), {}

    def step(self, action):
        action = np.asarray(action)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action shape must be {self.action_space.shape}, got {action.shape}")
        reward, terminated, success = self.core.step(action[None])
        info = {"is_success": float(success[0]), "episode_steps": int(self.core.steps[0])}
        return self.core.observe(0), float(reward[0]), bool(terminated[0]), False, info

    def compute_reward(self, achieved_goal, desired_goal, info=None):
        return self.core.compute_reward(achieved_goal, desired_goal, info)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn('render() needs render_mode="rgb_array" in gymnasium.make("PredatorPrey-v0", ...)')
            return None
        return render_frame(self.core, 0)


class PredatorPreyVectorEnv(VectorEnv):
    """`num_envs` Predator-Prey games in one numpy core.

    Autoreset: "next_step" (gymnasium's default) or "same_step". In same_step mode a finished game is
    reset inside the step that ended it; `infos["final_obs"]` then is a batched Dict whose rows marked in
    `infos["_final_obs"]` hold the finished episodes' last observations (other rows: the ordinary obs).
    `infos["is_success"]` and `infos["episode_steps"]` always describe the step just taken.
    render_mode="rgb_array": `render()` returns a tuple with one picture per game, as gymnasium's
    vector envs do (pictures cost time: render a small vector env, not a training batch).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": list(RENDER_MODES),
                "render_fps": RENDER_FPS}

    def __init__(self, num_envs=1, prey="random", spawn="random", num_dims=3, grid_size=10.0, radius=1.0,
                 max_episode_steps=20, autoreset_mode=AutoresetMode.NEXT_STEP, render_mode=None):
        if isinstance(autoreset_mode, AutoresetMode):
            autoreset_mode = autoreset_mode.name.lower()
        _choice("autoreset_mode", autoreset_mode, AUTORESET_MODES)
        _choice("render_mode", render_mode, (None, *RENDER_MODES))
        self.core = PredatorPreyCore(num_envs, prey, spawn, num_dims, grid_size, radius, max_episode_steps)
        self.num_envs = self.core.num_envs
        self.metadata = {**self.metadata, "autoreset_mode": AUTORESET_MODES[autoreset_mode]}
        self.render_mode = render_mode
        if render_mode is not None:
            self.core.keep_trail()
        self.single_observation_space, self.single_action_space = self.core.spaces()
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.max_episode_steps = self.core.max_episode_steps
        self._pending_reset = np.zeros(self.num_envs, bool)
        self._all_true = np.ones(self.num_envs, bool)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.core.seed(seed if isinstance(seed, int) else seed[0])
            self.action_space.seed(seed if isinstance(seed, int) else seed[0])
        self.core.reset()
        self._pending_reset[:] = False
        return self.core.observe(), {}

    def step(self, actions):
        core = self.core
        pending = np.flatnonzero(self._pending_reset)  # next_step autoreset: these games only reset now
        reward, terminated, success = core.step(actions)
        infos = {"is_success": success, "_is_success": self._all_true,
                 "episode_steps": core.steps.copy(), "_episode_steps": self._all_true}
        if pending.size:
            core.reset(pending)
            reward[pending], terminated[pending], success[pending] = 0.0, False, 0.0
            infos["episode_steps"][pending] = 0
        done = np.flatnonzero(terminated)
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            if done.size:
                infos["final_obs"], infos["_final_obs"] = core.observe(), terminated.copy()
                core.reset(done)
        else:
            self._pending_reset[:] = terminated
        truncated = np.zeros(self.num_envs, bool)
        return core.observe(), reward, terminated, truncated, infos

    def compute_reward(self, achieved_goal, desired_goal, info=None):
        return self.core.compute_reward(achieved_goal, desired_goal, info)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn('render() needs render_mode="rgb_array" in gymnasium.make_vec("PredatorPrey-v0", ...)')
            return None
        return tuple(render_frame(self.core, i) for i in range(self.num_envs))
