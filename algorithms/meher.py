# docs and experiment results: docs/meher.md
# PPO-HER (Crowder et al., arXiv 2410.22524, "the PPO-HER paper"; "the released code" is its authors'):
# after each rollout every episode fragment gets k relabelled copies whose goal is a position it
# reached (HER: Andrychowicz et al. 2017), and PPO (Schulman et al. 2017) with GAE (Schulman et al.
# 2016) updates on real and relabelled data together. `--no-her`: plain PPO.
# MEHER (Crowder et al., arXiv 2410.24016, "the MEHER paper"): each fragment gets ONE copy, a
# success or a failure, and whole episodes are dropped until the batch's S-ratio (successes /
# finished episodes) is `--s-ratio`; it falls past its peak, so a run stops at 95% success.
import dataclasses
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.distributions.normal import Normal
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
    """if toggled, train on the GPU"""
    save_model: bool = False
    """save the agent to runs/{run_name}/ and evaluate it"""
    eval_episodes: int = 100
    """episodes of the mean-action policy evaluated after training"""
    capture_video: bool = False
    """evaluate after training and record the episodes to videos/{run_name}/"""
    checkpoint_every: int = 0
    """checkpoint every N iterations too (0: only at the end and on Ctrl-C)"""
    resume: str = ""
    """a run folder to continue from its checkpoint (flags not given are the run's)"""

    # Environment: PredatorPrey-v0 and its options, or a goal env such as FetchReach-v4
    env_id: str = "PredatorPrey-v0"
    """PredatorPrey-v0, or a gymnasium goal env (FetchReach-v4, FetchPush-v4, ...)"""
    prey: Literal["static", "random", "attract", "repel", "straight_away", "random_direction"] = "random"
    """prey behaviour"""
    spawn: Literal["random", "apart"] = "random"
    """spawn mode"""
    num_dims: Literal[2, 3, 4, 5, 6] = 3
    """dimensions of the world"""
    grid_size: float = 10.0
    """half-width G of the box [-G, G]^D"""
    radius: float = 1.0
    """capture radius"""
    max_episode_steps: int = 20
    """steps before the failure step (-1) ends an episode"""

    # Algorithm: the paper's defaults
    total_timesteps: int = 300_000
    """total env steps of the experiment (rounded up to whole rollouts)"""
    stop_at_success: float = 0.95
    """stop once the success rate of the last 100 episodes reaches this (> 1: never)"""
    learning_rate: float = 3e-4
    """Adam's learning rate"""
    num_envs: int = 1
    """parallel environments"""
    num_steps: int = 2048
    """env steps per environment per rollout (num_envs x num_steps = 2048 in the paper)"""
    anneal_lr: bool = False
    """anneal the learning rate linearly to 0 (off in the paper)"""
    gamma: float = 0.99
    """the discount factor"""
    gae_lambda: float = 0.95
    """GAE's lambda"""
    minibatch_size: int = 64
    """samples per gradient step (the batch grows with the relabelled copies)"""
    update_epochs: int = 10
    """epochs over the batch per update"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """clip the value loss (value clip = clip_coef)"""
    ent_coef: float = 0.0
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """clip the gradients to this norm"""
    target_kl: float = 0.05
    """stop the update epochs once the approximate KL exceeds this"""
    kl_stop_before_step: bool = False
    """check a minibatch's KL before its step, against 1.5 x target_kl (the released code)"""
    hidden_size: int = 512
    """width of the 3 hidden tanh layers of the actor and of the critic"""
    init_logstd: float = 0.0
    """initial log std of the policy (the paper's Fetch runs: log 0.6 = -0.51)"""
    weight_decay: float = 0.0
    """Adam's weight decay (the paper's Fetch runs: 1e-2 to 1e-5)"""

    # Hindsight relabelling
    her: bool = True
    """relabel each episode fragment with achieved goals (False: plain PPO)"""
    her_strategy: Literal["final", "episode", "future"] = "final"
    """goal of a copy: the last position reached, any, or one after the copy's start"""
    her_k: int = 1
    """relabelled copies per fragment"""

    # MEHER
    s_ratio: float = 0.5
    """target S-ratio D of the batch (0.5: the largest reward entropy; MEHER paper's runs: 0.6)"""
    failure: Literal["random", "targeted"] = "random"
    """failure goals: random (in the box; Fetch: another episode's goal) or targeted (near miss)"""


# how a run goes on, not what it learns: the flags a resumed run may change
RESUMABLE = ["total_timesteps", "stop_at_success", "checkpoint_every", "resume", "save_model",
             "eval_episodes", "capture_video", "cuda"]


# values that would crash the run or silently mislead it
def check_args(args: Args) -> None:
    one_rollout = args.num_envs * args.num_steps
    at_least_1 = ["num_envs", "num_steps", "eval_episodes", "minibatch_size", "update_epochs",
                  "hidden_size", "her_k"]
    positive = ["stop_at_success", "learning_rate", "clip_coef", "max_grad_norm", "target_kl"]
    not_negative = ["checkpoint_every", "ent_coef", "vf_coef", "weight_decay"]
    rules = shared_rules(args)
    rules += [(name, getattr(args, name) >= 1, ">= 1") for name in at_least_1]
    rules += [(name, getattr(args, name) > 0, "> 0") for name in positive]
    rules += [(name, getattr(args, name) >= 0, ">= 0") for name in not_negative]
    rules += [
        ("cuda", not args.cuda or torch.cuda.is_available(), "off: torch finds no CUDA device"),
        ("total_timesteps", args.total_timesteps >= one_rollout,
         f">= one rollout, --num-envs x --num-steps = {one_rollout}"),
        ("gamma", 0 < args.gamma < 1, "in (0, 1)"),
        ("gae_lambda", 0 <= args.gae_lambda <= 1, "in [0, 1]"),
        # beyond: NaN, or out of memory
        ("learning_rate", args.learning_rate <= 1, "<= 1"),
        ("weight_decay", args.weight_decay <= 1, "<= 1"),
        ("clip_coef", args.clip_coef <= 10**6, "<= 10**6"),
        ("init_logstd", abs(args.init_logstd) <= 5, "in [-5, 5]"),
        ("num_envs", one_rollout <= 2**22, "<= 2**22 / --num-steps"),
        ("her_k", args.her_k * one_rollout <= 2**24, "<= 2**24 / the rollout"),
        ("hidden_size", args.hidden_size <= 4096, "<= 4096"),
        ("minibatch_size", args.minibatch_size <= one_rollout, f"<= one rollout, {one_rollout}"),
        ("s_ratio", 0 <= args.s_ratio <= 1, "in [0, 1]"),
        ("her_k", args.her_k == 1, "1: MEHER relabels each fragment once"),
        ("her", args.her, "left out: MEHER relabels (plain PPO: ppo_her.py --no-her)"),
    ]
    refuse_broken(rules, args)


def resume_run(args: Args) -> tuple[Args, dict]:
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


def refuse_resume(reason: str) -> None:
    print(f"error: --resume: {reason}", file=sys.stderr)
    raise SystemExit(RESUME_REFUSED)


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp(in_size, hidden, out_size, out_std):
    return nn.Sequential(
        layer_init(nn.Linear(in_size, hidden)), nn.Tanh(),
        layer_init(nn.Linear(hidden, hidden)), nn.Tanh(),
        layer_init(nn.Linear(hidden, hidden)), nn.Tanh(),
        layer_init(nn.Linear(hidden, out_size), std=out_std),
    )


# inputs scaled by Predator-Prey's bounds, or (Fetch: unbounded) by the running mean and std of
# the real observations, clipped to +-5 (baselines' normaliser)
class Agent(nn.Module):
    def __init__(self, obs_space, action_dim, hidden, init_logstd=0.0):
        super().__init__()
        keys = ("observation", "achieved_goal", "desired_goal")
        high = np.concatenate([obs_space[key].high for key in keys])
        self.running_normaliser = bool(np.isinf(high).any())
        scale = np.where(np.isinf(high), 1.0, high)
        self.register_buffer("obs_shift", torch.zeros(len(high)))
        self.register_buffer("obs_scale", torch.tensor(scale, dtype=torch.float32))
        # count, sum and sum of squares of the real observations
        self.register_buffer("obs_moments", torch.zeros(3, len(high), dtype=torch.float64))
        self.critic = mlp(len(high), hidden, 1, out_std=1.0)
        self.actor_mean = mlp(len(high), hidden, action_dim, out_std=0.01)
        self.actor_logstd = nn.Parameter(torch.full((1, action_dim), init_logstd))

    def normalise(self, x):
        return ((x - self.obs_shift) / self.obs_scale).clamp(-5.0, 5.0)

    @torch.no_grad()
    def update_normaliser(self, x):
        self.obs_moments += torch.stack([torch.ones_like(x), x, x**2]).sum(1)
        count, total, squares = self.obs_moments
        self.obs_shift.copy_(total / count)
        self.obs_scale.copy_((squares / count - (total / count) ** 2).clamp(min=1e-4).sqrt())

    def get_value(self, x):
        return self.critic(self.normalise(x))

    def get_action_and_value(self, x, action=None):
        x = self.normalise(x)
        action_mean = self.actor_mean(x)
        probs = Normal(action_mean, self.actor_logstd.expand_as(action_mean).exp())
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)


def flat_obs(obs: dict) -> np.ndarray:
    parts = [obs["observation"], obs["achieved_goal"], obs["desired_goal"]]
    return np.concatenate(parts, axis=-1, dtype=np.float32)


def env_major(x: np.ndarray) -> np.ndarray:
    """(num_steps, num_envs, ...) -> (num_envs * num_steps, ...): one env's steps after another's."""
    return x.swapaxes(0, 1).reshape(-1, *x.shape[2:])


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.flatten().cpu().numpy()


# ALGO LOGIC: GAE (GAE paper, Eq. 16): A_t = sum_l (gamma lambda)^l delta_{t+l}, with
# delta_t = r_t + gamma V_{t+1} - V_t, over sequences laid end to end (real fragments or copies):
# a terminal step does not bootstrap, and the sum stops at the end of each sequence
def compute_gae(rewards, values, next_values, terminals, sequence_ends, gamma, lam):
    advantages = np.zeros(len(rewards), np.float32)
    last = 0.0
    for i in reversed(range(len(rewards))):
        if sequence_ends[i]:
            last = 0.0
        nonterminal = 1.0 - terminals[i]
        delta = rewards[i] + gamma * next_values[i] * nonterminal - values[i]
        last = delta + gamma * lam * nonterminal * last
        advantages[i] = last
    return advantages


# ALGO LOGIC: HER Algorithm 1's replay with additional goals, r' = r(s_t, a_t, g') for g' from the
# strategy S (HER Sec. 4.5: final, episode, future), applied to each rollout before its PPO update
def relabel(rollout: dict, strategy: str, k: int, compute_reward, rng, terminal_rewards) -> dict:
    fragment_end = rollout["fragment_end"]
    n = len(fragment_end)
    ends = np.flatnonzero(fragment_end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    fragment = np.repeat(np.arange(len(ends)), ends - starts + 1)
    steps = {"episode_steps": rollout["episode_steps"]}
    pieces = []
    for _ in range(k):
        copy_start = starts.copy()
        if strategy == "final":
            # Deliberate difference from the released code: the goal is the position AFTER the
            # fragment's last action; the released code took the one before it (an off-by-one).
            goal_step = ends
        elif strategy == "episode":
            goal_step = rng.integers(starts, ends + 1)
        else:  # future: the copy starts at a random step and aims at a position reached after it
            copy_start = rng.integers(starts, ends + 1)
            goal_step = rng.integers(copy_start, ends + 1)
        goal = rollout["next_achieved_goal"][goal_step][fragment]
        reward = compute_reward(rollout["next_achieved_goal"], goal, steps)
        in_copy = np.arange(n) >= copy_start[fragment]
        # Deliberate difference from the released code: a copy ends at its first terminal step,
        # such as a hindsight capture (+1), as the real task ends at a capture; the released code
        # kept the steps after it. (Fetch has no terminal rewards.)
        terminal = np.isin(reward, terminal_rewards)
        first_terminal = np.full(len(ends), n)
        terminal_steps = np.flatnonzero(in_copy & terminal)
        np.minimum.at(first_terminal, fragment[terminal_steps], terminal_steps)
        last_step = np.minimum(first_terminal, ends)
        index = np.flatnonzero(in_copy & (np.arange(n) <= last_step[fragment]))
        copy_end = index == last_step[fragment[index]]
        pieces.append(dict(index=index, goal=goal[index], reward=reward[index].astype(np.float32),
                           terminal=terminal[index], copy_end=copy_end))
    return {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}


# the copies as PPO data: log pi(a|s,g') and V(s,g') under the rollout policy, without
# importance weights (as in the PPO-HER paper), and GAE per copy
def relabelled_batch(agent, obs, next_obs, actions, copies, goal_dim, args, device) -> dict:
    copy_obs = obs[copies["index"]].copy()
    copy_obs[:, -goal_dim:] = copies["goal"]
    # a copy's next state: the real one (at a time limit, the episode's last) under the same goal
    copy_next_obs = next_obs[copies["index"]].copy()
    copy_next_obs[:, -goal_dim:] = copies["goal"]
    copy_actions = actions[copies["index"]]
    with torch.no_grad():
        x = torch.from_numpy(copy_obs).to(device)
        _, logprobs, _, values = agent.get_action_and_value(x, torch.from_numpy(copy_actions).to(device))
        values = to_numpy(values)
        next_values = to_numpy(agent.get_value(torch.from_numpy(copy_next_obs).to(device)))
    advantages = compute_gae(copies["reward"], values, next_values, copies["terminal"],
                             copies["copy_end"], args.gamma, args.gae_lambda)
    return dict(obs=copy_obs, actions=copy_actions, logprobs=logprobs.cpu().numpy(),
                advantages=advantages, returns=advantages + values, values=values)


# MEHER paper: the binary reward entropy H(S) = -S log2 S - (1 - S) log2 (1 - S), in bits
def reward_entropy(s_ratio: float) -> float:
    return float(-sum(p * np.log2(p) for p in (s_ratio, 1.0 - s_ratio) if p > 0))


def failure_goals(achieved, desired, fragment_end, method, radius, grid_size, compute_reward, rng):
    """A goal per fragment that none of its positions reaches: `random` in the box [-G, G]^D (Fetch,
    no box: another fragment's desired goal); `targeted` (the MEHER paper's near misses) 1.1 x
    radius from the fragment's final position, random after 100 tries. NaN where none is found."""
    ends = np.flatnonzero(fragment_end)
    fragment = np.repeat(np.arange(len(ends)), np.diff(ends, prepend=-1))
    goals = np.zeros((len(ends), achieved.shape[1]), np.float32)
    source = np.full(len(ends), -1)  # Fetch: the fragment whose desired goal is drawn
    on_goal = compute_reward(achieved, achieved, None)  # the reward of a reached goal
    todo = np.arange(len(ends))
    for attempt in range(1000):
        if method == "targeted" and attempt < 100:
            direction = rng.standard_normal((len(todo), goals.shape[1]))
            norm = np.linalg.norm(direction, axis=1, keepdims=True)
            goals[todo] = achieved[ends[todo]] + 1.1 * radius * direction / norm
        elif np.isfinite(grid_size):
            goals[todo] = rng.uniform(-grid_size, grid_size, (len(todo), goals.shape[1]))
        else:
            source[todo] = rng.integers(0, len(ends), len(todo))
            goals[todo] = desired[ends[source[todo]]]
        reached = compute_reward(achieved, goals[fragment], None) == on_goal
        redraw = (np.abs(goals) > grid_size).any(1) | (source == np.arange(len(ends)))
        todo = np.flatnonzero(redraw | (np.bincount(fragment[reached], minlength=len(ends)) > 0))
        if not todo.size:
            return goals
    if np.isfinite(grid_size):
        raise SystemExit("error: --grid-size too small: no failure goal exists outside a fragment")
    goals[todo] = np.nan  # no failure copy for these
    return goals


def keep_episodes(success: np.ndarray, s_ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Drops whole episodes of the over-represented class at random, the fewest that bring the
    successes within half an episode of D x episodes: the S-ratio is D within one episode."""
    successes = np.flatnonzero(success)
    failures = np.flatnonzero(~success)
    keep_s = len(successes)
    keep_f = len(failures)
    if s_ratio < 1:
        keep_s = int(min(keep_s, np.floor((0.5 + s_ratio * len(failures)) / (1 - s_ratio))))
    if s_ratio > 0:
        keep_f = int(min(keep_f, np.floor((0.5 + (1 - s_ratio) * len(successes)) / s_ratio)))
    keep = np.ones(len(success), bool)
    keep[rng.choice(successes, len(successes) - keep_s, replace=False)] = False
    keep[rng.choice(failures, len(failures) - keep_f, replace=False)] = False
    return keep


# ALGO LOGIC: MEHER's relabelling, the MEHER paper's three steps (numbered below)
def meher_relabel(rollout, s_ratio, failure, strategy, radius, grid_size, compute_reward, rng,
                  terminal_rewards):
    """One copy per fragment (relabel()'s format, in fragment order), a mask of the kept real steps,
    the outcomes (True: success) of the batch's finished episodes and the number dropped. Unfinished
    real fragments have no outcome yet: always kept, never counted."""
    fragment_end = rollout["fragment_end"]
    ends = np.flatnonzero(fragment_end)
    fragment = np.repeat(np.arange(len(ends)), np.diff(ends, prepend=-1))
    finished = (rollout["terminal"][ends] > 0) | rollout["truncated"][ends]
    achieved = rollout["next_achieved_goal"]
    success_reward = compute_reward(achieved[:1], achieved[:1], None)  # +1, or 0 in Fetch
    real_success = rollout["reward"][ends] == success_reward
    # 1. A: the success rate of the real episodes that ended in this rollout (none: A = D)
    a = float(real_success[finished].mean()) if finished.any() else s_ratio
    # 2. a success copy with probability N = clip(2D - A, 0, 1), so that (A + N) / 2 = D
    success_copy = rng.random(len(ends)) < np.clip(2 * s_ratio - a, 0.0, 1.0)
    copies = relabel(rollout, strategy, 1, compute_reward, rng, terminal_rewards)
    copies = {key: value[success_copy[fragment[copies["index"]]]] for key, value in copies.items()}
    goals = failure_goals(achieved, rollout["desired_goal"], fragment_end, failure, radius,
                          grid_size, compute_reward, rng)
    index = np.flatnonzero(~success_copy[fragment] & ~np.isnan(goals[fragment]).any(1))
    steps = {"episode_steps": rollout["episode_steps"][index]}
    reward = compute_reward(achieved[index], goals[fragment[index]], steps).astype(np.float32)
    # a failure copy gets the rewards its goal gives: -1 (terminal) only at a real time limit; at
    # a capture the real episode would have gone on under g', so the copy bootstraps from V(s', g')
    failures = dict(index=index, goal=goals[fragment[index]], reward=reward,
                    terminal=np.isin(reward, terminal_rewards), copy_end=fragment_end[index])
    order = np.argsort(np.concatenate([copies["index"], index]), kind="stable")
    copies = {key: np.concatenate([copies[key], failures[key]])[order] for key in copies}
    # 3. drop whole episodes (the real finished ones, then the copies) until the S-ratio is D
    copy_success = copies["reward"][copies["copy_end"]] == success_reward
    outcome = np.concatenate([real_success[finished], copy_success])
    keep = keep_episodes(outcome, s_ratio, rng)
    num_real = finished.sum()
    real_keep = np.ones(len(ends), bool)
    real_keep[finished] = keep[:num_real]
    copy_id = np.cumsum(copies["copy_end"]) - copies["copy_end"]
    copies = {key: value[keep[num_real:][copy_id]] for key, value in copies.items()}
    return copies, real_keep[fragment], outcome[keep], int((~keep).sum())


# ALGO LOGIC: the PPO update: clipped surrogate L^CLIP (PPO paper, Eq. 7), value loss and entropy
# bonus (Eq. 9); value clipping and per-minibatch advantage normalisation as baselines' ppo2
def ppo_update(agent, optimizer, batch: dict, args: Args, device) -> dict:
    b = {key: torch.from_numpy(value).to(device) for key, value in batch.items()}
    b_inds = np.arange(len(b["obs"]))
    clipfracs = []
    for epoch in range(args.update_epochs):
        np.random.shuffle(b_inds)
        for start in range(0, len(b_inds), args.minibatch_size):
            mb_inds = b_inds[start : start + args.minibatch_size]

            _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                b["obs"][mb_inds], b["actions"][mb_inds])
            logratio = newlogprob - b["logprobs"][mb_inds]
            ratio = logratio.exp()

            with torch.no_grad():
                # calculate approx_kl http://joschu.net/blog/kl-approx.html
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]
                kl_limit = 1.5 * args.target_kl if args.kl_stop_before_step else args.target_kl
                over_kl = approx_kl > kl_limit

            mb_advantages = b["advantages"][mb_inds]
            if args.norm_adv and len(mb_inds) > 1:
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

            # Policy loss
            pg_loss1 = -mb_advantages * ratio
            pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()

            # Value loss
            newvalue = newvalue.view(-1)
            mb_returns = b["returns"][mb_inds]
            mb_values = b["values"][mb_inds]
            if args.clip_vloss:
                v_loss_unclipped = (newvalue - mb_returns) ** 2
                v_change = torch.clamp(newvalue - mb_values, -args.clip_coef, args.clip_coef)
                v_loss_clipped = (mb_values + v_change - mb_returns) ** 2
                v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
            else:
                v_loss = 0.5 * ((newvalue - mb_returns) ** 2).mean()

            entropy_loss = entropy.mean()
            loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

            if over_kl and args.kl_stop_before_step:  # the released code's rule: no step
                break
            optimizer.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            # a ratio overflowed (an action far in the policy's tail, e.g. a relabelled one):
            # stop before inf/NaN reach the weights
            if not torch.isfinite(grad_norm):
                break
            optimizer.step()
            if over_kl:
                break
        if over_kl or not torch.isfinite(grad_norm):
            break

    var_y = np.var(batch["returns"])
    explained_var = np.nan if var_y == 0 else 1 - np.var(batch["returns"] - batch["values"]) / var_y
    return dict(value_loss=v_loss.item(), policy_loss=pg_loss.item(), entropy=entropy_loss.item(),
                old_approx_kl=old_approx_kl.item(), approx_kl=approx_kl.item(),
                clipfrac=np.mean(clipfracs), explained_variance=explained_var)


if __name__ == "__main__":
    args = tyro.cli(Args)
    checkpoint = None
    if args.resume:
        args, checkpoint = resume_run(args)
    check_args(args)
    task_options = dict(prey=args.prey, spawn=args.spawn, num_dims=args.num_dims,
                        grid_size=args.grid_size, radius=args.radius,
                        max_episode_steps=args.max_episode_steps)
    envs = make_goal_env(args.env_id, args.num_envs, capture_video=args.capture_video, **task_options)
    if checkpoint and checkpoint["envs"]:  # Predator-Prey goes on mid-episode
        envs = checkpoint["envs"]
    batch_size = args.num_envs * args.num_steps
    num_iterations = -(-args.total_timesteps // batch_size)  # whole rollouts: rounded up
    ctrl_c = []  # Ctrl-C: stop after this iteration, with a checkpoint; a second one stops at once

    def on_ctrl_c(signum, frame):
        ctrl_c.append(signum)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        print("Ctrl-C: the run stops after this iteration (Ctrl-C again: at once)", flush=True)

    signal.signal(signal.SIGINT, on_ctrl_c)
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_dir = args.resume.rstrip("/") or f"runs/{run_name}"
    writer = SummaryWriter(run_dir, purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
    table = "\n".join(f"|{key}|{value}|" for key, value in vars(args).items())
    writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if args.cuda else "cpu")
    her_rng = np.random.default_rng(args.seed)
    # MEHER's near misses: 1.1 x the capture radius (Fetch: distance_threshold) away; Fetch: no box
    goal_radius = args.radius
    goal_box = args.grid_size
    if args.env_id != "PredatorPrey-v0":
        goal_radius = gym.make(args.env_id).unwrapped.distance_threshold
        goal_box = np.inf

    obs_space = envs.single_observation_space
    action_dim = envs.single_action_space.shape[0]
    goal_dim = obs_space["desired_goal"].shape[0]
    agent = Agent(obs_space, action_dim, args.hidden_size, args.init_logstd).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5,
                           weight_decay=args.weight_decay, fused=True)  # fused: 25% faster on CPU

    # ALGO Logic: Storage setup
    obs = np.zeros((args.num_steps, args.num_envs, len(agent.obs_scale)), np.float32)
    actions = np.zeros((args.num_steps, args.num_envs, action_dim), np.float32)
    logprobs = np.zeros((args.num_steps, args.num_envs), np.float32)
    values = np.zeros((args.num_steps, args.num_envs), np.float32)
    rewards = np.zeros((args.num_steps, args.num_envs), np.float32)
    terminals = np.zeros((args.num_steps, args.num_envs), np.float32)
    truncated = np.zeros((args.num_steps, args.num_envs), bool)  # a time limit's cut (Fetch)
    episode_steps = np.zeros((args.num_steps, args.num_envs), np.int64)
    next_observations = np.zeros_like(obs)  # after each step's action, also where an episode ended

    global_step = 0
    first_iteration = 1
    start_time = time.time()
    recent_success = []  # outcomes of the last 100 real episodes
    success_rate = 0.0
    if checkpoint:
        agent.load_state_dict(checkpoint["agent"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        random.setstate(checkpoint["python_rng"])
        np.random.set_state(checkpoint["numpy_rng"])
        torch.set_rng_state(checkpoint["torch_rng"])
        her_rng = checkpoint["her_rng"]
        next_obs = checkpoint["next_obs"]
        global_step = checkpoint["global_step"]
        first_iteration = checkpoint["iteration"] + 1
        recent_success = checkpoint["recent_success"]
        success_rate = checkpoint["success_rate"]
        start_time -= checkpoint["seconds"]
    if not checkpoint or not checkpoint["envs"]:  # MuJoCo's start afresh on a resume
        next_obs = flat_obs(envs.reset(seed=args.seed + global_step)[0])
    end_reason = "budget reached"
    print(f"{'resuming' if checkpoint else 'run'} {run_dir} on {device}: {args.env_id}, "
          f"budget {args.total_timesteps} env steps = {num_iterations} rollouts", flush=True)

    for iteration in range(first_iteration, num_iterations + 1):
        iteration_start = time.time()
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            with torch.no_grad():
                x = torch.from_numpy(next_obs).to(device)
                action, logprob, _, value = agent.get_action_and_value(x)
            actions[step] = action.cpu().numpy()
            logprobs[step] = logprob.cpu().numpy()
            values[step] = to_numpy(value)

            next_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
            next_obs = flat_obs(next_obs)
            rewards[step] = reward
            terminals[step] = terminations
            truncated[step] = truncations
            episode_steps[step] = infos["episode_steps"]
            next_observations[step] = flat_obs(infos["final_obs"])
            for i in np.flatnonzero(terminations | truncations):
                recent_success.append(float(infos["is_success"][i]))
                writer.add_scalar("charts/episodic_return", infos["episode_return"][i], global_step)
                writer.add_scalar("charts/episodic_length", infos["episode_steps"][i], global_step)
        recent_success = recent_success[-100:]
        if recent_success:
            success_rate = float(np.mean(recent_success))
            writer.add_scalar("charts/success_rate", success_rate, global_step)
        rollout_seconds = time.time() - iteration_start

        # ALGO LOGIC: GAE of the real data, in flat env-major order; a fragment ends at an episode's
        # end or at the rollout's end, where it bootstraps from V of the next observation; a time
        # limit (Fetch) cuts an episode without ending it: it bootstraps from V of its last one
        real_next_obs = env_major(next_observations)
        cut = env_major(truncated)
        with torch.no_grad():
            last_value = to_numpy(agent.get_value(torch.from_numpy(next_obs).to(device)))
            cut_value = to_numpy(agent.get_value(torch.from_numpy(real_next_obs[cut]).to(device)))
        real_values = env_major(values)
        next_values = np.roll(real_values, -1)
        rollout_end = np.arange(batch_size) % args.num_steps == args.num_steps - 1
        next_values[rollout_end] = last_value
        next_values[cut] = cut_value
        real_terminal = env_major(terminals)
        real_rewards = env_major(rewards)
        fragment_end = rollout_end | (real_terminal > 0) | cut
        advantages = compute_gae(real_rewards, real_values, next_values, real_terminal,
                                 fragment_end, args.gamma, args.gae_lambda)
        batch = dict(obs=env_major(obs), actions=env_major(actions), logprobs=env_major(logprobs),
                     advantages=advantages, returns=advantages + real_values, values=real_values)

        # ALGO LOGIC: HER: relabel every fragment, score the copies, train on both
        if args.her:
            next_achieved_goal = real_next_obs[:, -2 * goal_dim : -goal_dim]
            rollout = dict(next_achieved_goal=next_achieved_goal, fragment_end=fragment_end,
                           episode_steps=env_major(episode_steps), reward=real_rewards,
                           terminal=real_terminal)
            rollout.update(truncated=cut, desired_goal=batch["obs"][:, -goal_dim:])
            copies, real_kept, outcomes, episodes_dropped = meher_relabel(
                rollout, args.s_ratio, args.failure, args.her_strategy, goal_radius, goal_box,
                envs.compute_reward, her_rng, envs.terminal_rewards)
            relabelled = relabelled_batch(agent, batch["obs"], real_next_obs, batch["actions"],
                                          copies, goal_dim, args, device)
            batch = {key: value[real_kept] for key, value in batch.items()}  # MEHER's drops
            batch = {key: np.concatenate([batch[key], relabelled[key]]) for key in batch}
            relabelled_fraction = len(copies["index"]) / len(batch["obs"])
            writer.add_scalar("her/relabelled_fraction", relabelled_fraction, global_step)
            s_ratio = float(outcomes.mean()) if len(outcomes) else 0.0  # the batch's S-ratio
            writer.add_scalar("her/s_ratio_target", args.s_ratio, global_step)
            writer.add_scalar("her/s_ratio", s_ratio, global_step)
            writer.add_scalar("her/reward_entropy", reward_entropy(s_ratio), global_step)
            writer.add_scalar("her/episodes_dropped", episodes_dropped, global_step)
            writer.add_scalar("her/finished_episodes", len(outcomes), global_step)

        losses = ppo_update(agent, optimizer, batch, args, device)
        # ALGO LOGIC: Fetch's normaliser moves only now: the rollout, the copies' scores and the
        # update saw the same one, so the PPO ratio's old log-probs hold
        if agent.running_normaliser:
            real_obs = torch.tensor(obs.reshape(batch_size, -1), dtype=torch.float64)
            agent.update_normaliser(real_obs.to(device))
        sps = int(global_step / (time.time() - start_time))
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        for name, value in losses.items():
            writer.add_scalar(f"losses/{name}", value, global_step)
        writer.add_scalar("charts/SPS", sps, global_step)
        # The time left lies between the rollouts alone (updates that the KL check stops at once)
        # and whole iterations like this one (updates that run all their epochs)
        iterations_left = num_iterations - iteration
        eta_low = iterations_left * rollout_seconds / 60
        eta_high = iterations_left * (time.time() - iteration_start) / 60
        print(f"step {global_step:>8}/{args.total_timesteps}  success {success_rate:.2f}  "
              f"SPS {sps:>6}  ETA {eta_low:.1f}-{eta_high:.1f} min", flush=True)
        if len(recent_success) >= 100 and success_rate >= args.stop_at_success:
            end_reason = f"success rate {success_rate:.2f} >= --stop-at-success"
        if ctrl_c:
            end_reason = "interrupted by Ctrl-C"
        stopping = end_reason != "budget reached" or iteration == num_iterations
        if stopping or (args.checkpoint_every and iteration % args.checkpoint_every == 0):
            checkpoint = dict(
                script=SCRIPT, args=vars(args), agent=agent.state_dict(),
                optimizer=optimizer.state_dict(), python_rng=random.getstate(),
                numpy_rng=np.random.get_state(), torch_rng=torch.get_rng_state(), her_rng=her_rng,
                envs=envs if args.env_id == "PredatorPrey-v0" else None,  # MuJoCo's do not pickle
                next_obs=next_obs, global_step=global_step, iteration=iteration,
                recent_success=recent_success, success_rate=success_rate,
                seconds=time.time() - start_time)
            # beside, then renamed: a crash while writing keeps the last one
            torch.save(checkpoint, f"{run_dir}/checkpoint.tmp")
            os.replace(f"{run_dir}/checkpoint.tmp", f"{run_dir}/checkpoint.pt")
        if stopping:
            break

    saved = f"logs and checkpoint in {run_dir}"
    if args.save_model:
        torch.save(agent.state_dict(), f"{run_dir}/{args.exp_name}.cleanrl_model")
        saved += f", model {run_dir}/{args.exp_name}.cleanrl_model"
    if args.save_model or args.capture_video:
        video_path = f"videos/{os.path.basename(run_dir)}/eval-step{global_step}.mp4" if args.capture_video else ""
        saved += f", video {video_path}" if video_path else ""

        @torch.no_grad()
        def mean_action(obs: dict) -> np.ndarray:
            x = agent.normalise(torch.from_numpy(flat_obs(obs)).to(device))
            return agent.actor_mean(x).cpu().numpy()

        successes = play_episodes(args.env_id, mean_action, args.eval_episodes, args.seed + 1,
                                  video_path, **task_options)
        writer.add_scalar("eval/success_rate", successes.mean(), global_step)
        print(f"eval success rate over {args.eval_episodes} episodes: {successes.mean():.3f}")
    minutes = (time.time() - start_time) / 60
    print(f"{end_reason}: step {global_step}/{args.total_timesteps} after {minutes:.1f} min, "
          f"success rate {success_rate:.2f}; {saved}", flush=True)
    envs.close()
    writer.close()
    if ctrl_c:
        raise SystemExit(130)  # as a shell reports Ctrl-C, so that `run && next` stops here
