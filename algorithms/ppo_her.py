# PPO with Hindsight Experience Replay on the Predator-Prey goal task.
# Paper: Crowder, Clark, Hayes, Dann, "Hindsight Experience Replay Accelerates Proximal Policy
# Optimization", arXiv 2410.22524 (called "the paper" below). Style: CleanRL's ppo_continuous_action.py.
# After every rollout each episode fragment gets k relabelled copies whose goal is a position the
# predator actually reached; their rewards come from the env's compute_reward, their log-probs and
# values are recomputed under the new goal, and PPO updates on real + relabelled data together.
# `--no-her` gives plain PPO with the same hyperparameters.
import os
import random
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.distributions.normal import Normal
from torch.utils.tensorboard import SummaryWriter

import envs as predator_prey  # noqa: F401  registers PredatorPrey-v0 (pip install -e . puts envs/ on the path)

HER_STRATEGIES = ("final", "episode", "future")


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
    save_model: bool = False
    """save the agent to runs/{run_name}/ and report its success rate over `eval_episodes`"""
    eval_episodes: int = 100
    """episodes of the deterministic (mean-action) policy evaluated after training"""

    # Environment (PredatorPrey-v0 options)
    env_id: str = "PredatorPrey-v0"
    """the id of the environment"""
    prey: str = "random"
    """prey behaviour: static, random, attract, repel, straight_away, random_direction"""
    spawn: str = "random"
    """spawn mode: random or apart"""
    num_dims: int = 3
    """dimensions of the world (2..6)"""
    grid_size: float = 10.0
    """half-width G of the box [-G, G]^D"""
    radius: float = 1.0
    """capture radius"""
    max_episode_steps: int = 20
    """steps without capture before the failure step (-1) ends the episode"""

    # Algorithm: the paper's defaults
    total_timesteps: int = 300_000
    """total env steps of the experiment"""
    stop_at_success: float = 1.1
    """end the run once the success rate of the last 100 episodes reaches this (> 1: never)"""
    learning_rate: float = 3e-4
    """the learning rate of the optimizer (Adam)"""
    num_envs: int = 1
    """the number of parallel game environments"""
    num_steps: int = 2048
    """env steps per environment per rollout (num_envs x num_steps = 2048 in the paper)"""
    anneal_lr: bool = False
    """anneal the learning rate linearly to 0 (off in the paper)"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the general advantage estimation"""
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
    """coefficient of the value function loss"""
    max_grad_norm: float = 0.5
    """the maximum norm for the gradient clipping"""
    target_kl: float = 0.05
    """stop the update epochs once the approximate KL exceeds this"""
    hidden_size: int = 512
    """width of the 3 hidden tanh layers of the actor and of the critic"""

    # Hindsight relabelling
    her: bool = True
    """relabel each episode fragment with achieved goals (False: plain PPO)"""
    her_strategy: str = "final"
    """goal of a copy: final (last achieved position), episode (any), future (after the copy's start)"""
    her_k: int = 1
    """relabelled copies per fragment"""


def check_args(args: Args) -> None:
    """One-line errors for bad flags, before anything heavy starts."""
    problems = {
        "total-timesteps must be positive": args.total_timesteps <= 0,
        "num-envs and num-steps must be positive": min(args.num_envs, args.num_steps) <= 0,
        "minibatch-size must be positive": args.minibatch_size <= 0,
        "her-k must be >= 1": args.her_k < 1,
        f"her-strategy must be one of {', '.join(HER_STRATEGIES)}": args.her_strategy not in HER_STRATEGIES,
        "eval-episodes must be >= 0": args.eval_episodes < 0,
    }
    for message, bad in problems.items():
        if bad:
            raise SystemExit(f"error: {message}")


def make_env(args: Args, num_envs: int):
    """The batched Predator-Prey vector env; finished games restart inside the step that ended them."""
    if args.env_id != "PredatorPrey-v0":
        raise SystemExit(f"error: unknown env id {args.env_id!r}; this script runs PredatorPrey-v0")
    try:
        return gym.make_vec(args.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            prey=args.prey, spawn=args.spawn, num_dims=args.num_dims, grid_size=args.grid_size,
                            radius=args.radius, max_episode_steps=args.max_episode_steps,
                            autoreset_mode="same_step")
    except ValueError as error:
        raise SystemExit(f"error: {error}")


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


class Agent(nn.Module):
    """Separate actor and critic MLPs (3 x 512 tanh) on [observation, achieved_goal, desired_goal].

    Inputs are divided by the observation space's bounds (a fixed scale, not a running normaliser,
    so that a relabelled goal is scaled exactly like a real one)."""

    def __init__(self, obs_space, action_dim, hidden):
        super().__init__()
        scale = np.concatenate([obs_space[key].high for key in ("observation", "achieved_goal", "desired_goal")])
        self.register_buffer("obs_scale", torch.tensor(scale, dtype=torch.float32))
        self.critic = mlp(len(scale), hidden, 1, out_std=1.0)
        self.actor_mean = mlp(len(scale), hidden, action_dim, out_std=0.01)
        self.actor_logstd = nn.Parameter(torch.zeros(1, action_dim))  # state-independent

    def get_value(self, x):
        return self.critic(x / self.obs_scale)

    def get_action_and_value(self, x, action=None):
        x = x / self.obs_scale
        action_mean = self.actor_mean(x)
        probs = Normal(action_mean, self.actor_logstd.expand_as(action_mean).exp())
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)


def flat_obs(obs: dict) -> np.ndarray:
    return np.concatenate([obs["observation"], obs["achieved_goal"], obs["desired_goal"]], axis=-1)


def compute_gae(rewards, values, next_values, terminals, cuts, gamma, lam):
    """GAE (Schulman et al. 2016) over 1-D sequences laid end to end: a terminal stops bootstrapping,
    a cut (end of a fragment or copy) stops the advantage sum."""
    advantages = np.zeros(len(rewards), np.float32)
    last = 0.0
    for i in reversed(range(len(rewards))):
        if cuts[i]:
            last = 0.0
        nonterminal = 1.0 - terminals[i]
        delta = rewards[i] + gamma * next_values[i] * nonterminal - values[i]
        last = delta + gamma * lam * nonterminal * last
        advantages[i] = last
    return advantages


def reward_entropy(s_ratio: float) -> float:
    """Binary reward entropy H(S) = -S log2 S - (1 - S) log2 (1 - S) (MEHER paper); 0 at S in {0, 1}."""
    return float(-sum(p * np.log2(p) for p in (s_ratio, 1.0 - s_ratio) if p > 0))


# ALGO LOGIC: hindsight relabelling of the rollout's episode fragments (the paper relabels each rollout before its
# PPO update; we have no text of it here to cite line numbers from: the steps follow DESIGN.md "PPO-HER")
def relabel(rollout: dict, strategy: str, k: int, compute_reward, rng: np.random.Generator) -> dict:
    """Relabelled copies of every episode fragment of a rollout.

    `rollout` holds flat, env-major arrays: `next_achieved_goal` (the predator position
    after the step's action), `episode_steps`, `fragment_end` (an episode ended or the rollout ran out).
    Returns `index` (which real step each relabelled step copies), `goal`, `reward`, `terminal` and
    `copy_end`; every copy ends at its first hindsight success, as the real task would end there.
    """
    fragment_end = rollout["fragment_end"]
    n = len(fragment_end)
    ends = np.flatnonzero(fragment_end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    fragment = np.repeat(np.arange(len(ends)), ends - starts + 1)
    pieces = []
    for _ in range(k):
        copy_start = starts.copy()
        if strategy == "final":
            # Deliberate difference from the released code: the goal is the position AFTER the fragment's last
            # action; the released code took the position before it (an off-by-one).
            goal_step = ends
        elif strategy == "episode":
            goal_step = rng.integers(starts, ends + 1)
        else:  # future: the copy starts at a random step and aims at a position reached at or after it
            copy_start = rng.integers(starts, ends + 1)
            goal_step = rng.integers(copy_start, ends + 1)
        goal = rollout["next_achieved_goal"][goal_step][fragment]
        reward = compute_reward(rollout["next_achieved_goal"], goal, {"episode_steps": rollout["episode_steps"]})
        in_copy = np.arange(n) >= copy_start[fragment]
        # Deliberate difference: a copy ends at its first hindsight success (reward +1, terminal).
        first_success = np.full(len(ends), n)
        success_steps = np.flatnonzero(in_copy & (reward > 0))
        np.minimum.at(first_success, fragment[success_steps], success_steps)
        copy_stop = np.minimum(first_success, ends)
        keep = in_copy & (np.arange(n) <= copy_stop[fragment])
        index = np.flatnonzero(keep)
        terminal = (reward[index] != 0)  # +1 hindsight capture or -1 failure step: both end the episode
        pieces.append(dict(index=index, goal=goal[index], reward=reward[index].astype(np.float32),
                           terminal=terminal, copy_end=index == copy_stop[fragment[index]]))
    return {key: np.concatenate([p[key] for p in pieces]) for key in pieces[0]}


def score_copies(agent, obs, actions, copies, num_dims, gamma, lam, device) -> dict:
    """Observations of the relabelled copies (desired goal replaced), their log pi(a|s,g') and V(s,g') under the
    rollout policy (no importance weights, as the authors), and GAE per copy (each ends terminal)."""
    her_obs = obs[copies["index"]].copy()
    her_obs[:, -num_dims:] = copies["goal"]
    # next state of a copy's step: the next real step under the same goal (unused where the copy ends)
    her_next_obs = obs[np.minimum(copies["index"] + 1, len(obs) - 1)].copy()
    her_next_obs[:, -num_dims:] = copies["goal"]
    her_actions = actions[copies["index"]]
    with torch.no_grad():
        _, logprobs, _, values = agent.get_action_and_value(torch.from_numpy(her_obs).to(device), her_actions)
        values = values.flatten().cpu().numpy()
        next_values = agent.get_value(torch.from_numpy(her_next_obs).to(device)).flatten().cpu().numpy()
    advantages = compute_gae(copies["reward"], values, next_values, copies["terminal"], copies["copy_end"], gamma, lam)
    return dict(obs=her_obs, actions=her_actions, logprobs=logprobs, values=values, advantages=advantages)


if __name__ == "__main__":
    args = tyro.cli(Args)
    check_args(args)
    batch_size = args.num_envs * args.num_steps
    num_iterations = -(-args.total_timesteps // batch_size)
    envs = make_env(args, args.num_envs)
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
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    her_rng = np.random.default_rng(args.seed)
    compute_reward = envs.unwrapped.compute_reward

    action_dim = envs.single_action_space.shape[0]
    agent = Agent(envs.single_observation_space, action_dim, args.hidden_size).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)  # fused: ~25% faster on CPU

    # ALGO Logic: Storage setup, (num_steps, num_envs) like CleanRL
    obs_dim = 3 * args.num_dims
    obs = np.zeros((args.num_steps, args.num_envs, obs_dim), np.float32)
    next_achieved = np.zeros((args.num_steps, args.num_envs, args.num_dims), np.float32)
    actions = torch.zeros((args.num_steps, args.num_envs, action_dim), device=device)
    logprobs = torch.zeros((args.num_steps, args.num_envs), device=device)
    values = torch.zeros((args.num_steps, args.num_envs), device=device)
    rewards = np.zeros((args.num_steps, args.num_envs), np.float32)
    dones = np.zeros((args.num_steps, args.num_envs), np.float32)
    episode_steps = np.zeros((args.num_steps, args.num_envs), np.int64)

    global_step = 0
    start_time = time.time()
    recent_success, recent_length = [], []
    next_obs_dict, _ = envs.reset(seed=args.seed)
    next_obs = flat_obs(next_obs_dict)
    success_rate = 0.0

    try:
        for iteration in range(1, num_iterations + 1):
            if args.anneal_lr:
                frac = 1.0 - (iteration - 1.0) / num_iterations
                optimizer.param_groups[0]["lr"] = frac * args.learning_rate

            rollout_start = time.time()
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs
                with torch.no_grad():
                    action, logprob, _, value = agent.get_action_and_value(torch.from_numpy(next_obs).to(device))
                values[step] = value.flatten()
                actions[step] = action
                logprobs[step] = logprob

                next_obs_dict, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
                rewards[step], dones[step] = reward, terminations
                episode_steps[step] = infos["episode_steps"]
                final_obs = infos["final_obs"] if "final_obs" in infos else next_obs_dict
                next_achieved[step] = final_obs["achieved_goal"]  # post-action position, also at episode end
                next_obs = flat_obs(next_obs_dict)
                for env_index in np.flatnonzero(terminations):
                    recent_success.append(float(infos["is_success"][env_index]))
                    recent_length.append(int(infos["episode_steps"][env_index]))
                    writer.add_scalar("charts/episodic_return", reward[env_index], global_step)
                    writer.add_scalar("charts/episodic_length", infos["episode_steps"][env_index], global_step)
            recent_success, recent_length = recent_success[-100:], recent_length[-100:]
            if recent_success:
                success_rate = float(np.mean(recent_success))
                writer.add_scalar("charts/success_rate", success_rate, global_step)

            # ALGO LOGIC: GAE of the real data, per env (flat, env-major order)
            relabel_start = time.time()
            with torch.no_grad():
                last_value = agent.get_value(torch.from_numpy(next_obs).to(device)).flatten().cpu().numpy()
            env_major = lambda x: np.swapaxes(x, 0, 1).reshape(batch_size, *x.shape[2:])  # noqa: E731
            real_values = env_major(values.cpu().numpy())
            next_values = np.roll(real_values, -1)
            rollout_end = np.zeros((args.num_envs, args.num_steps), bool)
            rollout_end[:, -1] = True
            rollout_end = rollout_end.reshape(-1)
            next_values[rollout_end] = last_value
            real_terminal = env_major(dones)
            fragment_end = rollout_end | (real_terminal > 0)
            real_advantages = compute_gae(env_major(rewards), real_values, next_values, real_terminal,
                                          fragment_end, args.gamma, args.gae_lambda)
            b_obs = env_major(obs)
            b_actions = env_major(actions)
            b_logprobs = env_major(logprobs)
            b_advantages = real_advantages
            b_returns = real_advantages + real_values
            b_values = real_values
            finished_successes = int((env_major(rewards) > 0).sum())
            finished_episodes = int(real_terminal.sum())

            # ALGO LOGIC: HER: relabel, recompute rewards, log-probs, values and GAE per copy
            if args.her:
                copies = relabel(
                    dict(next_achieved_goal=env_major(next_achieved),
                         episode_steps=env_major(episode_steps), fragment_end=fragment_end),
                    args.her_strategy, args.her_k, compute_reward, her_rng)
                her = score_copies(agent, b_obs, b_actions, copies, args.num_dims, args.gamma, args.gae_lambda, device)
                b_obs = np.concatenate([b_obs, her["obs"]])
                b_actions = torch.cat([b_actions, her["actions"]])
                b_logprobs = torch.cat([b_logprobs, her["logprobs"]])
                b_advantages = np.concatenate([b_advantages, her["advantages"]])
                b_returns = np.concatenate([b_returns, her["advantages"] + her["values"]])
                b_values = np.concatenate([b_values, her["values"]])
                finished_successes += int((copies["reward"] > 0).sum())
                finished_episodes += int(copies["terminal"].sum())
                writer.add_scalar("her/relabelled_fraction", len(copies["index"]) / len(b_obs), global_step)
            s_ratio = finished_successes / max(finished_episodes, 1)
            writer.add_scalar("her/s_ratio", s_ratio, global_step)
            writer.add_scalar("her/reward_entropy", reward_entropy(s_ratio), global_step)

            # Optimizing the policy and value network
            update_start = time.time()
            b_obs = torch.from_numpy(b_obs).to(device)
            b_advantages = torch.from_numpy(b_advantages).to(device)
            b_returns = torch.from_numpy(b_returns.astype(np.float32)).to(device)
            b_values = torch.from_numpy(b_values.astype(np.float32)).to(device)
            b_inds = np.arange(len(b_obs))
            clipfracs = []
            for epoch in range(args.update_epochs):
                np.random.shuffle(b_inds)
                for start in range(0, len(b_obs), args.minibatch_size):
                    mb_inds = b_inds[start : start + args.minibatch_size]

                    _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions[mb_inds])
                    logratio = newlogprob - b_logprobs[mb_inds]
                    ratio = logratio.exp()

                    with torch.no_grad():
                        # calculate approx_kl http://joschu.net/blog/kl-approx.html
                        old_approx_kl = (-logratio).mean()
                        approx_kl = ((ratio - 1) - logratio).mean()
                        clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                    mb_advantages = b_advantages[mb_inds]
                    if args.norm_adv and len(mb_inds) > 1:
                        mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

                    # Policy loss
                    pg_loss1 = -mb_advantages * ratio
                    pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                    pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                    # Value loss
                    newvalue = newvalue.view(-1)
                    if args.clip_vloss:
                        v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                        v_clipped = b_values[mb_inds] + torch.clamp(
                            newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef)
                        v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                        v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                    else:
                        v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                    entropy_loss = entropy.mean()
                    loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()
                    if approx_kl > args.target_kl:  # the paper's target KL: stop this update's epochs
                        break
                if approx_kl > args.target_kl:
                    break

            y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
            var_y = np.var(y_true)
            explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
            now = time.time()
            sps = int(global_step / (now - start_time))

            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
            writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
            writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
            writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
            writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
            writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
            writer.add_scalar("losses/clipfrac", np.mean(clipfracs), global_step)
            writer.add_scalar("losses/explained_variance", explained_var, global_step)
            writer.add_scalar("charts/SPS", sps, global_step)
            writer.add_scalar("time/rollout_seconds", relabel_start - rollout_start, global_step)
            writer.add_scalar("time/relabel_seconds", update_start - relabel_start, global_step)
            writer.add_scalar("time/update_seconds", now - update_start, global_step)
            eta = (args.total_timesteps - global_step) / max(sps, 1)
            print(f"step {global_step:>8}/{args.total_timesteps}  success {success_rate:.2f}  SPS {sps:>6}  "
                  f"ETA {eta / 60:5.1f} min", flush=True)
            if len(recent_success) >= 100 and success_rate >= args.stop_at_success:
                print(f"success rate {success_rate:.2f} >= {args.stop_at_success}: stopping", flush=True)
                break
    except KeyboardInterrupt:
        print(f"interrupted at step {global_step}; the TensorBoard log is kept in runs/{run_name}", flush=True)

    if args.save_model:
        model_path = f"runs/{run_name}/{args.exp_name}.cleanrl_model"
        torch.save(agent.state_dict(), model_path)
        print(f"model saved to {model_path}")
        # evaluation: the saved agent's mean action on fresh episodes
        eval_envs = make_env(args, max(args.eval_episodes, 1))
        eval_agent = Agent(eval_envs.single_observation_space, action_dim, args.hidden_size).to(device)
        eval_agent.load_state_dict(torch.load(model_path, map_location=device))
        eval_obs, _ = eval_envs.reset(seed=args.seed + 1)
        outcome = np.full(eval_envs.num_envs, np.nan)
        while np.isnan(outcome).any():
            with torch.no_grad():
                x = torch.from_numpy(flat_obs(eval_obs)).to(device) / eval_agent.obs_scale
                eval_obs, _, terminations, _, infos = eval_envs.step(eval_agent.actor_mean(x).cpu().numpy())
            first_end = terminations & np.isnan(outcome)
            outcome[first_end] = infos["is_success"][first_end]
        eval_success = float(outcome[: args.eval_episodes].mean()) if args.eval_episodes else float("nan")
        writer.add_scalar("eval/success_rate", eval_success, global_step)
        print(f"eval success rate over {args.eval_episodes} episodes: {eval_success:.3f}")
        eval_envs.close()

    envs.close()
    writer.close()
