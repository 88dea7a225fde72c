# DDPG + Hindsight Experience Replay, faithful to OpenAI baselines' her/ (the code behind the papers).
# Papers: Andrychowicz et al., "Hindsight Experience Replay", NeurIPS 2017 (HER, Algorithm 1);
# Plappert et al., "Multi-Goal Reinforcement Learning: Challenging Robotics Environments and Request
# for Research", arXiv 1802.09464, 2018 (the Fetch/Hand set-up and hyperparameters, Sec. 2-3).
# Code followed: baselines/her/{her.py, ddpg.py, actor_critic.py, her_sampler.py, normalizer.py,
# replay_buffer.py, rollout.py} (referred to as "baselines" below). Style: CleanRL's ddpg_continuous_action.py.
#
# Layout: everything outside the "LEARNER" block (arguments, env set-up, normalisers, HER sampler,
# episode buffer, rollouts, evaluation, logging, the main loop) is shared line for line by her_ddpg.py and
# sher.py, which differ only in the learner (DDPG / SAC + V network) behind one interface: act / update / update_target.
#
# Budget: `--total-timesteps` counts training env steps (stored transitions); the run stops exactly there
# (the last episode batch is cut short if needed). An epoch is `n_cycles` cycles of (one episode per env,
# then `n_batches` updates), followed by `n_test_rollouts` deterministic episodes per env.
import contextlib
import io
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

    # Learner: DDPG (baselines config.py DEFAULT_PARAMS)
    gamma: float = 0.98
    """the discount factor gamma"""
    hidden_size: int = 256
    """width of the 3 hidden ReLU layers of the actor and of the critic"""
    policy_lr: float = 1e-3
    """Adam learning rate of the actor (baselines pi_lr)"""
    q_lr: float = 1e-3
    """Adam learning rate of the critic (baselines Q_lr)"""
    polyak: float = 0.95
    """target networks: target <- polyak * target + (1 - polyak) * main, once per cycle"""
    action_l2: Optional[float] = None
    """weight of the actor's (action / max_u)^2 penalty (default 1.0, PredatorPrey 0.02)"""
    noise_eps: float = 0.2
    """std of the Gaussian exploration noise, as a fraction of max_u"""
    random_eps: float = 0.3
    """probability of a uniform random action during training rollouts"""


# Defaults that depend on the task, as baselines' config.py DEFAULT_ENV_PARAMS. The general defaults reproduce
# baselines run with 8 MPI workers x 2 envs (the HER paper's set-up): 16 episodes per cycle and 8 x 256 = 2048
# transitions per gradient step (the gradient of a 2048 batch is the average of 8 workers' 256-batch gradients);
# one worker does not learn FetchPush. FetchReach: baselines' 1-CPU command (2 envs, batch 256, 10 cycles),
# which needs far fewer env steps and seconds on this easy task than the 8-worker set-up.
# PredatorPrey (not in baselines): its Q values lie in [-1, 1], not [-1/(1-gamma), 0], so baselines' action L2
# of 1.0 would swamp dQ/du and the predator would barely move; 0.02 = 1.0 x (1 - gamma) keeps the penalty's
# weight relative to Q (static prey, 20k steps: test success 0.04 with 1.0, 1.0 with 0.02). Its short episodes
# and cheap numpy simulator make batch 256 and 10 cycles per epoch the better trade.
TASK_DEFAULTS = {"": dict(num_envs=16, batch_size=2048, n_cycles=50, action_l2=1.0),
                 "FetchReach": dict(num_envs=2, batch_size=256, n_cycles=10),
                 "PredatorPrey": dict(batch_size=256, n_cycles=10, action_l2=0.02)}


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
        "action-l2 and noise-eps must be >= 0": min(args.action_l2, args.noise_eps) < 0,
        "random-eps must be in [0, 1]": not 0 <= args.random_eps <= 1,
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


# ========================== LEARNER: DDPG (Lillicrap et al. 2016) as in baselines ddpg.py ===========================
def mlp(in_size: int, hidden: int, out_size: int) -> nn.Sequential:
    """3 hidden ReLU layers; Xavier-uniform weights and zero biases (baselines util.py nn)."""
    layers = [nn.Linear(in_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
              nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_size)]
    for layer in layers[::2]:
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """pi(o, g) = max_u * tanh(MLP(normalised [o, g])) (baselines actor_critic.py)."""

    def __init__(self, in_size: int, act_dim: int, hidden: int, max_u: float):
        super().__init__()
        self.net, self.max_u = mlp(in_size, hidden, act_dim), max_u

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.max_u * torch.tanh(self.net(x))


class QNetwork(nn.Module):
    """Q(o, g, u) = MLP(normalised [o, g], u / max_u) (baselines actor_critic.py)."""

    def __init__(self, in_size: int, act_dim: int, hidden: int, max_u: float):
        super().__init__()
        self.net, self.max_u = mlp(in_size + act_dim, hidden, 1), max_u

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, u / self.max_u], -1)).squeeze(-1)


def critic_target(r: torch.Tensor, q_next: torch.Tensor, done: torch.Tensor, gamma: float,
                  clip_range: tuple[float, float]) -> torch.Tensor:
    """y = clip(r + gamma * (1 - done) * Q'(s', pi'(s')), *clip_range) (baselines ddpg.py target_tf)."""
    return torch.clamp(r + gamma * (1.0 - done) * q_next, *clip_range)


class Learner:
    """Actor, critic, their targets and Adam optimisers. Interface shared with sher.py:
    act(x, explore, rng) -> actions, update(batch) -> losses, update_target(), state_dict()."""

    def __init__(self, args: Args, in_size: int, act_dim: int, max_u: float, clip_range, device: torch.device):
        self.args, self.max_u, self.clip_range, self.act_dim = args, max_u, clip_range, act_dim
        self.actor = Actor(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.qf = QNetwork(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.target_actor = Actor(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.target_qf = QNetwork(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.target_actor.load_state_dict(self.actor.state_dict())
        self.target_qf.load_state_dict(self.qf.state_dict())
        self.actor_optimizer = optim.Adam(self.actor.parameters(), lr=args.policy_lr)
        self.q_optimizer = optim.Adam(self.qf.parameters(), lr=args.q_lr)

    @torch.no_grad()
    def act(self, x: torch.Tensor, explore: bool, rng: np.random.Generator) -> np.ndarray:
        """Deterministic pi for tests; for training, Gaussian noise then uniform random actions with
        probability random_eps (baselines ddpg.py get_actions, Plappert et al. 2018 Sec. 3)."""
        u = self.actor(x).cpu().numpy()
        if explore:
            u = np.clip(u + self.args.noise_eps * self.max_u * rng.standard_normal(u.shape), -self.max_u, self.max_u)
            random_u = rng.uniform(-self.max_u, self.max_u, u.shape)
            u += rng.binomial(1, self.args.random_eps, (len(u), 1)) * (random_u - u)
        return u.astype(np.float32)

    def update(self, b: dict) -> dict:
        """One DDPG step on a batch of normalised inputs x, x_next and raw u, r, done (baselines ddpg.py
        _grads/_update): both losses use the pre-update networks, then both optimisers step."""
        with torch.no_grad():
            q_next = self.target_qf(b["x_next"], self.target_actor(b["x_next"]))
            y = critic_target(b["r"], q_next, b["done"], self.args.gamma, self.clip_range)
        q = self.qf(b["x"], b["u"])
        qf_loss = F.mse_loss(q, y)
        pi = self.actor(b["x"])
        actor_loss = -self.qf(b["x"], pi).mean() + self.args.action_l2 * (pi / self.max_u).pow(2).mean()
        self.q_optimizer.zero_grad()
        qf_loss.backward()
        self.actor_optimizer.zero_grad()
        actor_loss.backward(inputs=list(self.actor.parameters()))  # the critic's grads are qf_loss's only
        self.q_optimizer.step()
        self.actor_optimizer.step()
        return {"qf_loss": qf_loss.item(), "actor_loss": actor_loss.item(), "qf_values": q.mean().item()}

    @torch.no_grad()
    def update_target(self) -> None:
        """target <- polyak * target + (1 - polyak) * main, once per cycle (baselines update_target_net)."""
        for net, target in ((self.actor, self.target_actor), (self.qf, self.target_qf)):
            for param, target_param in zip(net.parameters(), target.parameters()):
                target_param.mul_(self.args.polyak).add_((1.0 - self.args.polyak) * param)

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "qf": self.qf.state_dict()}


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
