# Soft Hindsight Experience Replay (SHER): HER with a maximum-entropy learner (SAC with a V network) in place of DDPG.
# Paper: He, Zhuang, Li, "Soft Hindsight Experience Replay", arXiv 2002.02089, 2020 (Algorithm 1, eqs. (10), (14)-(16)).
# The rest is algorithms/her_ddpg.py: HER (Andrychowicz et al. 2017) as in OpenAI baselines' her/ ("baselines" below;
# Plappert et al. 2018), so `diff algorithms/her_ddpg.py algorithms/sher.py` shows only the learner. Released code:
# github.com/FSLight1996/SHER (baselines' her/ with Spinning Up's TF1 SAC-v1 as learner), "the released code" below.
#
# Layout: everything outside the "LEARNER" block (arguments, env set-up, normalisers, HER sampler,
# episode buffer, rollouts, evaluation, logging, the main loop) is shared line for line by her_ddpg.py and
# sher.py, which differ only in the learner (DDPG / SAC + V network) behind one interface: act / update / update_target.
#
# Deliberate difference: plain HER `future` goals, as her_ddpg.py; the released her.py passed them through CHER's
# curriculum goal selection (Fang et al. 2019; 128 candidates -> 64), an option ("A") of Algorithm 1 line 1.
#
# Budget: `--total-timesteps` counts training env steps (stored transitions); the run stops exactly there
# (the last episode batch is cut short if needed). An epoch is `n_cycles` cycles of (one episode per env,
# then `n_batches` updates), followed by `n_test_rollouts` deterministic episodes per env.
import contextlib
import io
import math
import multiprocessing
import os
import random
import signal
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import tyro
from torch.utils.tensorboard import SummaryWriter

import envs as predator_prey  # noqa: F401  registers PredatorPrey-v0 (pip install -e . puts envs/ on the path)

with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about the Adroit envs on stderr
    import gymnasium_robotics
gym.register_envs(gymnasium_robotics)


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = False
    """if toggled, cuda is used when available"""
    torch_threads: int = 1
    """CPU threads of torch (1 leaves the other cores to the env subprocesses; more help on an idle machine only)"""
    save_model: bool = False
    """save the networks and the normalisers to runs/{run_name}/"""

    # Environment
    env_id: str = "FetchReach-v4"
    """a goal env: FetchReach/Push/PickAndPlace/Slide-v4, HandManipulate*/HandReach, or PredatorPrey-v0"""
    num_envs: Optional[int] = None
    """parallel envs, one episode each per cycle (default 16, FetchReach 2: see TASK_DEFAULTS)"""
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
    """cycles per epoch: one episode per env, then n-batches updates (default 50; FetchReach, PredatorPrey 10)"""
    n_batches: int = 40
    """gradient steps per cycle"""
    batch_size: Optional[int] = None
    """transitions per gradient step (default 2048 = 8 MPI workers x 256; FetchReach, PredatorPrey 256)"""
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

    # Learner: SAC with a V network (SHER Algorithm 1), no action L2 (the released sac.py commented it out), no noise
    # (Learner.act); the rest as her_ddpg.py, to compare learners only (the released code: gamma 0.99, pi_lr 3e-4)
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


# Defaults that depend on the task, as baselines' config.py DEFAULT_ENV_PARAMS. The general defaults reproduce
# baselines run with 8 MPI workers x 2 envs (the HER paper's set-up): 16 episodes per cycle and 8 x 256 = 2048
# transitions per gradient step (the gradient of a 2048 batch is the average of 8 workers' 256-batch gradients);
# one worker does not learn FetchPush. FetchReach: baselines' 1-CPU command (2 envs, batch 256, 10 cycles),
# which needs far fewer env steps and seconds on this easy task than the 8-worker set-up.
# PredatorPrey (not in baselines): its Q values lie in [-1, 1], not [-1/(1-gamma), 0], so baselines' action L2
# of 1.0 would swamp dQ/du (her_ddpg.py scales it to 0.02; SHER has none); alpha's entropy bonus likewise weighs
# ~1/(1-gamma) more against Q here than on Fetch and might need scaling (left at --alpha, untuned). Its short episodes
# and cheap numpy simulator make batch 256 and 10 cycles per epoch the better trade.
TASK_DEFAULTS = {"": dict(num_envs=16, batch_size=2048, n_cycles=50),
                 "FetchReach": dict(num_envs=2, batch_size=256, n_cycles=10),
                 "PredatorPrey": dict(batch_size=256, n_cycles=10)}


def fill_task_defaults(args: Args) -> None:
    """Set the fields left at None from TASK_DEFAULTS: the task's own entry, then the general one."""
    prefix = max((p for p in TASK_DEFAULTS if args.env_id.startswith(p)), key=len)
    for key, value in {**TASK_DEFAULTS[""], **TASK_DEFAULTS[prefix]}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def check_args(args: Args) -> None:
    """One-line errors for bad flags, before anything heavy starts."""
    problems = {
        f"unknown env id {args.env_id!r} (try FetchReach-v4, FetchPush-v4 or PredatorPrey-v0)":
            args.env_id not in gym.registry,
        "total-timesteps must be positive": args.total_timesteps <= 0,
        "num-envs, n-cycles, batch-size and buffer-size must be positive":
            min(args.num_envs, args.n_cycles, args.batch_size, args.buffer_size) <= 0,
        "n-batches and n-test-rollouts must be >= 0": min(args.n_batches, args.n_test_rollouts) < 0,
        "replay-k must be >= 0": args.replay_k < 0,
        "gamma must be in [0, 1)": not 0 <= args.gamma < 1,
        "clip-obs, norm-eps and norm-clip must be positive": min(args.clip_obs, args.norm_eps, args.norm_clip) <= 0,
        "hidden-size and torch-threads must be positive": min(args.hidden_size, args.torch_threads) <= 0,
        "learning rates must be positive": min(args.policy_lr, args.q_lr) <= 0,
        "polyak must be in [0, 1]": not 0 <= args.polyak <= 1,
        "alpha must be positive": args.alpha <= 0,
    }
    for message, bad in problems.items():
        if bad:
            raise SystemExit(f"error: {message}")


def is_predator_prey(env_id: str) -> bool:
    return env_id.startswith("PredatorPrey")


def make_worker_env(env_id: str) -> gym.Env:
    """A MuJoCo env for an AsyncVectorEnv subprocess, which leaves Ctrl-C to the main process (AsyncVectorEnv
    also makes one env in the main process, to read the spaces: that one must not touch the signal)."""
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return gym.make(env_id)


def make_env(args: Args, num_envs: int) -> gym.vector.VectorEnv:
    """`num_envs` envs stepped together. Autoreset is gymnasium's default (next_step): the obs returned with
    an episode's last step is its true final obs, and `rollout` resets all envs before each episode batch."""
    try:
        if is_predator_prey(args.env_id):  # the batched numpy vector env
            envs = gym.make_vec(args.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                prey=args.prey, spawn=args.spawn)
        elif args.async_envs:
            envs = gym.vector.AsyncVectorEnv([lambda: make_worker_env(args.env_id)] * num_envs)
        else:
            envs = gym.make_vec(args.env_id, num_envs=num_envs, vectorization_mode="sync")
    except (ValueError, TypeError, gym.error.Error) as error:
        raise SystemExit(f"error: cannot make {args.env_id}: {error}")
    space = envs.single_observation_space
    if not isinstance(space, gym.spaces.Dict) or {"observation", "achieved_goal", "desired_goal"} - set(space):
        envs.close()
        raise SystemExit(f"error: {args.env_id} is not a goal env (Dict observation with observation, "
                         "achieved_goal, desired_goal)")
    return envs


def make_reward_env(args: Args) -> gym.Env:
    """One single env in this process, only for its vectorised `compute_reward` (as baselines' reward_fun)."""
    kwargs = dict(prey=args.prey, spawn=args.spawn) if is_predator_prey(args.env_id) else {}
    return gym.make(args.env_id, **kwargs).unwrapped


def episode_horizon(args: Args, envs: gym.vector.VectorEnv) -> int:
    """Rows T of an episode: Fetch/Hand episodes are exactly T = max_episode_steps (time limit, never
    terminated); a Predator-Prey episode ends on capture or on step max_episode_steps + 1 (so at most T)."""
    if is_predator_prey(args.env_id):
        return envs.unwrapped.max_episode_steps + 1
    return gym.spec(args.env_id).max_episode_steps


def task_spec(args: Args) -> tuple[tuple[float, float], bool, bool]:
    """(critic target clip range, whether a nonzero reward marks a terminal transition, whether the networks
    see the achieved goal next to the observation).

    Fetch/Hand: rewards are -1 or 0 and episodes are only ever cut by the time limit, so there is no done
    mask and the return lies in [-1/(1-gamma), 0] (baselines: clip_return = 1/(1-gamma), clip_pos_returns).
    Their observation already holds the achieved goal (gripper or object position): inputs [o, g] as baselines.
    PredatorPrey: rewards lie in [-1, 1] and a reward is nonzero exactly on a terminal step (+1 capture,
    -1 time-out), so every return is +-gamma^k: the target is clipped to [-1, 1] (tighter than the generic
    [r_min, r_max] / (1-gamma), and exact) and the done mask is r != 0, also for relabelled goals.
    Deliberate difference: its observation (the prey velocity) says nothing of the predator's position, so
    the networks get [o, ag, g] there (ag appended to o everywhere: buffer, normaliser, inputs)."""
    if is_predator_prey(args.env_id):
        return (-1.0, 1.0), True, True
    return (-1.0 / (1.0 - args.gamma), 0.0), False, False


def net_observation(obs: dict, with_achieved_goal: bool) -> np.ndarray:
    """The observation o the networks and the buffer use: obs["observation"], followed by the achieved goal
    where task_spec asks for it."""
    if with_achieved_goal:
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


# ALGO LOGIC: HER `future` relabelling (Andrychowicz et al. 2017, Sec. 4.5; baselines her_sampler.py)
def sample_her_transitions(episodes: dict, batch_size: int, future_p: float, compute_reward: Callable,
                           terminal_on_reward: bool, rng: np.random.Generator) -> dict:
    """`batch_size` transitions drawn from whole `episodes`, a share `future_p` of them relabelled.

    `episodes` holds o, ag, g (E, T + 1, .), u (E, T, .) and `length` (E,): episode e has transitions
    t = 0 .. length-1 and observations 0 .. length. As baselines: an episode uniformly, then a step t
    uniformly within it (deliberate difference: within its own length, as Predator-Prey episodes can end
    early; for Fetch every length is T and this is baselines' draw); a relabelled goal is the achieved goal
    of a step drawn uniformly from t+1 .. length (never past the episode's end). Rewards come from the
    env's compute_reward(ag_{t+1}, g, {"episode_steps": t + 1}).
    """
    ep = rng.integers(0, len(episodes["length"]), batch_size)
    length = episodes["length"][ep]
    t = (rng.random(batch_size) * length).astype(np.int64)
    her = rng.random(batch_size) < future_p
    future_t = t + 1 + (rng.random(batch_size) * (length - t)).astype(np.int64)
    g = episodes["g"][ep, t]
    # Deliberate difference: the next state's goal is the real next goal g_{t+1} (baselines reuses g_t; the
    # same on Fetch/Hand, whose goal is fixed per episode; Predator-Prey's prey moves). Relabelled: fixed g'.
    g_next = episodes["g"][ep, t + 1]
    g[her] = g_next[her] = episodes["ag"][ep[her], future_t[her]]
    ag_next = episodes["ag"][ep, t + 1]
    r = np.asarray(compute_reward(ag_next, g, {"episode_steps": t + 1}), np.float32)
    done = (r != 0).astype(np.float32) if terminal_on_reward else np.zeros(batch_size, np.float32)
    return dict(o=episodes["o"][ep, t], g=g, u=episodes["u"][ep, t], r=r, o_next=episodes["o"][ep, t + 1],
                g_next=g_next, ag=episodes["ag"][ep, t], ag_next=ag_next, done=done, her=her,
                ep=ep, t=t, future_t=np.where(her, future_t, -1))


# ALGO LOGIC: replay buffer of whole episodes (baselines replay_buffer.py)
class EpisodeBuffer:
    """Preallocated arrays of at most `size_in_transitions // T` episodes of T rows; memory stays flat.

    Deliberate difference: once full, the oldest episodes are overwritten (a FIFO ring); baselines
    overwrote randomly chosen episodes."""

    def __init__(self, size_in_transitions: int, T: int, obs_dim: int, goal_dim: int, act_dim: int):
        self.size = size_in_transitions // T
        self.data = dict(o=np.zeros((self.size, T + 1, obs_dim), np.float32),
                         ag=np.zeros((self.size, T + 1, goal_dim), np.float32),
                         g=np.zeros((self.size, T + 1, goal_dim), np.float32),
                         u=np.zeros((self.size, T, act_dim), np.float32),
                         length=np.zeros(self.size, np.int64))
        self.next_index, self.n_stored = 0, 0

    def store(self, episodes: dict) -> None:
        n = len(episodes["length"])
        index = (self.next_index + np.arange(n)) % self.size
        for key, array in self.data.items():
            array[index] = episodes[key]
        self.next_index = (self.next_index + n) % self.size
        self.n_stored = min(self.n_stored + n, self.size)

    def episodes(self) -> dict:
        return {key: array[: self.n_stored] for key, array in self.data.items()}


# ALGO LOGIC: one episode per env from reset (baselines rollout.py RolloutWorker.generate_rollouts)
def rollout(envs: gym.vector.VectorEnv, policy: Callable, T: int, max_steps: int, with_achieved_goal: bool,
            seed: Optional[int] = None):
    """Returns (episodes with length >= 1, success of each such episode, its return, env steps taken).

    An env's episode ends at its time limit or terminal step; `max_steps` cuts the batch so that no more
    than that many transitions are taken into account (the extra simulated steps of cut envs are dropped)."""
    n, space = envs.num_envs, envs.single_observation_space
    goal_dim = space["desired_goal"].shape[0]
    obs_dim = space["observation"].shape[0] + (goal_dim if with_achieved_goal else 0)
    act_dim = envs.single_action_space.shape[0]
    ep = dict(o=np.zeros((n, T + 1, obs_dim), np.float32), ag=np.zeros((n, T + 1, goal_dim), np.float32),
              g=np.zeros((n, T + 1, goal_dim), np.float32), u=np.zeros((n, T, act_dim), np.float32),
              length=np.zeros(n, np.int64))
    success, returns = np.zeros(n), np.zeros(n)
    obs, _ = envs.reset(seed=seed)
    o = net_observation(obs, with_achieved_goal)
    ep["o"][:, 0], ep["ag"][:, 0], ep["g"][:, 0] = o, obs["achieved_goal"], obs["desired_goal"]
    alive = np.ones(n, bool)
    for t in range(T):
        alive[np.flatnonzero(alive)[max(max_steps - int(ep["length"].sum()), 0):]] = False  # budget cut
        if not alive.any():
            break
        u = policy(o, obs["desired_goal"])
        obs, reward, terminated, truncated, infos = envs.step(u)
        o = net_observation(obs, with_achieved_goal)
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
    """Gaussian policy on normalised [o, g]: (mean, log_std) heads = the last layer (2 x act_dim) of one MLP (the
    released core.py put the heads on an extra act_dim-wide linear layer); log_std squashed into
    [LOG_STD_MIN, LOG_STD_MAX] by tanh, as CleanRL's SAC and the released core.py."""

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
                  clip_range: tuple[float, float]) -> torch.Tensor:
    """y_q = clip(r + gamma * (1 - done) * V_targ(s', g), *clip_range): Algorithm 1 line 22, eq. (10); clipped as
    her_ddpg.py's target (so did the released sac.py; no done mask on Fetch, where done is always 0)."""
    return torch.clamp(r + gamma * (1.0 - done) * v_next, *clip_range)


class Learner:
    """Policy, twin Q, V and its target, Adam optimisers, temperature alpha. Interface shared with her_ddpg.py:
    act(x, explore, rng) -> actions, update(batch) -> losses, update_target(), state_dict()."""

    def __init__(self, args: Args, in_size: int, act_dim: int, max_u: float, clip_range, device: torch.device):
        self.args, self.max_u, self.clip_range, self.act_dim = args, max_u, clip_range, act_dim
        self.actor = Actor(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.qf1 = QNetwork(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.qf2 = QNetwork(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.vf = mlp(in_size, args.hidden_size, 1).to(device)  # V(o, g) = MLP(normalised [o, g]) (released core.py)
        self.target_vf = mlp(in_size, args.hidden_size, 1).to(device)
        self.target_vf.load_state_dict(self.vf.state_dict())  # Algorithm 1 line 2
        self.actor_optimizer = optim.Adam(self.actor.parameters(), lr=args.policy_lr)
        self.q_optimizer = optim.Adam([*self.qf1.parameters(), *self.qf2.parameters(), *self.vf.parameters()],
                                      lr=args.q_lr)  # one Adam for Q1, Q2 and V, as the released sac.py (V_adam)
        # Temperature: fixed (the paper), or with --autotune learnt toward entropy -|A| as CleanRL's SAC, from --alpha
        self.log_alpha = torch.tensor(math.log(args.alpha), device=device, requires_grad=args.autotune)
        self.alpha_optimizer = optim.Adam([self.log_alpha], lr=args.q_lr)

    @torch.no_grad()
    def act(self, x: torch.Tensor, explore: bool, rng: np.random.Generator) -> np.ndarray:
        """Training: u ~ pi(.|s, g) (Algorithm 1 line 6), no noise or random actions on top (the released code
        replaced 5% of the actions by uniform random ones, tests included, and tested sampled actions); tests: the
        mean action max_u * tanh(mean)."""
        mean, log_std = self.actor(x)
        noise = rng.standard_normal(mean.shape) if explore else np.zeros(mean.shape)  # noise 0: max_u * tanh(mean)
        u, _ = squashed_gaussian(mean, log_std, torch.as_tensor(noise, dtype=mean.dtype, device=x.device), self.max_u)
        return u.cpu().numpy()

    def losses(self, b: dict, noise: torch.Tensor) -> dict:
        """Algorithm 1 lines 22-23 on a batch (normalised x, x_next; raw u, r, done); `noise` ~ N(0, I) draws the
        fresh a~ ~ pi(.|s, g), one per transition for both y_v and the policy loss (as the released code)."""
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            v_next = self.target_vf(b["x_next"]).squeeze(-1)  # V_targ(s', g)
            y_q = critic_target(b["r"], v_next, b["done"], self.args.gamma, self.clip_range)
        u_pi, log_pi = squashed_gaussian(*self.actor(b["x"]), noise, self.max_u)  # reparameterised a~
        q1_pi = self.qf1(b["x"], u_pi)
        # line 22: y_v = min_i Q_i(s, a~, g) - alpha log pi(a~|s, g), the sampled inner expectation of eq. (14)
        y_v = (torch.min(q1_pi, self.qf2(b["x"], u_pi)) - alpha * log_pi).detach()
        q1, q2 = self.qf1(b["x"], b["u"]), self.qf2(b["x"], b["u"])
        return dict(y_q=y_q, y_v=y_v, q1=q1, log_pi=log_pi,
                    qf_loss=F.mse_loss(q1, y_q) + F.mse_loss(q2, y_q),  # Q regression to y_q (Alg. 1 leaves it out)
                    vf_loss=F.mse_loss(self.vf(b["x"]).squeeze(-1), y_v),  # line 23, first; gradient eq. (15)
                    # line 23, second: alpha log pi(a~|s, g) - Q_1(s, a~, g), as the released sac.py; eq. (16) has Q
                    # without an index (Spinning Up's SAC-v1 also took Q_1; CleanRL's SAC takes min_i Q_i)
                    actor_loss=(alpha * log_pi - q1_pi).mean(),
                    alpha_loss=-(self.log_alpha.exp() * (log_pi.detach() - self.act_dim)).mean())

    def update(self, b: dict) -> dict:
        """One SAC step (Algorithm 1 lines 20-23): all losses use the pre-update networks, then the optimisers step."""
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
        (the released code did the same, in baselines' train loop; Algorithm 1 puts it after every minibatch)."""
        for param, target_param in zip(self.vf.parameters(), self.target_vf.parameters()):
            target_param.mul_(self.args.polyak).add_((1.0 - self.args.polyak) * param)

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "qf1": self.qf1.state_dict(), "qf2": self.qf2.state_dict(),
                "vf": self.vf.state_dict(), "log_alpha": self.log_alpha.detach()}


# ================================================== END LEARNER =====================================================


if __name__ == "__main__":
    args = tyro.cli(Args)
    fill_task_defaults(args)
    check_args(args)
    # Deliberate difference: the test episodes run on the training envs (baselines: separate evaluator envs),
    # which halves the simulator subprocesses; rollout() resets every env before each batch anyway.
    envs = make_env(args, args.num_envs)
    T = episode_horizon(args, envs)
    if args.buffer_size // T < args.num_envs:
        raise SystemExit(f"error: buffer-size must hold at least one episode batch (num-envs x {T} transitions)")
    action_space = envs.single_action_space
    max_u = float(action_space.high[0])
    if not (np.all(action_space.high == max_u) and np.all(action_space.low == -max_u)):
        raise SystemExit("error: the action space must be a symmetric box [-max_u, max_u]^n")
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(f"runs/{run_name}")
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
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    rng = np.random.default_rng(args.seed)

    space = envs.single_observation_space
    clip_range, terminal_on_reward, with_achieved_goal = task_spec(args)
    goal_dim = space["desired_goal"].shape[0]
    obs_dim = space["observation"].shape[0] + (goal_dim if with_achieved_goal else 0)
    act_dim = action_space.shape[0]
    compute_reward = make_reward_env(args).compute_reward
    future_p = 1.0 - 1.0 / (1.0 + args.replay_k)  # k = 4: 80% of the sampled goals are relabelled
    o_norm = Normalizer(obs_dim, args.norm_eps, args.norm_clip, device)
    g_norm = Normalizer(goal_dim, args.norm_eps, args.norm_clip, device)
    buffer = EpisodeBuffer(args.buffer_size, T, obs_dim, goal_dim, act_dim)
    learner = Learner(args, obs_dim + goal_dim, act_dim, max_u, clip_range, device)

    def preprocess(o: np.ndarray, g: np.ndarray) -> torch.Tensor:
        """Clip raw o, g to +-clip_obs, normalise, concatenate (baselines ddpg.py _preprocess_og + actor_critic)."""
        o = torch.as_tensor(np.clip(o, -args.clip_obs, args.clip_obs), dtype=torch.float32, device=device)
        g = torch.as_tensor(np.clip(g, -args.clip_obs, args.clip_obs), dtype=torch.float32, device=device)
        return torch.cat([o_norm.normalize(o), g_norm.normalize(g)], -1)

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=device)

    global_step, epoch, env_seed = 0, 0, args.seed
    start_time = time.time()
    try:
        while global_step < args.total_timesteps:
            epoch += 1
            train_success, losses = [], []
            for cycle in range(args.n_cycles):
                if global_step >= args.total_timesteps:
                    break
                # ALGO LOGIC: one batch of episodes with exploration (HER Algorithm 1, lines 5-8)
                episodes, success, returns, steps = rollout(
                    envs, lambda o, g: learner.act(preprocess(o, g), True, rng), T,
                    args.total_timesteps - global_step, with_achieved_goal, seed=env_seed)
                env_seed = None  # seed the first reset only; the envs' own generators carry on
                global_step += steps
                train_success.extend(success)
                writer.add_scalar("charts/episodic_return", returns.mean(), global_step)
                writer.add_scalar("charts/episodic_length", episodes["length"].mean(), global_step)

                # ALGO LOGIC: store, then update the normalisers from HER samples of the new episodes only
                # (baselines ddpg.py store_episode: as many samples as the batch has transitions)
                buffer.store(episodes)
                fresh = sample_her_transitions(episodes, int(episodes["length"].sum()), future_p, compute_reward,
                                               terminal_on_reward, rng)
                o_norm.update(np.clip(fresh["o"], -args.clip_obs, args.clip_obs))
                g_norm.update(np.clip(fresh["g"], -args.clip_obs, args.clip_obs))

                # ALGO LOGIC: n_batches updates on HER minibatches (HER Algorithm 1, lines 13-16)
                for _ in range(args.n_batches):
                    tr = sample_her_transitions(buffer.episodes(), args.batch_size, future_p, compute_reward,
                                                terminal_on_reward, rng)
                    batch = dict(x=preprocess(tr["o"], tr["g"]), x_next=preprocess(tr["o_next"], tr["g_next"]),
                                 u=to_tensor(tr["u"]), r=to_tensor(tr["r"]), done=to_tensor(tr["done"]))
                    losses.append(learner.update(batch))
                learner.update_target()  # once per cycle (baselines her.py train loop)
                if losses:
                    for key in losses[0]:
                        writer.add_scalar(f"losses/{key}", np.mean([loss[key] for loss in losses[-args.n_batches:]]),
                                          global_step)

            # ALGO LOGIC: deterministic test episodes after each epoch (baselines her.py, evaluator)
            test_success = []
            for i in range(args.n_test_rollouts):
                _, success, _, _ = rollout(envs, lambda o, g: learner.act(preprocess(o, g), False, rng), T,
                                           args.num_envs * T, with_achieved_goal)
                test_success.extend(success)
            s_train = float(np.mean(train_success))
            s_test = float(np.mean(test_success)) if test_success else float("nan")
            elapsed = time.time() - start_time
            sps = int(global_step / elapsed)
            writer.add_scalar("charts/success_rate", s_train, global_step)
            writer.add_scalar("eval/success_rate", s_test, global_step)
            writer.add_scalar("stability/delta_s", abs(s_train - s_test), global_step)  # SHER paper, Table 1
            writer.add_scalar("charts/SPS", sps, global_step)
            writer.add_scalar("charts/epoch", epoch, global_step)
            eta = (args.total_timesteps - global_step) / max(global_step / elapsed, 1e-9)
            print(f"epoch {epoch:>4}  step {global_step:>9}/{args.total_timesteps}  train success {s_train:.3f}  "
                  f"test success {s_test:.3f}  time {elapsed:7.1f}s  SPS {sps:>5}  ETA {eta / 60:6.1f} min",
                  flush=True)
    except KeyboardInterrupt:
        print(f"interrupted at step {global_step}; the TensorBoard log is kept in runs/{run_name}", flush=True)
        with warnings.catch_warnings():  # a step may still be pending: stop the workers, keep nothing
            warnings.simplefilter("ignore")
            envs.close(terminate=True)

    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.cleanrl_model"
        torch.save({**learner.state_dict(), "o_norm": o_norm.state_dict(), "g_norm": g_norm.state_dict(),
                    "args": vars(args)}, model_path)
        print(f"model saved to {model_path}")

    envs.close()
    writer.close()
