# docs and experiment results: docs/sher.md
# Soft Hindsight Experience Replay (SHER): HER with a maximum-entropy learner (SAC with a V network) in place of DDPG.
# Paper: He, Zhuang, Li, "Soft Hindsight Experience Replay", arXiv 2002.02089, 2020 (Algorithm 1, eqs. (10), (14)-(16)).
# Released code: github.com/FSLight1996/SHER ("the released code"); HER as algorithms/her_ddpg.py ("baselines").
# Everything outside the LEARNER block is line for line algorithms/sher.py: their diff is the learner.
import contextlib
import dataclasses
import io
import itertools
import math
import os
import pickle
import random
import signal
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import gymnasium as gym
import imageio
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import tyro
from torch.utils.tensorboard import SummaryWriter

import envs as predator_prey  # registers PredatorPrey-v0 (pip install -e . puts envs/ on the path)

with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about the Adroit envs on stderr
    import gymnasium_robotics
gym.register_envs(gymnasium_robotics)
SCRIPT = os.path.basename(__file__)


@dataclass
class Args:
    exp_name: str = SCRIPT[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = False
    """if toggled, cuda is used"""
    torch_threads: int = 1
    """CPU threads of torch (1 leaves the other cores to the env subprocesses; more help on an idle machine only)"""
    save_model: bool = False
    """save the networks and the normalisers to runs/{run_name}/"""
    capture_video: bool = False
    """record one deterministic test episode per epoch to videos/{run_name}/"""
    checkpoint_every: int = 0
    """write runs/{run_name}/checkpoint.pt every this many epochs too (it is always written at the end and on Ctrl-C)"""
    resume: str = ""
    """a run folder: continue that run from its checkpoint (flags not given are the run's)"""

    # Environment
    env_id: str = "FetchReach-v4"
    """a goal env: FetchReach/Push/PickAndPlace/Slide-v4, HandManipulate*/HandReach, or PredatorPrey-v0"""
    num_envs: Optional[int] = None
    """parallel envs, one episode each per cycle (None: 16; FetchReach: 2)"""
    async_envs: bool = True
    """step MuJoCo envs in subprocesses (gymnasium AsyncVectorEnv) so that all cores simulate"""
    prey: str = "random"
    """PredatorPrey-v0 only: prey behaviour (static, random, attract, repel, straight_away, random_direction)"""
    spawn: str = "random"
    """PredatorPrey-v0 only: spawn mode (random or apart)"""

    # Schedule (baselines her.py / config.py)
    total_timesteps: int = 10_000
    """total training env steps of the experiment (the run stops exactly there)"""
    n_cycles: Optional[int] = None
    """cycles per epoch: one episode per env, then n-batches updates (None: 50; FetchReach, PredatorPrey: 10)"""
    n_batches: int = 40
    """gradient steps per cycle"""
    batch_size: Optional[int] = None
    """transitions per gradient step (None: 2048 = 8 workers x 256; FetchReach, PredatorPrey: 256)"""
    n_test_rollouts: int = 10
    """deterministic test episodes per env after each epoch"""
    buffer_size: int = 1_000_000
    """replay buffer capacity in transitions (whole episodes, first in first out)"""
    replay_k: int = 4
    """HER `future` strategy: ratio k of relabelled to real goals (relabelled share 1 - 1/(1+k))"""
    clip_obs: float = 200.0
    """raw observations and goals are clipped to +-clip_obs before normalising"""
    norm_eps: float = 0.01
    """minimum std of the running normalisers"""
    norm_clip: float = 5.0
    """normalised inputs are clipped to +-norm_clip"""

    # Learner: SAC with a V network (SHER Algorithm 1); no action L2 (the released sac.py commented it out), no noise;
    # the rest as her_ddpg.py, to compare learners only (the released code: gamma 0.99, pi_lr 3e-4)
    gamma: float = 0.98
    """the discount factor gamma"""
    hidden_size: int = 256
    """width of the 3 hidden ReLU layers of the actor and of the critic"""
    policy_lr: float = 1e-3
    """Adam learning rate of the actor (baselines pi_lr)"""
    q_lr: float = 1e-3
    """Adam learning rate of the critic: twin Q and V networks, and log alpha with --autotune (baselines Q_lr)"""
    polyak: float = 0.95
    """target V network: target <- polyak * target + (1 - polyak) * main, once per cycle"""
    alpha: float = 0.05
    """temperature (the paper's best on FetchSlide, Sec. 5.4; the released code: 0.03); --autotune starts here"""
    autotune: bool = False
    """learn log alpha toward the target entropy -|A| (CleanRL sac_continuous_action.py)"""


# A flag left at None takes its task's value, by env id prefix (baselines config.py DEFAULT_ENV_PARAMS; why: docs page)
TASK_DEFAULTS = {
    "FetchReach": dict(num_envs=2, batch_size=256, n_cycles=10),  # baselines' 1-CPU command
    "PredatorPrey": dict(num_envs=16, batch_size=256, n_cycles=10),  # alpha left at --alpha, untuned for Q in [-1, 1]
    "": dict(num_envs=16, batch_size=2048, n_cycles=50),  # other tasks: baselines with 8 MPI workers
}


RESUME_MAY_CHANGE = ["total_timesteps", "checkpoint_every", "capture_video", "save_model", "cuda", "torch_threads",
                     "async_envs", "resume"]  # how a run goes on, not what it learns


def parse_args() -> tuple[Args, Optional[dict]]:
    """The checked flags, and with --resume the run's checkpoint, whose flags are then the defaults. Bad input ends
    the script with one `error:` line before anything heavy starts."""
    args, checkpoint = tyro_cli(Args()), None
    if args.resume:
        checkpoint = load_checkpoint(os.path.join(args.resume, "checkpoint.pt"))
        run = Args(**checkpoint["args"])
        args = tyro_cli(dataclasses.replace(run, resume=args.resume))
        for name in [name for name in vars(args) if name not in RESUME_MAY_CHANGE]:
            if getattr(args, name) != getattr(run, name):
                may_change = ", ".join(f"--{flag.replace('_', '-')}" for flag in RESUME_MAY_CHANGE)
                raise SystemExit(f"error: --resume: the run has --{name.replace('_', '-')} {getattr(run, name)}; "
                                 f"a resumed run may change only {may_change}")
    fill_task_defaults(args)
    check_args(args, steps_done=checkpoint["counters"][0] if checkpoint else 0)
    return args, checkpoint


def tyro_cli(default: Args) -> Args:
    """tyro.cli, with its parse errors (`--seed abc`, an unknown flag) as one line."""
    tyro_output = io.StringIO()
    try:
        with contextlib.redirect_stderr(tyro_output):
            return tyro.cli(Args, default=default)
    except SystemExit as exit:
        if exit.code:  # not --help: the message is the first text in tyro's box
            text = [line.strip("│╭╮╰╯ ") for line in tyro_output.getvalue().splitlines()[1:]]
            raise SystemExit(f"error: {' '.join(itertools.takewhile(lambda l: not l.startswith('─'), text))} "
                             "(see --help)")
        raise


def fill_task_defaults(args: Args) -> None:
    task = next(prefix for prefix in TASK_DEFAULTS if args.env_id.startswith(prefix))
    for key, value in TASK_DEFAULTS[task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def check_args(args: Args, steps_done: int = 0) -> None:
    """Every bad flag is one `error:` line naming it and its valid range."""
    pp_flags = [f"--{name} {getattr(args, name)}" for name in ("prey", "spawn") if getattr(args, name) != "random"]
    problems = [
        (args.env_id not in gym.registry, f"--env-id {args.env_id!r} is not a registered env (try FetchReach-v4)"),
        (pp_flags and not args.env_id.startswith("PredatorPrey"), f"{', '.join(pp_flags)}: PredatorPrey-v0 only"),
        (args.prey not in predator_prey.PREY_BEHAVIOURS, f"--prey must be one of {predator_prey.PREY_BEHAVIOURS}"),
        (args.spawn not in predator_prey.SPAWN_MODES, f"--spawn must be one of {predator_prey.SPAWN_MODES}"),
        (not args.exp_name or "/" in args.exp_name, "--exp-name must be a name without '/'"),
        (args.cuda and not torch.cuda.is_available(), "--cuda: torch finds no CUDA device here"),
        (args.total_timesteps <= steps_done, f"--total-timesteps must be > {steps_done} (the steps already done)"),
        (min(args.num_envs, args.n_cycles, args.batch_size) <= 0, "--num-envs, --n-cycles, --batch-size must be > 0"),
        (min(args.n_batches, args.n_test_rollouts, args.checkpoint_every) < 0,
         "--n-batches, --n-test-rollouts and --checkpoint-every must be >= 0"),
        (args.replay_k < 0, "--replay-k must be >= 0"),
        (not 0 < args.gamma < 1, "--gamma must be in (0, 1)"),
        (min(args.clip_obs, args.norm_eps, args.norm_clip) <= 0, "--clip-obs, --norm-eps, --norm-clip must be > 0"),
        (min(args.hidden_size, args.torch_threads) <= 0, "--hidden-size and --torch-threads must be > 0"),
        (min(args.policy_lr, args.q_lr) <= 0, "--policy-lr and --q-lr must be > 0"),
        (not 0 <= args.polyak <= 1, "--polyak must be in [0, 1]"),
        (args.alpha <= 0, "--alpha must be > 0"),
    ]
    for bad, message in problems:
        if bad:
            raise SystemExit(f"error: {message}")
    env = make_env(args)
    space, T = env.observation_space, task_of(args, env).horizon
    if not isinstance(space, gym.spaces.Dict) or {"observation", "achieved_goal", "desired_goal"} - set(space):
        raise SystemExit(f"error: --env-id {args.env_id} is not a goal env (observation, achieved_goal, desired_goal)")
    high, low = env.action_space.high, env.action_space.low
    if np.any(high != high[0]) or np.any(low != -high):
        raise SystemExit(f"error: --env-id {args.env_id}: the action space must be a box [-max_u, max_u]^n")
    if args.buffer_size < args.num_envs * T:
        raise SystemExit(f"error: --buffer-size must hold one episode per env: >= num-envs x {T} = {args.num_envs * T}")


def load_checkpoint(path: str) -> dict:
    """The checkpoint at `path`, or one `error:` line if it is missing, unreadable (truncated) or another script's."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # pickled: resume only your own runs
    except Exception as error:
        raise SystemExit(f"error: --resume: cannot load {path}: {type(error).__name__}: {error}".splitlines()[0])
    if not isinstance(checkpoint, dict) or checkpoint.get("script") != SCRIPT:
        raise SystemExit(f"error: --resume: {path} is not a checkpoint of {SCRIPT}")
    return checkpoint


def save_checkpoint(state: dict, path: str) -> None:
    """Atomic: a crash while writing leaves the previous checkpoint whole (temp file, fsync, rename)."""
    try:
        with open(f"{path}.tmp", "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(f"{path}.tmp", path)
    finally:
        if os.path.exists(f"{path}.tmp"):
            os.remove(f"{path}.tmp")


def make_env(args: Args, num_envs: Optional[int] = None, render_mode: Optional[str] = None):
    """`num_envs` envs stepped together (MuJoCo ones in subprocesses unless --no-async-envs), or one env in this
    process for its spaces, its vectorised compute_reward (baselines reward_fun) and videos."""
    kwargs = dict(prey=args.prey, spawn=args.spawn) if args.env_id.startswith("PredatorPrey") else {}
    try:
        if num_envs is None:
            return gym.make(args.env_id, render_mode=render_mode, **kwargs).unwrapped
        mode = "vector_entry_point" if kwargs else "async" if args.async_envs else "sync"
        return gym.make_vec(args.env_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    except (ValueError, TypeError, gym.error.Error) as error:
        raise SystemExit(f"error: --env-id {args.env_id}: cannot make it: {error}")


def make_video_env(args: Args) -> Optional[gym.Env]:
    """The env of --capture-video, or None, said in one line, where it cannot render (MuJoCo renders offscreen only
    with MUJOCO_GL=egl or osmesa)."""
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():  # failed GL probes warn on stderr
        warnings.simplefilter("ignore")
        try:
            env = make_env(args, render_mode="rgb_array")
            env.reset(seed=args.seed)
            env.render()
            return env
        except Exception as error:
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
    print(f"--capture-video: no video, {args.env_id} does not render here ({reason}); MUJOCO_GL is "
          f"{os.environ.get('MUJOCO_GL', 'unset')}, MuJoCo needs egl or osmesa", flush=True)
    return None


def record_video(env: gym.Env, policy: Callable, task: "Task", path: str, seed: int) -> None:
    """One deterministic test episode of one env, written to `path` as MP4 (imageio with its bundled ffmpeg)."""
    obs, _ = env.reset(seed=seed)
    frames, done = [env.render()], False
    while not done and len(frames) <= task.horizon:
        obs, _, done, _, _ = env.step(policy(net_observation(obs, task)[None], obs["desired_goal"][None])[0])
        frames.append(env.render())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    imageio.mimwrite(path, frames, fps=env.metadata.get("render_fps", 10))


@dataclass(frozen=True)
class Task:
    """What differs between the Fetch/Hand tasks and Predator-Prey, in one place."""

    horizon: int  # rows T of an episode: its most steps
    target_range: tuple[float, float]  # critic targets are clipped to the range of possible returns
    done_on_reward: bool  # whether a nonzero reward marks a terminal transition (no bootstrap past it)
    observe_achieved_goal: bool  # whether the networks and the buffer see o = [observation, achieved goal]


def task_of(args: Args, env: gym.Env) -> Task:
    """Fetch/Hand: rewards -1 or 0, episodes only cut by the time limit: returns in [-1/(1-gamma), 0] (baselines
    clip_return). Predator-Prey: +1 on capture, -1 on the time-out step max_episode_steps + 1, both terminal, so
    returns are +-gamma^k; its observation (the prey velocity) lacks the predator's position: add the achieved goal."""
    if args.env_id.startswith("PredatorPrey"):
        return Task(env.max_episode_steps + 1, (-1.0, 1.0), True, True)
    return Task(gym.spec(args.env_id).max_episode_steps, (-1.0 / (1.0 - args.gamma), 0.0), False, False)


def net_observation(obs: dict, task: Task) -> np.ndarray:
    """The observation o of the networks and the buffer: obs["observation"], with the achieved goal if the task says."""
    if task.observe_achieved_goal:
        return np.concatenate([obs["observation"], obs["achieved_goal"]], -1)
    return obs["observation"]


# ALGO LOGIC: running mean/std normaliser (baselines normalizer.py; Plappert et al. 2018, Sec. 3)
class Normalizer:
    """Statistics from running sums (float64); std = sqrt(max(eps^2, E[x^2] - E[x]^2)); output clipped."""

    def __init__(self, size: int, eps: float, clip_range: float, device: torch.device):
        self.size, self.eps, self.clip_range, self.device = size, eps, clip_range, device
        self.sum, self.sumsq, self.count = np.zeros(size), np.zeros(size), 0
        self.mean, self.std = np.zeros(size), np.ones(size)
        self._mean_t = torch.zeros(size, device=device)
        self._std_t = torch.ones(size, device=device)

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64).reshape(-1, self.size)
        self.sum += values.sum(0)
        self.sumsq += np.square(values).sum(0)
        self.count += len(values)
        self.mean = self.sum / self.count
        self.std = np.sqrt(np.maximum(self.eps**2, self.sumsq / self.count - np.square(self.mean)))
        self._mean_t = torch.as_tensor(self.mean, dtype=torch.float32, device=self.device)
        self._std_t = torch.as_tensor(self.std, dtype=torch.float32, device=self.device)

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        return torch.clamp((values - self._mean_t) / self._std_t, -self.clip_range, self.clip_range)

    def state_dict(self) -> dict:
        return dict(sum=self.sum, sumsq=self.sumsq, count=self.count, mean=self.mean, std=self.std)

    def load_state_dict(self, state: dict) -> None:
        self.sum, self.sumsq, self.count, self.mean, self.std = (state[key] for key in self.state_dict())
        self._mean_t = torch.as_tensor(self.mean, dtype=torch.float32, device=self.device)
        self._std_t = torch.as_tensor(self.std, dtype=torch.float32, device=self.device)


def empty_episodes(n: int, T: int, obs_dim: int, goal_dim: int, act_dim: int) -> dict:
    """Room for n episodes: o, ag, g at steps 0..T, u at steps 0..T-1, and each episode's length."""
    return dict(o=np.zeros((n, T + 1, obs_dim), np.float32), ag=np.zeros((n, T + 1, goal_dim), np.float32),
                g=np.zeros((n, T + 1, goal_dim), np.float32), u=np.zeros((n, T, act_dim), np.float32),
                length=np.zeros(n, np.int64))


# ALGO LOGIC: HER `future` relabelling (Andrychowicz et al. 2017, Sec. 4.5; baselines her_sampler.py)
def sample_her_transitions(episodes: dict, batch_size: int, future_p: float, compute_reward: Callable, task: Task,
                           rng: np.random.Generator) -> dict:
    """`batch_size` transitions (o, g, u, r, o_next, g_next, done) of `episodes`, a share `future_p` relabelled.

    As baselines: an episode uniformly, a step t uniformly within its length (Predator-Prey episodes can end
    early), and for a relabelled goal the achieved goal of a step drawn uniformly from t+1 .. length. Rewards are
    the env's compute_reward(ag_{t+1}, g, {"episode_steps": t + 1})."""
    ep = rng.integers(0, len(episodes["length"]), batch_size)
    length = episodes["length"][ep]
    t = (rng.random(batch_size) * length).astype(np.int64)
    relabel = rng.random(batch_size) < future_p
    future_t = t + 1 + (rng.random(batch_size) * (length - t)).astype(np.int64)
    g = episodes["g"][ep, t]
    g_next = episodes["g"][ep, t + 1]  # baselines reuses g_t: the same on Fetch, but Predator-Prey's prey moves
    g[relabel] = g_next[relabel] = episodes["ag"][ep[relabel], future_t[relabel]]
    r = np.asarray(compute_reward(episodes["ag"][ep, t + 1], g, {"episode_steps": t + 1}), np.float32)
    done = (r != 0).astype(np.float32) if task.done_on_reward else np.zeros(batch_size, np.float32)
    return dict(o=episodes["o"][ep, t], g=g, u=episodes["u"][ep, t], r=r, o_next=episodes["o"][ep, t + 1],
                g_next=g_next, done=done)


# ALGO LOGIC: replay buffer of whole episodes (baselines replay_buffer.py)
class EpisodeBuffer:
    """At most `size_in_transitions // T` episodes in preallocated arrays; once full, the oldest are overwritten
    (baselines overwrote random ones)."""

    def __init__(self, size_in_transitions: int, T: int, obs_dim: int, goal_dim: int, act_dim: int):
        self.size = size_in_transitions // T
        self.data = empty_episodes(self.size, T, obs_dim, goal_dim, act_dim)
        self.next_index, self.n_stored = 0, 0

    def store(self, episodes: dict) -> None:
        index = (self.next_index + np.arange(len(episodes["length"]))) % self.size
        for key, array in self.data.items():
            array[index] = episodes[key]
        self.next_index = (index[-1] + 1) % self.size
        self.n_stored = min(self.n_stored + len(index), self.size)

    def episodes(self) -> dict:
        return {key: array[: self.n_stored] for key, array in self.data.items()}

    def state_dict(self) -> dict:
        return dict(episodes=self.episodes(), next_index=self.next_index)  # only the filled part

    def load_state_dict(self, state: dict) -> None:
        self.n_stored, self.next_index = len(state["episodes"]["length"]), state["next_index"]
        for key, array in self.data.items():
            array[: self.n_stored] = state["episodes"][key]


# ALGO LOGIC: one episode per env from reset (baselines rollout.py RolloutWorker.generate_rollouts)
def rollout(envs: gym.vector.VectorEnv, policy: Callable, task: Task, max_steps: int, seed: Optional[int] = None):
    """Returns (the episodes of length >= 1, their success, their return, env steps taken). `max_steps` cuts the
    batch at that many transitions (the cut envs' episodes end there)."""
    n, T, space = envs.num_envs, task.horizon, envs.single_observation_space
    obs_dim = space["observation"].shape[0] + (space["achieved_goal"].shape[0] if task.observe_achieved_goal else 0)
    ep = empty_episodes(n, T, obs_dim, space["desired_goal"].shape[0], envs.single_action_space.shape[0])
    success, returns = np.zeros(n), np.zeros(n)
    obs, _ = envs.reset(seed=seed)
    o = net_observation(obs, task)
    ep["o"][:, 0], ep["ag"][:, 0], ep["g"][:, 0] = o, obs["achieved_goal"], obs["desired_goal"]
    alive = np.ones(n, bool)
    for t in range(T):
        alive[np.flatnonzero(alive)[max(max_steps - int(ep["length"].sum()), 0):]] = False  # budget cut
        if not alive.any():
            break
        u = policy(o, obs["desired_goal"])
        obs, reward, terminated, truncated, infos = envs.step(u)
        o = net_observation(obs, task)
        ep["u"][alive, t] = u[alive]
        ep["o"][alive, t + 1] = o[alive]
        ep["ag"][alive, t + 1] = obs["achieved_goal"][alive]
        ep["g"][alive, t + 1] = obs["desired_goal"][alive]
        ep["length"][alive] += 1
        success[alive] = infos["is_success"][alive]
        returns[alive] += reward[alive]
        alive &= ~(terminated | truncated)
    kept = ep["length"] > 0
    return {key: array[kept] for key, array in ep.items()}, success[kept], returns[kept], int(ep["length"].sum())


def evaluate(envs: gym.vector.VectorEnv, policy: Callable, task: Task, n_test_rollouts: int) -> float:
    """Test success rate over `n_test_rollouts` deterministic episodes per env (baselines: the evaluator after each
    epoch, on separate envs; here on the training envs, which halves the simulator subprocesses)."""
    success = [rollout(envs, policy, task, envs.num_envs * task.horizon)[1] for _ in range(n_test_rollouts)]
    return float(np.mean(np.concatenate(success))) if success else float("nan")


def stop_on_ctrl_c() -> list:
    """Ctrl-C ends the run after the current cycle, with a checkpoint; a second Ctrl-C aborts at once."""
    pressed = []

    def handler(signum, frame):
        pressed.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("Ctrl-C: stopping after this cycle (press again to abort)", flush=True)

    signal.signal(signal.SIGINT, handler)
    return pressed


# ===================== LEARNER: SAC with a V network (Haarnoja et al. 2018) as SHER Algorithm 1 =====================
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # CleanRL sac_continuous_action.py (the released code: -20, 2)


def mlp(in_size: int, hidden: int, out_size: int) -> nn.Sequential:
    """3 hidden ReLU layers; Xavier-uniform weights and zero biases (baselines util.py nn)."""
    layers = [nn.Linear(in_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
              nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_size)]
    for layer in layers[::2]:
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Gaussian policy on normalised [o, g]: the MLP's last layer gives (mean, log_std), 2 x act_dim (the released
    core.py: an extra linear layer per head); log_std squashed into [LOG_STD_MIN, LOG_STD_MAX] by tanh."""

    def __init__(self, in_size: int, act_dim: int, hidden: int, max_u: float):
        super().__init__()
        self.net, self.max_u = mlp(in_size, hidden, 2 * act_dim), max_u

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(x).chunk(2, -1)
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)


class QNetwork(nn.Module):
    """Q(o, g, u) = MLP(normalised [o, g], u / max_u) (baselines actor_critic.py)."""

    def __init__(self, in_size: int, act_dim: int, hidden: int, max_u: float):
        super().__init__()
        self.net, self.max_u = mlp(in_size + act_dim, hidden, 1), max_u

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, u / self.max_u], -1)).squeeze(-1)


def squashed_gaussian(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor, max_u: float):
    """(u, log pi(u|s, g)) for u = max_u tanh(z), z = mean + std * noise (eq. (16)'s f_phi(eps; s, g)). Change of
    variables: log pi(u) = sum_i log N(z_i; mean_i, std_i) - log(max_u (1 - tanh^2 z_i)), with log(1 - tanh^2 z) =
    2 (log 2 - z - softplus(-2z)): exact, and finite where tanh rounds to 1 (CleanRL adds 1e-6 inside the log)."""
    z = mean + log_std.exp() * noise
    log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
                - 2.0 * (math.log(2.0) - z - F.softplus(-2.0 * z)) - math.log(max_u))
    return max_u * torch.tanh(z), log_prob.sum(-1)


def critic_target(r: torch.Tensor, v_next: torch.Tensor, done: torch.Tensor, gamma: float,
                  target_range: tuple[float, float]) -> torch.Tensor:
    """y_q = clip(r + gamma * (1 - done) * V_targ(s', g), *target_range): Algorithm 1 line 22, eq. (10); clipped as
    her_ddpg.py's target (so did the released sac.py)."""
    return torch.clamp(r + gamma * (1.0 - done) * v_next, *target_range)


class Learner:
    """Policy, twin Q, V and its target, Adam optimisers and the temperature behind the interface shared with
    her_ddpg.py: act(x, explore, rng) -> actions, update(batch) -> losses, update_target(), state_dict()."""

    def __init__(self, args: Args, in_size: int, act_dim: int, max_u: float, task: Task, device: torch.device):
        self.args, self.max_u, self.target_range, self.act_dim = args, max_u, task.target_range, act_dim
        self.actor = Actor(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.qf1 = QNetwork(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.qf2 = QNetwork(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.vf = mlp(in_size, args.hidden_size, 1).to(device)  # V(o, g) = MLP(normalised [o, g]) (released core.py)
        self.target_vf = mlp(in_size, args.hidden_size, 1).to(device)
        self.target_vf.load_state_dict(self.vf.state_dict())  # Algorithm 1 line 2
        self.actor_optimizer = optim.Adam(self.actor.parameters(), lr=args.policy_lr)
        self.q_optimizer = optim.Adam([*self.qf1.parameters(), *self.qf2.parameters(), *self.vf.parameters()],
                                      lr=args.q_lr)  # one Adam for Q1, Q2 and V, as the released sac.py (V_adam)
        # Temperature: fixed (the paper), or with --autotune learnt toward the target entropy, from --alpha
        self.log_alpha = torch.tensor(math.log(args.alpha), device=device, requires_grad=args.autotune)
        self.alpha_optimizer = optim.Adam([self.log_alpha], lr=args.q_lr)
        self.target_entropy = -act_dim  # -|A|, CleanRL's SAC

    @torch.no_grad()
    def act(self, x: torch.Tensor, explore: bool, rng: np.random.Generator) -> np.ndarray:
        """Training: u ~ pi(.|s, g) (Algorithm 1 line 6), nothing added (the released code replaced 5% of the actions
        by uniform random ones, tests included, and tested sampled actions); tests: the mean action max_u tanh(mean)."""
        mean, log_std = self.actor(x)
        noise = rng.standard_normal(mean.shape) if explore else np.zeros(mean.shape)
        u, _ = squashed_gaussian(mean, log_std, torch.as_tensor(noise, dtype=mean.dtype, device=x.device), self.max_u)
        return u.cpu().numpy()

    def losses(self, b: dict, noise: torch.Tensor) -> dict:
        """Algorithm 1 lines 22-23 on a batch (normalised x, x_next; raw u, r, done). `noise` ~ N(0, I) draws one
        a~ ~ pi(.|s, g) per transition, for y_v and for the policy loss alike (as the released code)."""
        alpha = self.log_alpha.detach().exp()
        u_pi, log_pi = squashed_gaussian(*self.actor(b["x"]), noise, self.max_u)  # a~, reparameterised (eq. (16))
        q1_pi, q2_pi = self.qf1(b["x"], u_pi), self.qf2(b["x"], u_pi)
        q1, q2 = self.qf1(b["x"], b["u"]), self.qf2(b["x"], b["u"])
        with torch.no_grad():
            # line 22: y_q = r + gamma (1 - d) V_targ(s', g)
            y_q = critic_target(b["r"], self.target_vf(b["x_next"]).squeeze(-1), b["done"], self.args.gamma,
                                self.target_range)
            # line 22: y_v = min_i Q_i(s, a~, g) - alpha log pi(a~|s, g), the sampled expectation of eq. (14)
            y_v = torch.min(q1_pi, q2_pi) - alpha * log_pi
        return dict(
            # (not in Algorithm 1) the twin Q regress to y_q, as in the released sac.py
            qf_loss=F.mse_loss(q1, y_q) + F.mse_loss(q2, y_q),
            # line 23: V-loss mean (V(s, g) - y_v)^2, gradient eq. (15)
            vf_loss=F.mse_loss(self.vf(b["x"]).squeeze(-1), y_v),
            # line 23: pi-loss mean alpha log pi(a~|s, g) - Q_1(s, a~, g), gradient eq. (16) (the released sac.py;
            # CleanRL's SAC takes min_i Q_i)
            actor_loss=(alpha * log_pi - q1_pi).mean(),
            # --autotune: alpha grows while the entropy -log pi is below the target entropy, and shrinks above it
            alpha_loss=-(self.log_alpha.exp() * (log_pi.detach() + self.target_entropy)).mean(),
            q1=q1.detach(), log_pi=log_pi.detach())

    def update(self, b: dict) -> dict:
        """One SAC step (Algorithm 1 lines 20-23): all losses from the pre-update networks, then the optimisers step."""
        out = self.losses(b, torch.randn(len(b["x"]), self.act_dim, device=b["x"].device))
        self.q_optimizer.zero_grad()
        (out["qf_loss"] + out["vf_loss"]).backward()
        self.actor_optimizer.zero_grad()
        out["actor_loss"].backward(inputs=list(self.actor.parameters()))  # the critics' grads are their losses' only
        if self.args.autotune:
            self.alpha_optimizer.zero_grad()
            out["alpha_loss"].backward()
            self.alpha_optimizer.step()
        self.q_optimizer.step()
        self.actor_optimizer.step()
        return {"qf_loss": out["qf_loss"].item(), "vf_loss": out["vf_loss"].item(),
                "actor_loss": out["actor_loss"].item(), "qf_values": out["q1"].mean().item(),
                "entropy": -out["log_pi"].mean().item(), "alpha": self.log_alpha.exp().item()}

    @torch.no_grad()
    def update_target(self) -> None:
        """V_targ <- polyak * V_targ + (1 - polyak) * V (Algorithm 1 line 24), once per cycle as her_ddpg.py's targets
        (so did the released code, in baselines' train loop; Algorithm 1 puts it after every minibatch)."""
        for param, target_param in zip(self.vf.parameters(), self.target_vf.parameters()):
            target_param.mul_(self.args.polyak).add_((1.0 - self.args.polyak) * param)

    def state_dict(self) -> dict:
        """The networks, their targets and the optimisers (and SHER's log alpha): all that the updates change."""
        return {name: part.state_dict() if hasattr(part, "state_dict") else part.detach().clone()
                for name, part in vars(self).items() if isinstance(part, (nn.Module, optim.Optimizer, torch.Tensor))}

    def load_state_dict(self, state: dict) -> None:
        for name, part_state in state.items():
            part = getattr(self, name)
            if isinstance(part, torch.Tensor):
                part.data.copy_(part_state)
            else:
                part.load_state_dict(part_state)


# ================================================== END LEARNER =====================================================


if __name__ == "__main__":
    args, checkpoint = parse_args()
    run_dir = args.resume or f"runs/{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_name = os.path.basename(os.path.normpath(run_dir))
    reward_env = make_env(args)  # one env in this process: the task's horizon and its vectorised compute_reward
    task, compute_reward = task_of(args, reward_env), reward_env.compute_reward
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the env subprocesses: Ctrl-C is for the main loop
    envs = pickle.loads(checkpoint["envs"]) if checkpoint and checkpoint["envs"] else make_env(args, args.num_envs)
    ctrl_c = stop_on_ctrl_c()
    video_env = make_video_env(args) if args.capture_video else None
    writer = SummaryWriter(run_dir, purge_step=checkpoint["counters"][0] + 1 if checkpoint else None)
    if not checkpoint:
        writer.add_text(
            "hyperparameters",
            "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
        )

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if args.cuda else "cpu")
    rng = np.random.default_rng(args.seed)

    space, action_space = envs.single_observation_space, envs.single_action_space
    goal_dim, act_dim, max_u = space["desired_goal"].shape[0], action_space.shape[0], float(action_space.high[0])
    obs_dim = space["observation"].shape[0] + (goal_dim if task.observe_achieved_goal else 0)
    future_p = 1.0 - 1.0 / (1.0 + args.replay_k)  # k = 4: 80% of the sampled goals are relabelled
    o_norm = Normalizer(obs_dim, args.norm_eps, args.norm_clip, device)
    g_norm = Normalizer(goal_dim, args.norm_eps, args.norm_clip, device)
    buffer = EpisodeBuffer(args.buffer_size, task.horizon, obs_dim, goal_dim, act_dim)
    learner = Learner(args, obs_dim + goal_dim, act_dim, max_u, task, device)
    parts = dict(learner=learner, o_norm=o_norm, g_norm=g_norm, buffer=buffer)
    global_step, epoch, epoch_cycles, train_success, s_test, seconds = 0, 0, 0, [], float("nan"), 0.0
    env_seed = args.seed  # seed the first reset only; the envs' own generators carry on
    if checkpoint:  # go on exactly where the checkpoint was written (Fetch's simulators: from a fresh seed)
        for name, part in parts.items():
            part.load_state_dict(checkpoint[name])
        random.setstate(checkpoint["rng"]["python"])
        np.random.set_state(checkpoint["rng"]["numpy"])
        rng.bit_generator.state = checkpoint["rng"]["generator"]
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if args.cuda and checkpoint["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
        global_step, epoch, epoch_cycles, train_success, s_test, seconds = checkpoint["counters"]
        env_seed = None if checkpoint["envs"] else args.seed + global_step

    def save_run() -> None:
        """The checkpoint: all that a resumed run needs to go on as this one would have."""
        rngs = dict(python=random.getstate(), numpy=np.random.get_state(), generator=rng.bit_generator.state,
                    torch=torch.get_rng_state(), cuda=torch.cuda.get_rng_state_all() if args.cuda else None)
        counters = (global_step, epoch, epoch_cycles, train_success, s_test, time.time() - start_time)
        envs_state = pickle.dumps(envs) if args.env_id.startswith("PredatorPrey") else None  # Fetch's: in subprocesses
        save_checkpoint(dict(script=SCRIPT, args=vars(args), rng=rngs, counters=counters, envs=envs_state,
                             **{name: part.state_dict() for name, part in parts.items()}), f"{run_dir}/checkpoint.pt")

    def preprocess(o: np.ndarray, g: np.ndarray) -> torch.Tensor:
        """Clip raw o, g to +-clip_obs, normalise, concatenate (baselines ddpg.py _preprocess_og + actor_critic)."""
        o = torch.as_tensor(np.clip(o, -args.clip_obs, args.clip_obs), dtype=torch.float32, device=device)
        g = torch.as_tensor(np.clip(g, -args.clip_obs, args.clip_obs), dtype=torch.float32, device=device)
        return torch.cat([o_norm.normalize(o), g_norm.normalize(g)], -1)

    def learner_batch(tr: dict) -> dict:
        """Sampled transitions as the learner takes them: normalised x = [o, g], x_next; raw u, r, done."""
        u, r, done = (torch.as_tensor(tr[key], dtype=torch.float32, device=device) for key in ("u", "r", "done"))
        return dict(x=preprocess(tr["o"], tr["g"]), x_next=preprocess(tr["o_next"], tr["g_next"]), u=u, r=r, done=done)

    def policy(explore: bool) -> Callable:
        """The actor on raw o, g: exploring in training rollouts, deterministic in tests."""
        return lambda o, g: learner.act(preprocess(o, g), explore, rng)

    print(f"{run_dir}: {'resuming at step ' + str(global_step) if checkpoint else 'new run'}, {args.env_id}, "
          f"{device}, budget {args.total_timesteps} env steps", flush=True)
    start_time = time.time() - seconds
    recent = [(time.time(), global_step)]  # (time, step) at the last epochs' ends: the ETA's speed
    while global_step < args.total_timesteps and not ctrl_c:
        # ALGO LOGIC: one batch of episodes with exploration (HER Algorithm 1, lines 5-8); the budget cuts the last one
        budget_left = args.total_timesteps - global_step
        episodes, success, returns, steps = rollout(envs, policy(explore=True), task, budget_left, env_seed)
        env_seed = None
        global_step += steps
        train_success.extend(success)
        writer.add_scalar("charts/episodic_return", returns.mean(), global_step)
        writer.add_scalar("charts/episodic_length", episodes["length"].mean(), global_step)

        # ALGO LOGIC: store, then update the normalisers from as many HER samples of the new episodes as they have
        # transitions (baselines ddpg.py store_episode)
        buffer.store(episodes)
        fresh = sample_her_transitions(episodes, steps, future_p, compute_reward, task, rng)
        o_norm.update(np.clip(fresh["o"], -args.clip_obs, args.clip_obs))
        g_norm.update(np.clip(fresh["g"], -args.clip_obs, args.clip_obs))

        # ALGO LOGIC: n_batches updates on HER minibatches (HER Algorithm 1, lines 13-16), then the targets move
        losses = []
        for _ in range(args.n_batches):
            tr = sample_her_transitions(buffer.episodes(), args.batch_size, future_p, compute_reward, task, rng)
            losses.append(learner.update(learner_batch(tr)))
        learner.update_target()  # once per cycle (baselines her.py train loop)
        for key in losses[0] if losses else []:
            writer.add_scalar(f"losses/{key}", np.mean([loss[key] for loss in losses]), global_step)

        epoch_cycles += 1
        if epoch_cycles < args.n_cycles and global_step < args.total_timesteps:
            continue
        # ALGO LOGIC: the epoch ends with deterministic test episodes (baselines her.py)
        epoch, epoch_cycles = epoch + 1, 0
        s_train = float(np.mean(train_success))
        s_test = evaluate(envs, policy(explore=False), task, args.n_test_rollouts)
        train_success = []
        if video_env:
            record_video(video_env, policy(explore=False), task, f"videos/{run_name}/epoch_{epoch}.mp4", args.seed)
        elapsed = time.time() - start_time
        writer.add_scalar("charts/success_rate", s_train, global_step)
        writer.add_scalar("eval/success_rate", s_test, global_step)
        writer.add_scalar("stability/delta_s", abs(s_train - s_test), global_step)  # SHER paper, Table 1
        writer.add_scalar("charts/SPS", int(global_step / elapsed), global_step)
        writer.add_scalar("charts/epoch", epoch, global_step)
        recent = (recent + [(time.time(), global_step)])[-4:]
        eta = (args.total_timesteps - global_step) * (recent[-1][0] - recent[0][0]) / (recent[-1][1] - recent[0][1])
        print(f"epoch {epoch:>4}  step {global_step:>9}/{args.total_timesteps}  train success {s_train:.3f}  "
              f"test success {s_test:.3f}  time {elapsed:7.1f}s  SPS {int(global_step / elapsed):>5}  "
              f"ETA {eta / 60:.1f} min", flush=True)
        if args.checkpoint_every and epoch % args.checkpoint_every == 0:
            save_run()

    save_run()
    if args.save_model:
        model_path = f"{run_dir}/{args.exp_name}.cleanrl_model"
        torch.save({**learner.state_dict(), "o_norm": o_norm.state_dict(), "g_norm": g_norm.state_dict(),
                    "args": vars(args)}, model_path)
        print(f"model saved to {model_path}")
    envs.close()
    writer.close()
    print(f"{'interrupted' if ctrl_c else 'finished'} at step {global_step}/{args.total_timesteps} after "
          f"{(time.time() - start_time) / 60:.1f} min, last test success {s_test:.3f}: {run_dir}", flush=True)
    if ctrl_c:
        raise SystemExit(130)  # as a shell reports a process stopped by Ctrl-C, so `run && next` stops here
