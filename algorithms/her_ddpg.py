# docs and experiment results: docs/her_ddpg.md
# DDPG + Hindsight Experience Replay as in OpenAI baselines' her/ ("baselines"), the code behind HER
# (Andrychowicz et al., NeurIPS 2017: Algorithm 1, Sec. 4.5) and Plappert et al., arXiv 1802.09464.
# Everything outside the LEARNER block is line for line algorithms/sher.py.
import copy
import dataclasses
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import tyro
from torch.utils.tensorboard import SummaryWriter

from envs import make_goal_env, play_episodes, refuse_broken, shared_rules

SCRIPT = os.path.basename(__file__)
RESUME_REFUSED = 3  # the exit status of a refused --resume (the experiment runner reads it)


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
    """torch's CPU threads (1 leaves the other cores to the env subprocesses)"""
    save_model: bool = False
    """save the networks and the normalisers to runs/{run_name}/"""
    capture_video: bool = False
    """record a test episode per epoch to videos/{run_name}/"""
    checkpoint_every: int = 0
    """checkpoint every N epochs too (0: only at the end and on Ctrl-C)"""
    resume: str = ""
    """a run folder to continue from its checkpoint (flags not given are the run's)"""

    # Environment
    env_id: str = "FetchReach-v4"
    """Fetch*-v4, HandManipulate*, HandReach or PredatorPrey-v0"""
    num_envs: Optional[int] = None
    """parallel envs, one episode each per cycle (None: 16 or 2)"""
    prey: Literal["static", "random", "attract", "repel", "straight_away", "random_direction"] = "random"
    """PredatorPrey-v0 only: prey behaviour"""
    spawn: Literal["random", "apart"] = "random"
    """PredatorPrey-v0 only: spawn mode"""

    # Schedule (baselines her.py / config.py)
    total_timesteps: int = 10_000
    """training env steps of the run (it stops exactly there)"""
    n_cycles: Optional[int] = None
    """cycles (episodes, then updates) per epoch (None: 50 or 10)"""
    n_batches: int = 40
    """gradient steps per cycle"""
    batch_size: Optional[int] = None
    """transitions per gradient step (None: 2048 or 256)"""
    n_test_rollouts: int = 10
    """deterministic test episodes per env after each epoch"""
    buffer_size: int = 1_000_000
    """replay capacity in transitions (whole episodes, FIFO)"""
    replay_k: int = 4
    """HER `future` strategy: k relabelled goals per real one"""
    clip_obs: float = 200.0
    """observations and goals are clipped to +-clip_obs before normalising"""
    norm_eps: float = 0.01
    """minimum std of the running normalisers"""
    norm_clip: float = 5.0
    """normalised inputs are clipped to +-norm_clip"""

    # Learner: DDPG (baselines config.py DEFAULT_PARAMS)
    gamma: float = 0.98
    """the discount factor gamma"""
    hidden_size: int = 256
    """width of the 3 hidden ReLU layers of every network"""
    policy_lr: float = 1e-3
    """Adam learning rate of the actor (baselines pi_lr)"""
    q_lr: float = 1e-3
    """Adam learning rate of the critic (baselines Q_lr)"""
    polyak: float = 0.95
    """targets <- polyak * targets + (1 - polyak) * main, once per cycle"""
    action_l2: Optional[float] = None
    """(u / max_u)^2 penalty weight (None: 1; PredatorPrey: 0.02)"""
    noise_eps: float = 0.2
    """std of the Gaussian exploration noise, as a fraction of max_u"""
    random_eps: float = 0.3
    """probability of a uniform random action during training rollouts"""


# A flag left at None takes its task's value (baselines config.py DEFAULT_ENV_PARAMS)
TASK_DEFAULTS = {
    "FetchReach": dict(num_envs=2, batch_size=256, n_cycles=10, action_l2=1.0),  # baselines' 1 CPU
    "PredatorPrey": dict(num_envs=16, batch_size=256, n_cycles=10, action_l2=0.02),  # Q in [-1, 1]
    "": dict(num_envs=16, batch_size=2048, n_cycles=50, action_l2=1.0),  # baselines' 8 MPI workers
}
# how a run goes on, not what it learns: the only flags a resumed run may change
RESUMABLE = ["total_timesteps", "checkpoint_every", "resume", "save_model", "capture_video", "cuda", "torch_threads"]


def fill_task_defaults(args):
    task = next(prefix for prefix in TASK_DEFAULTS if args.env_id.startswith(prefix))
    for key, value in TASK_DEFAULTS[task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def check_args(args):
    positive = ["norm_eps", "norm_clip"]
    at_least_1 = ["torch_threads", "num_envs", "total_timesteps", "n_cycles", "batch_size",
                  "n_test_rollouts", "hidden_size"]
    rules = shared_rules(args)
    rules += [(name, getattr(args, name) > 0, "> 0") for name in positive]
    rules += [(name, 0 < getattr(args, name) <= 1, "in (0, 1]") for name in ["policy_lr", "q_lr"]]  # beyond: NaN
    rules += [(name, getattr(args, name) >= 1, ">= 1") for name in at_least_1]
    rules += [(name, getattr(args, name) >= 0, ">= 0") for name in ["checkpoint_every", "n_batches", "replay_k"]]
    largest = dict(num_envs=2**16, batch_size=2**20, buffer_size=2**26, hidden_size=4096)  # beyond: out of memory
    largest.update(norm_eps=10**6, norm_clip=10**6)  # beyond: inf in float32
    rules += [(name, getattr(args, name) <= top, f"<= {top}") for name, top in largest.items()]
    rules += [("clip_obs", 0 < args.clip_obs <= 1e6, "in (0, 1e6]"),  # float32 inputs
              ("torch_threads", args.torch_threads <= os.cpu_count(), f"<= {os.cpu_count()}, the cores here"),
              ("cuda", not args.cuda or torch.cuda.is_available(), "off: torch finds no GPU"),
              ("gamma", 0 < args.gamma < 1, "in (0, 1)"),
              ("polyak", 0 <= args.polyak <= 1, "in [0, 1]"),
              ("random_eps", 0 <= args.random_eps <= 1, "in [0, 1]")]
    rules += [(name, 0 <= getattr(args, name) <= 1e6, "in [0, 1e6]") for name in ["action_l2", "noise_eps"]]
    refuse_broken(rules, args)


def resume_run(args):
    path = os.path.join(args.resume, "checkpoint.pt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # this script's file
    except Exception as error:
        refuse_resume(f"cannot read {path} ({type(error).__name__})")
    if not isinstance(checkpoint, dict) or checkpoint.get("script") != SCRIPT:
        refuse_resume(f"{path} is not a checkpoint of {SCRIPT}")
    if set(checkpoint["args"]) != set(vars(args)):  # written by another version of this script
        refuse_resume(f"{path} was written with other flags than this version of {SCRIPT} has")
    run_args = Args(**checkpoint["args"])
    args = tyro.cli(Args, default=dataclasses.replace(run_args, resume=args.resume))
    for name in vars(args):
        if name not in RESUMABLE and getattr(args, name) != getattr(run_args, name):
            refuse_resume(f"the run has --{name.replace('_', '-')} {getattr(run_args, name)}; "
                          "a resumed run may change only --" + ", --".join(RESUMABLE).replace("_", "-"))
    if args.total_timesteps <= checkpoint["global_step"]:
        refuse_resume(f"--total-timesteps must be above the {checkpoint['global_step']} steps done")
    return args, checkpoint


def refuse_resume(reason):
    print(f"error: --resume: {reason}", file=sys.stderr)
    raise SystemExit(RESUME_REFUSED)


@dataclasses.dataclass(frozen=True)
class Task:
    horizon: int  # rows T of an episode: its most steps
    target_range: tuple  # critic targets are clipped to the range of possible returns
    done_on_reward: bool  # a nonzero reward ends the episode: no bootstrap past it
    observe_achieved_goal: bool  # the networks and the buffer see o = [observation, achieved goal]


def task_of(args, envs):
    if args.env_id == "PredatorPrey-v0":
        return Task(envs.max_episode_steps + 1, (-1.0, 1.0), True, True)
    return Task(envs.max_episode_steps, (-1.0 / (1.0 - args.gamma), 0.0), False, False)


def net_observation(obs, task):
    if task.observe_achieved_goal:
        return np.concatenate([obs["observation"], obs["achieved_goal"]], -1)
    return obs["observation"]


# ALGO LOGIC: running mean/std normaliser (baselines normalizer.py; Plappert et al. 2018, Sec. 3)
class Normalizer:
    def __init__(self, size, eps, clip_range):
        self.eps = eps
        self.clip_range = clip_range
        self.sum = np.zeros(size)
        self.sumsq = np.zeros(size)
        self.count = 0
        self.mean = np.zeros(size)
        self.std = np.ones(size)

    def update(self, values):
        values = np.asarray(values, np.float64).reshape(-1, len(self.sum))
        self.sum += values.sum(0)
        self.sumsq += np.square(values).sum(0)
        self.count += len(values)
        self.mean = self.sum / self.count
        self.std = np.sqrt(np.maximum(self.eps**2, self.sumsq / self.count - np.square(self.mean)))

    def normalize(self, values):
        normalized = (values - values.new_tensor(self.mean)) / values.new_tensor(self.std)
        return torch.clamp(normalized, -self.clip_range, self.clip_range)


def empty_episodes(n, T, obs_dim, goal_dim, act_dim):  # o, ag, g at steps 0..T, u at 0..T-1
    goals = np.zeros((n, T + 1, goal_dim), np.float32)
    return dict(o=np.zeros((n, T + 1, obs_dim), np.float32), ag=goals, g=goals.copy(),
                u=np.zeros((n, T, act_dim), np.float32), length=np.zeros(n, np.int64))


# ALGO LOGIC: HER `future` relabelling (HER Sec. 4.5; baselines her_sampler.py)
def sample_her_transitions(episodes, batch_size, future_p, compute_reward, task, rng):
    ep = rng.integers(0, len(episodes["length"]), batch_size)
    length = episodes["length"][ep]
    t = (rng.random(batch_size) * length).astype(np.int64)
    relabel = rng.random(batch_size) < future_p
    future_t = t + 1 + (rng.random(batch_size) * (length - t)).astype(np.int64)
    g = episodes["g"][ep, t]
    g_next = episodes["g"][ep, t + 1]  # baselines reuses g_t: the same on Fetch, but the prey moves
    g[relabel] = g_next[relabel] = episodes["ag"][ep[relabel], future_t[relabel]]
    r = compute_reward(episodes["ag"][ep, t + 1], g, {"episode_steps": t + 1}).astype(np.float32)
    done = (r != 0).astype(np.float32) if task.done_on_reward else np.zeros(batch_size, np.float32)
    return dict(o=episodes["o"][ep, t], g=g, u=episodes["u"][ep, t], r=r, done=done,
                o_next=episodes["o"][ep, t + 1], g_next=g_next)


# ALGO LOGIC: whole-episode replay (baselines replay_buffer.py), oldest overwritten (theirs: random)
class EpisodeBuffer:
    def __init__(self, size_in_transitions, T, obs_dim, goal_dim, act_dim):
        self.size = size_in_transitions // T
        self.data = empty_episodes(self.size, T, obs_dim, goal_dim, act_dim)
        self.next_index = 0
        self.n_stored = 0

    def store(self, episodes):
        index = (self.next_index + np.arange(len(episodes["length"]))) % self.size
        for key, array in self.data.items():
            array[index] = episodes[key]
        self.next_index = (index[-1] + 1) % self.size
        self.n_stored = min(self.n_stored + len(index), self.size)

    def episodes(self):
        return {key: array[: self.n_stored] for key, array in self.data.items()}


# ALGO LOGIC: an episode per env from reset (baselines rollout.py); `max_steps` cuts the batch
def rollout(envs, policy, task, max_steps, seed=None):
    obs, _ = envs.reset(seed=seed)
    o = net_observation(obs, task)
    n = envs.num_envs
    act_dim = envs.single_action_space.shape[0]
    ep = empty_episodes(n, task.horizon, o.shape[1], obs["desired_goal"].shape[1], act_dim)
    ep["success"] = np.zeros(n)
    ep["return"] = np.zeros(n)
    ep["o"][:, 0] = o
    ep["ag"][:, 0] = obs["achieved_goal"]
    ep["g"][:, 0] = obs["desired_goal"]
    alive = np.ones(n, bool)
    for t in range(task.horizon):
        budget_left = max(max_steps - int(ep["length"].sum()), 0)
        alive[np.flatnonzero(alive)[budget_left:]] = False
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
        ep["success"][alive] = infos["is_success"][alive]
        ep["return"][alive] += reward[alive]
        alive &= ~(terminated | truncated)
    return {key: array[ep["length"] > 0] for key, array in ep.items()}


# ================ LEARNER: DDPG (Lillicrap et al. 2016) as in baselines ddpg.py =================
def mlp(in_size, hidden, out_size):
    layers = [nn.Linear(in_size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
              nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_size)]
    for layer in layers[::2]:
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class Actor(nn.Module):  # pi(o, g) = max_u tanh(MLP(normalised [o, g])) (baselines actor_critic.py)
    def __init__(self, in_size, act_dim, hidden, max_u):
        super().__init__()
        self.net = mlp(in_size, hidden, act_dim)
        self.max_u = max_u

    def forward(self, x):
        return self.max_u * torch.tanh(self.net(x))


class QNetwork(nn.Module):  # Q(o, g, u) = MLP(normalised [o, g], u / max_u) (baselines' too)
    def __init__(self, in_size, act_dim, hidden, max_u):
        super().__init__()
        self.net = mlp(in_size + act_dim, hidden, 1)
        self.max_u = max_u

    def forward(self, x, u):
        return self.net(torch.cat([x, u / self.max_u], -1)).squeeze(-1)


def critic_target(r, next_value, done, gamma, target_range):  # baselines ddpg.py target_tf
    return torch.clamp(r + gamma * (1.0 - done) * next_value, *target_range)


class Learner:  # actor, critic, their targets, optimisers: sher.py's Learner has this interface
    def __init__(self, args, in_size, act_dim, max_u, task, device):
        self.args = args
        self.max_u = max_u
        self.target_range = task.target_range
        self.actor = Actor(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.qf = QNetwork(in_size, act_dim, args.hidden_size, max_u).to(device)
        self.target_actor = copy.deepcopy(self.actor)
        self.target_qf = copy.deepcopy(self.qf)
        self.actor_optimizer = optim.Adam(self.actor.parameters(), lr=args.policy_lr)
        self.q_optimizer = optim.Adam(self.qf.parameters(), lr=args.q_lr)

    @torch.no_grad()
    def act(self, x, explore, rng):  # baselines get_actions (Plappert et al. 2018, Sec. 3)
        u = self.actor(x).cpu().numpy()
        if explore:
            noise = self.args.noise_eps * self.max_u * rng.standard_normal(u.shape)
            u = np.clip(u + noise, -self.max_u, self.max_u)
            random_u = rng.uniform(-self.max_u, self.max_u, u.shape)
            u += rng.binomial(1, self.args.random_eps, (len(u), 1)) * (random_u - u)
        return u.astype(np.float32)

    def update(self, b):  # one DDPG step (baselines ddpg.py _grads, _update)
        with torch.no_grad():
            q_next = self.target_qf(b["x_next"], self.target_actor(b["x_next"]))
            y = critic_target(b["r"], q_next, b["done"], self.args.gamma, self.target_range)
        q = self.qf(b["x"], b["u"])
        qf_loss = F.mse_loss(q, y)
        pi = self.actor(b["x"])
        action_l2 = (pi / self.max_u).pow(2).mean()
        actor_loss = -self.qf(b["x"], pi).mean() + self.args.action_l2 * action_l2
        self.q_optimizer.zero_grad()
        qf_loss.backward()
        self.actor_optimizer.zero_grad()
        actor_loss.backward(inputs=list(self.actor.parameters()))  # the critic's: qf_loss's only
        self.q_optimizer.step()
        self.actor_optimizer.step()
        return dict(qf_loss=qf_loss.item(), actor_loss=actor_loss.item(), qf_values=q.mean().item())

    @torch.no_grad()
    def update_target(self):  # target <- polyak target + (1 - polyak) main (update_target_net)
        for net, target in ((self.actor, self.target_actor), (self.qf, self.target_qf)):
            for param, target_param in zip(net.parameters(), target.parameters()):
                target_param.mul_(self.args.polyak).add_((1.0 - self.args.polyak) * param)

    def state_dict(self):  # the networks, their targets, the optimisers (and SHER's log alpha)
        parts = (nn.Module, optim.Optimizer, torch.Tensor)
        return {name: part.state_dict() if hasattr(part, "state_dict") else part.detach().clone()
                for name, part in vars(self).items() if isinstance(part, parts)}

    def load_state_dict(self, state):
        for name, part_state in state.items():
            part = getattr(self, name)
            if isinstance(part, torch.Tensor):
                part.data.copy_(part_state)
            else:
                part.load_state_dict(part_state)


# ========================================= END LEARNER ==========================================


if __name__ == "__main__":
    args = tyro.cli(Args)
    args, checkpoint = resume_run(args) if args.resume else (args, None)
    fill_task_defaults(args)
    check_args(args)
    envs = make_goal_env(args.env_id, args.num_envs, restart_finished=False,
                         capture_video=args.capture_video, prey=args.prey, spawn=args.spawn)
    task = task_of(args, envs)
    batch_steps = args.num_envs * task.horizon  # the buffer must hold a batch of whole episodes
    refuse_broken([("buffer_size", args.buffer_size >= batch_steps, f">= --num-envs x T = {batch_steps}")], args)
    if checkpoint and checkpoint["envs"]:  # Predator-Prey goes on mid-episode; MuJoCo starts afresh
        envs = checkpoint["envs"]
    ctrl_c = []  # Ctrl-C: stop after this cycle, with a checkpoint; a second one stops at once

    def on_ctrl_c(signum, frame):
        ctrl_c.append(signum)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        print("Ctrl-C: the run stops after this cycle (Ctrl-C again: at once)", flush=True)

    signal.signal(signal.SIGINT, on_ctrl_c)
    run_dir = args.resume.rstrip("/") or f"runs/{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(run_dir, purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
    table = "\n".join(f"|{key}|{value}|" for key, value in vars(args).items())
    writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    # TRY NOT TO MODIFY: seeding
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if args.cuda else "cpu")
    rng = np.random.default_rng(args.seed)

    goal_dim = envs.single_observation_space["desired_goal"].shape[0]
    obs_dim = envs.single_observation_space["observation"].shape[0]
    obs_dim += goal_dim if task.observe_achieved_goal else 0
    act_dim = envs.single_action_space.shape[0]
    max_u = float(envs.single_action_space.high[0])
    future_p = 1.0 - 1.0 / (1.0 + args.replay_k)  # k = 4: 80% of the sampled goals are relabelled
    o_norm = Normalizer(obs_dim, args.norm_eps, args.norm_clip)
    g_norm = Normalizer(goal_dim, args.norm_eps, args.norm_clip)
    buffer = EpisodeBuffer(args.buffer_size, task.horizon, obs_dim, goal_dim, act_dim)
    learner = Learner(args, obs_dim + goal_dim, act_dim, max_u, task, device)

    loop = dict(global_step=0, epoch=0, epoch_cycles=0, train_success=[], s_test=np.nan, seconds=0)
    loop.update(checkpoint or {})  # a resumed run goes on where its checkpoint left off
    global_step = loop["global_step"]
    epoch = loop["epoch"]
    epoch_cycles = loop["epoch_cycles"]  # cycles done in the current epoch
    train_success = loop["train_success"]  # of the current epoch's training episodes
    s_test = loop["s_test"]
    start_time = time.time() - loop["seconds"]  # SPS and the ETA count the earlier parts too
    # only the first reset is seeded; the envs' generators carry on (Predator-Prey's: pickled)
    env_seed = None if checkpoint and checkpoint["envs"] else args.seed + global_step
    if checkpoint:
        learner.load_state_dict(checkpoint["learner"])
        vars(o_norm).update(checkpoint["o_norm"])
        vars(g_norm).update(checkpoint["g_norm"])
        buffer.store(checkpoint["buffer"])
        buffer.next_index = checkpoint["buffer_next_index"]
        torch.set_rng_state(checkpoint["torch_rng"])
        rng = checkpoint["rng"]

    def preprocess(o, g):  # clip raw o, g, normalise, concatenate (baselines _preprocess_og)
        o = torch.as_tensor(np.clip(o, -args.clip_obs, args.clip_obs), dtype=torch.float32)
        g = torch.as_tensor(np.clip(g, -args.clip_obs, args.clip_obs), dtype=torch.float32)
        return torch.cat([o_norm.normalize(o.to(device)), g_norm.normalize(g.to(device))], -1)

    def policy(explore):  # the actor on raw o, g
        return lambda o, g: learner.act(preprocess(o, g), explore, rng)

    def video_policy(obs):
        return policy(False)(net_observation(obs, task)[None], obs["desired_goal"][None])[0]

    started = f"resuming {run_dir} at step {global_step}" if checkpoint else f"run {run_dir}"
    print(f"{started} on {device}: {args.env_id}, budget {args.total_timesteps} env steps", flush=True)
    while global_step < args.total_timesteps:
        # ALGO LOGIC: a batch of episodes with exploration (HER Algorithm 1, lines 5-8)
        episodes = rollout(envs, policy(True), task, args.total_timesteps - global_step, env_seed)
        env_seed = None
        steps = int(episodes["length"].sum())
        global_step += steps
        train_success.extend(episodes["success"])
        writer.add_scalar("charts/episodic_return", episodes["return"].mean(), global_step)
        writer.add_scalar("charts/episodic_length", episodes["length"].mean(), global_step)

        # ALGO LOGIC: normalisers from HER samples of the new episodes (baselines store_episode)
        buffer.store(episodes)
        fresh = sample_her_transitions(episodes, steps, future_p, envs.compute_reward, task, rng)
        o_norm.update(np.clip(fresh["o"], -args.clip_obs, args.clip_obs))
        g_norm.update(np.clip(fresh["g"], -args.clip_obs, args.clip_obs))

        # ALGO LOGIC: n_batches updates on HER minibatches (HER Algorithm 1, lines 13-16)
        losses = []
        for _ in range(args.n_batches):
            tr = sample_her_transitions(buffer.episodes(), args.batch_size, future_p, envs.compute_reward, task, rng)
            batch = {key: torch.as_tensor(tr[key], device=device) for key in ("u", "r", "done")}
            batch["x"] = preprocess(tr["o"], tr["g"])
            batch["x_next"] = preprocess(tr["o_next"], tr["g_next"])
            losses.append(learner.update(batch))
        learner.update_target()  # once per cycle (baselines her.py train loop)
        for key in losses[0] if losses else []:
            writer.add_scalar(f"losses/{key}", np.mean([loss[key] for loss in losses]), global_step)

        epoch_cycles += 1
        if epoch_cycles >= args.n_cycles or global_step >= args.total_timesteps:
            # ALGO LOGIC: deterministic test episodes, on the training envs; delta_s: SHER's Table 1
            epoch += 1
            epoch_cycles = 0
            s_train = float(np.mean(train_success))
            train_success = []
            tests = [rollout(envs, policy(False), task, envs.num_envs * task.horizon) for _ in range(args.n_test_rollouts)]
            s_test = float(np.mean(np.concatenate([test["success"] for test in tests])))
            if args.capture_video:
                video_path = f"videos/{os.path.basename(run_dir)}/epoch_{epoch}.mp4"
                play_episodes(args.env_id, video_policy, 1, args.seed, video_path, prey=args.prey, spawn=args.spawn)
            elapsed = time.time() - start_time
            sps = int(global_step / elapsed)
            writer.add_scalar("charts/success_rate", s_train, global_step)
            writer.add_scalar("eval/success_rate", s_test, global_step)
            writer.add_scalar("stability/delta_s", abs(s_train - s_test), global_step)
            writer.add_scalar("charts/SPS", sps, global_step)
            writer.add_scalar("charts/epoch", epoch, global_step)
            eta = (args.total_timesteps - global_step) * elapsed / global_step / 60
            print(f"epoch {epoch:>4}  step {global_step:>9}/{args.total_timesteps}  train success {s_train:.3f}  "
                  f"test success {s_test:.3f}  time {elapsed:7.1f}s  SPS {sps:>5}  ETA {eta:.1f} min", flush=True)
        checkpoint_due = args.checkpoint_every and epoch_cycles == 0 and epoch % args.checkpoint_every == 0
        if ctrl_c or global_step >= args.total_timesteps or checkpoint_due:
            checkpoint = dict(
                script=SCRIPT, args=vars(args), learner=learner.state_dict(), buffer=buffer.episodes(),
                buffer_next_index=buffer.next_index, o_norm=vars(o_norm), g_norm=vars(g_norm), rng=rng,
                torch_rng=torch.get_rng_state(),
                envs=envs if args.env_id == "PredatorPrey-v0" else None,  # MuJoCo: subprocesses
                global_step=global_step, epoch=epoch, epoch_cycles=epoch_cycles,
                train_success=train_success, s_test=s_test, seconds=time.time() - start_time)
            torch.save(checkpoint, f"{run_dir}/checkpoint.tmp")  # then renamed: a crash keeps the last
            os.replace(f"{run_dir}/checkpoint.tmp", f"{run_dir}/checkpoint.pt")
        if ctrl_c:
            break

    saved = f"logs and checkpoint in {run_dir}"
    saved += f", videos in videos/{os.path.basename(run_dir)}" if args.capture_video else ""
    if args.save_model:
        model_path = f"{run_dir}/{args.exp_name}.cleanrl_model"
        torch.save(dict(learner.state_dict(), o_norm=vars(o_norm), g_norm=vars(g_norm), args=vars(args)), model_path)
        saved += f", model {model_path}"
    end_reason = "interrupted by Ctrl-C" if ctrl_c else "budget reached"
    print(f"{end_reason}: step {global_step}/{args.total_timesteps} after {(time.time() - start_time) / 60:.1f} min, "
          f"test success {s_test:.3f}; {saved}", flush=True)
    envs.close()
    writer.close()
    if ctrl_c:
        raise SystemExit(130)  # as a shell reports a process stopped by Ctrl-C: `run && next` stops
