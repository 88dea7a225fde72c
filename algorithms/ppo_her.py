# docs and experiment results: docs/ppo_her.md
# PPO-HER: PPO with Hindsight Experience Replay on the Predator-Prey goal task or a Fetch task, in CleanRL's style.
# After each rollout every episode fragment gets k relabelled copies whose goal is a position it reached; PPO then
# updates on real and relabelled data together. `--no-her` gives plain PPO with the same hyperparameters.
# Papers: Crowder, Clark, Hayes, Dann, "Hindsight Experience Replay Accelerates Proximal Policy Optimization",
# arXiv 2410.22524 (the PPO-HER paper; "the released code" is its authors'); Andrychowicz et al., "Hindsight
# Experience Replay", NeurIPS 2017 (HER); Schulman et al., "Proximal Policy Optimization Algorithms", 2017 (PPO);
# Schulman et al., "High-Dimensional Continuous Control Using Generalized Advantage Estimation", 2016 (GAE).
import contextlib
import io
import os
import random
import signal
import time
from dataclasses import dataclass

import gymnasium as gym
import imageio
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.distributions.normal import Normal
from torch.utils.tensorboard import SummaryWriter

import envs as predator_prey  # registers PredatorPrey-v0 (pip install -e . puts envs/ on the path)

with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about the Adroit envs on stderr
    import gymnasium_robotics
gym.register_envs(gymnasium_robotics)  # the Fetch tasks: FetchReach-v4, FetchPush-v4, FetchSlide-v4, ...

HER_STRATEGIES = ("final", "episode", "future")
PREDATOR_PREY_OPTIONS = ("prey", "spawn", "num_dims", "grid_size", "radius", "max_episode_steps")
RESUMABLE = ("total_timesteps", "stop_at_success", "checkpoint_every", "resume", "save_model", "eval_episodes",
             "capture_video", "cuda")  # the flags that may differ when a run is resumed


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = False
    """if toggled, train on the GPU (an error where CUDA is not available)"""
    save_model: bool = False
    """save the agent to runs/{run_name}/ and report its success rate over `eval_episodes`"""
    eval_episodes: int = 100
    """episodes of the deterministic (mean-action) policy evaluated after training"""
    capture_video: bool = False
    """evaluate after training and record the evaluation episodes to videos/{run_name}/ as MP4"""
    checkpoint_every: int = 0
    """also write runs/{run_name}/checkpoint.pt every this many iterations (0: only at the end and on Ctrl-C)"""
    resume: str = ""
    """a run folder (runs/{run_name}) to continue from its checkpoint.pt, with the run's own flags"""

    # Environment: PredatorPrey-v0 and its options, or a goal env such as FetchReach-v4 (no options)
    env_id: str = "PredatorPrey-v0"
    """PredatorPrey-v0, or a gymnasium goal env with a vectorised compute_reward (FetchReach-v4, FetchPush-v4, ...)"""
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
    kl_stop_before_step: bool = False
    """check a minibatch's KL before its step, against 1.5 x target_kl, and skip it (stable-baselines3's rule)"""
    hidden_size: int = 512
    """width of the 3 hidden tanh layers of the actor and of the critic"""
    init_logstd: float = 0.0
    """initial log standard deviation of the Gaussian policy (the PPO-HER paper's Fetch runs: log 0.6 = -0.51)"""
    weight_decay: float = 0.0
    """Adam's weight decay, an L2 penalty on the weights (the PPO-HER paper's Fetch runs: 1e-2 to 1e-5)"""

    # Hindsight relabelling
    her: bool = True
    """relabel each episode fragment with achieved goals (False: plain PPO)"""
    her_strategy: str = "final"
    """goal of a copy: final (last achieved position), episode (any), future (after the copy's start)"""
    her_k: int = 1
    """relabelled copies per fragment"""


def parse_args() -> Args:
    """tyro.cli(Args), with tyro's parse errors cut to one line (`--help` still prints the full help)."""
    tyro_errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(tyro_errors):
            return tyro.cli(Args)
    except SystemExit as exit:
        if exit.code == 0:
            raise
        box = " ".join(line.strip("│ ") for line in tyro_errors.getvalue().splitlines()[1:]).split("─")[0]
        raise SystemExit(f"error: {' '.join(box.split()).removeprefix('Error ')}; see --help")


def check_args(args: Args) -> dict:
    """One-line errors naming the flag and its valid range, before anything heavy starts. Returns the checkpoint of
    the run to resume, or None."""
    ranges = [
        (">= 1", lambda value: value >= 1, ["total_timesteps", "num_envs", "num_steps", "minibatch_size",
                                            "update_epochs", "hidden_size", "her_k"]),
        (">= 0", lambda value: value >= 0, ["eval_episodes", "checkpoint_every", "ent_coef", "vf_coef",
                                            "weight_decay"]),
        ("> 0", lambda value: value > 0, ["learning_rate", "clip_coef", "max_grad_norm", "target_kl"]),
        ("in [0, 1]", lambda value: 0 <= value <= 1, ["gamma", "gae_lambda"]),
    ]
    for valid_range, is_valid, names in ranges:
        for name in names:
            if not is_valid(getattr(args, name)):
                raise SystemExit(f"error: --{name.replace('_', '-')} must be {valid_range}, got {getattr(args, name)}")
    predator_prey_flags = [f"--{name.replace('_', '-')}" for name in PREDATOR_PREY_OPTIONS
                           if args.env_id != "PredatorPrey-v0" and getattr(args, name) != getattr(Args, name)]
    problems = {
        "--seed must be in [0, 2**32)": not 0 <= args.seed < 2**32,
        f"--exp-name must be a plain name (no '/'), got {args.exp_name!r}": "/" in args.exp_name or not args.exp_name,
        "--cuda: no CUDA device is available": args.cuda and not torch.cuda.is_available(),
        f"--her-strategy must be one of {', '.join(HER_STRATEGIES)}": args.her_strategy not in HER_STRATEGIES,
        f"{', '.join(predator_prey_flags)}: only for PredatorPrey-v0, not --env-id {args.env_id}": predator_prey_flags,
    }
    for message, bad in problems.items():
        if bad:
            raise SystemExit(f"error: {message}")
    env = make_env(args, 0, render_mode="rgb_array" if args.capture_video else None)  # the env checks its options
    space, rewards = env.observation_space, None
    if not isinstance(space, gym.spaces.Dict) or {"observation", "achieved_goal", "desired_goal"} - set(space):
        raise SystemExit(f"error: --env-id {args.env_id} is not a goal env (observation, achieved_goal, desired_goal)")
    with contextlib.suppress(Exception):  # relabelling scores a whole rollout in one call
        goals = np.zeros((2, *space["desired_goal"].shape))
        rewards = env.unwrapped.compute_reward(goals, goals, None)
    if np.shape(rewards) != (2,):
        raise SystemExit(f"error: --env-id {args.env_id}: its compute_reward is not vectorised (one reward per goal)")
    if args.capture_video:  # MuJoCo draws offscreen only with MUJOCO_GL=egl or osmesa
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # GLFW warns there when it cannot
                env.reset(seed=args.seed)
                env.render()
        except Exception:
            raise SystemExit(f"error: --capture-video: {args.env_id} cannot draw here (set MUJOCO_GL=egl or osmesa)")
    env.close()
    return load_checkpoint(args) if args.resume else None


def make_env(args: Args, num_envs: int, render_mode=None):
    """`num_envs` envs stepped together, finished episodes restarting inside the step that ended them: the batched
    Predator-Prey vector env, or gymnasium's vector env of a goal env (MuJoCo in subprocesses where num_envs > 1;
    GoalVectorEnv restarts its episodes); num_envs = 0: one plain env. Besides the envs, Predator-Prey and Fetch
    differ only in the rewards that end an episode (terminal_rewards) and in the inputs' normaliser (Agent)."""
    options = dict(prey=args.prey, spawn=args.spawn, num_dims=args.num_dims, grid_size=args.grid_size,
                   radius=args.radius, max_episode_steps=args.max_episode_steps, render_mode=render_mode)
    try:
        if args.env_id != "PredatorPrey-v0" and num_envs == 0:
            return gym.make(args.env_id, render_mode=render_mode)  # Fetch: cut at 50 steps by a TimeLimit
        if args.env_id != "PredatorPrey-v0":
            return GoalVectorEnv(gym.make_vec(args.env_id, num_envs, "async" if num_envs > 1 else "sync",
                                              vector_kwargs=dict(autoreset_mode=gym.vector.AutoresetMode.DISABLED)))
        if num_envs == 0:
            return predator_prey.PredatorPreyEnv(**options)  # gym.make's would add a TimeLimit
        return gym.make_vec(args.env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            autoreset_mode="same_step", **options)
    except (gym.error.Error, ImportError, TypeError) as error:  # an unknown env id, or one without render_mode
        raise SystemExit(f"error: --env-id {args.env_id}: {error}")
    except ValueError as error:
        raise SystemExit(f"error: {error}")


class GoalVectorEnv(gym.vector.VectorWrapper):
    """gymnasium's vector env (no autoreset) stepped like Predator-Prey's: an episode that ends restarts inside the
    same step, its last observation in `final_obs`; `episode_steps` and `episode_return` describe each episode."""

    episode_steps, episode_return = 0, 0.0

    def step(self, actions):
        final_obs, reward, terminations, truncations, infos = self.env.step(actions)
        done, steps, returns = terminations | truncations, self.episode_steps + 1, self.episode_return + reward
        obs = self.env.reset(options=dict(reset_mask=done))[0] if done.any() else final_obs
        self.episode_steps, self.episode_return = np.where(done, 0, steps), np.where(done, 0.0, returns)
        return obs, reward, terminations, truncations, dict(infos, final_obs=final_obs, episode_steps=steps,
                                                            episode_return=returns)


def load_checkpoint(args: Args) -> dict:
    """The checkpoint in the --resume folder; refused in one line if the file is missing, truncated or corrupt, or
    was written by another script or with other flags (only those in RESUMABLE may change)."""
    path = os.path.join(args.resume, "checkpoint.pt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # a file this script wrote: trusted
    except Exception as error:
        raise SystemExit(f"error: --resume: cannot read {path} ({type(error).__name__}): missing, truncated or corrupt")
    if not isinstance(checkpoint, dict) or checkpoint.get("script") != os.path.basename(__file__):
        raise SystemExit(f"error: --resume: {path} is not a checkpoint of {os.path.basename(__file__)}")
    for name, value in checkpoint["args"].items():
        if name not in RESUMABLE and getattr(args, name, None) != value:
            raise SystemExit(f"error: --resume: the run used --{name.replace('_', '-')} {value!r}, not "
                             f"{getattr(args, name, None)!r}; resume with the run's own flags")
    return checkpoint


def save_checkpoint(path: str, checkpoint: dict) -> None:
    """Write the checkpoint atomically: into a temporary file in the same folder, synced to disk, then renamed over
    the previous one, so that a crash while writing leaves the previous checkpoint intact."""
    with open(f"{path}.tmp", "wb") as file:
        torch.save(checkpoint, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(f"{path}.tmp", path)


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
    """Separate actor and critic MLPs (3 x 512 tanh) on [observation, achieved_goal, desired_goal], shifted and
    scaled: Predator-Prey's inputs by their bounds, for good; unbounded ones (Fetch) by the running mean and standard
    deviation of the real observations, moved only between iterations and clipped to +-5 (baselines' normaliser)."""

    def __init__(self, obs_space, action_dim, hidden, init_logstd=0.0):
        super().__init__()
        high = np.concatenate([obs_space[key].high for key in ("observation", "achieved_goal", "desired_goal")])
        self.running_normaliser = bool(np.isinf(high).any())
        self.register_buffer("obs_shift", torch.zeros(len(high)))
        self.register_buffer("obs_scale", torch.tensor(np.where(np.isinf(high), 1.0, high), dtype=torch.float32))
        self.register_buffer("obs_moments", torch.zeros(3, len(high), dtype=torch.float64))  # count, sum, sum of x^2
        self.critic = mlp(len(high), hidden, 1, out_std=1.0)
        self.actor_mean = mlp(len(high), hidden, action_dim, out_std=0.01)
        self.actor_logstd = nn.Parameter(torch.full((1, action_dim), init_logstd))  # state-independent

    def normalise(self, x):
        return ((x - self.obs_shift) / self.obs_scale).clamp(-5.0, 5.0)

    @torch.no_grad()
    def update_normaliser(self, x):  # shift, scale = mean, standard deviation (>= 0.01) of all real observations
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
    return np.concatenate([obs["observation"], obs["achieved_goal"], obs["desired_goal"]], axis=-1, dtype=np.float32)


def env_major(x: np.ndarray) -> np.ndarray:
    """(num_steps, num_envs, ...) -> (num_envs * num_steps, ...): each env's steps in order, one env after another."""
    return x.swapaxes(0, 1).reshape(-1, *x.shape[2:])


# ALGO LOGIC: GAE (GAE paper, Eq. 16): A_t = sum_l (gamma lambda)^l delta_{t+l}, delta_t = r_t + gamma V_{t+1} - V_t
def compute_gae(rewards, values, next_values, terminals, sequence_ends, gamma, lam):
    """GAE over sequences laid end to end (real fragments or relabelled copies): a terminal step does not bootstrap
    from V(s_{t+1}), and the sum stops at the last step of each sequence."""
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


# ALGO LOGIC: HER Algorithm 1's replay with additional goals, r' = r(s_t, a_t, g') for g' from the strategy S (HER
# Sec. 4.5: final, episode, future), applied to each rollout before its PPO update, as the PPO-HER paper does
def relabel(rollout: dict, strategy: str, k: int, compute_reward, rng: np.random.Generator, terminal_rewards) -> dict:
    """k relabelled copies of every episode fragment of a rollout.

    `rollout` holds flat, env-major arrays; this reads `next_achieved_goal` (the predator position after the
    step's action), `episode_steps` and `fragment_end` (an episode ended there or the rollout ran out). Returns, per
    copied step, `index` (the real step it copies), `goal`, `reward`, `terminal` and `copy_end` (a copy's last step)."""
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
        # Deliberate difference from the released code: a copy ends at its first terminal step, such as a hindsight
        # capture (+1), as the real task ends at a capture; the released code kept the steps after it. (Fetch has
        # no terminal rewards: a copy runs to its fragment's end.)
        terminal = np.isin(reward, terminal_rewards)
        first_terminal = np.full(len(ends), n)
        terminal_steps = np.flatnonzero(in_copy & terminal)
        np.minimum.at(first_terminal, fragment[terminal_steps], terminal_steps)
        last_step = np.minimum(first_terminal, ends)
        index = np.flatnonzero(in_copy & (np.arange(n) <= last_step[fragment]))
        pieces.append(dict(index=index, goal=goal[index], reward=reward[index].astype(np.float32),
                           terminal=terminal[index], copy_end=index == last_step[fragment[index]]))
    return {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}


def relabelled_batch(agent, obs, next_obs, actions, copies, goal_dim, gamma, lam, device) -> dict:
    """The relabelled copies as PPO training data: observations with g' as desired goal, log pi(a|s,g') and V(s,g')
    recomputed under the rollout policy (no importance weights, as in the PPO-HER paper) and GAE per copy."""
    copy_obs = obs[copies["index"]].copy()
    copy_obs[:, -goal_dim:] = copies["goal"]
    # next state of a copy's step: the real one after it (at a time limit the episode's last) under the same goal
    copy_next_obs = next_obs[copies["index"]].copy()
    copy_next_obs[:, -goal_dim:] = copies["goal"]
    copy_actions = actions[copies["index"]]
    with torch.no_grad():
        _, logprobs, _, values = agent.get_action_and_value(torch.from_numpy(copy_obs).to(device),
                                                            torch.from_numpy(copy_actions).to(device))
        values = values.flatten().cpu().numpy()
        next_values = agent.get_value(torch.from_numpy(copy_next_obs).to(device)).flatten().cpu().numpy()
    advantages = compute_gae(copies["reward"], values, next_values, copies["terminal"], copies["copy_end"], gamma, lam)
    return dict(obs=copy_obs, actions=copy_actions, logprobs=logprobs.cpu().numpy(), advantages=advantages,
                returns=advantages + values, values=values)


# ALGO LOGIC: the PPO update: clipped surrogate L^CLIP (PPO paper, Eq. 7), value loss and entropy bonus (Eq. 9);
# value clipping and per-minibatch advantage normalisation as in OpenAI baselines' ppo2 and CleanRL
def ppo_update(agent, optimizer, batch: dict, args: Args, device) -> dict:
    """`update_epochs` epochs of minibatch steps over the batch, stopped once the approximate KL exceeds target_kl
    (the PPO-HER paper's target KL) or a gradient is not finite. Returns the losses/* scalars of the last minibatch."""
    b_obs, b_actions, b_logprobs, b_advantages, b_returns, b_values = (torch.from_numpy(batch[key]).to(device) for key
                                                                       in ("obs", "actions", "logprobs", "advantages",
                                                                           "returns", "values"))
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
                over_kl = approx_kl > (1.5 * args.target_kl if args.kl_stop_before_step else args.target_kl)

            mb_advantages = b_advantages[mb_inds]
            if args.norm_adv and len(mb_inds) > 1:
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)

            # Policy loss: -L^CLIP, with r = pi / pi_old = ratio
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

            if over_kl and args.kl_stop_before_step:  # the released code's rule: this minibatch takes no step
                break
            optimizer.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            if not torch.isfinite(grad_norm):  # a ratio overflowed (an action far in the policy's tail, e.g. a
                break                          # relabelled one): stop the update before inf/NaN reach the weights
            optimizer.step()
            if over_kl:
                break
        if over_kl or not torch.isfinite(grad_norm):
            break

    var_y = np.var(batch["returns"])
    explained_var = np.nan if var_y == 0 else 1 - np.var(batch["returns"] - batch["values"]) / var_y
    return dict(value_loss=v_loss.item(), policy_loss=pg_loss.item(), entropy=entropy_loss.item(),
                old_approx_kl=old_approx_kl.item(), approx_kl=approx_kl.item(), clipfrac=np.mean(clipfracs),
                explained_variance=explained_var)


def evaluate(agent, args: Args, device, video_path: str = "") -> float:
    """Success rate of the mean-action policy (no sampling) over `eval_episodes` fresh episodes, played one after
    another in one game seeded with seed + 1; with a video_path, they are also drawn and written there as MP4."""
    env = make_env(args, 0, render_mode="rgb_array" if video_path else None)
    if video_path:
        os.makedirs(os.path.dirname(video_path), exist_ok=True)
        video = imageio.get_writer(video_path, fps=env.metadata["render_fps"])
    obs, _ = env.reset(seed=args.seed + 1)
    successes = []
    while len(successes) < args.eval_episodes:
        if video_path:
            video.append_data(env.render())
        with torch.no_grad():
            x = agent.normalise(torch.from_numpy(flat_obs(obs)).to(device))
            obs, _, terminated, truncated, info = env.step(agent.actor_mean(x).cpu().numpy())
        if terminated or truncated:
            if video_path:
                video.append_data(env.render())  # the episode's last picture, before the next one starts
            successes.append(info["is_success"])
            obs, _ = env.reset()
    if video_path:
        video.close()
    return float(np.mean(successes)) if successes else float("nan")


if __name__ == "__main__":
    args = parse_args()
    checkpoint = check_args(args)
    batch_size = args.num_envs * args.num_steps
    num_iterations = -(-args.total_timesteps // batch_size)  # whole rollouts: the budget is rounded up
    ctrl_c = []  # Ctrl-C ends the run after the current iteration, with a checkpoint (also in MuJoCo's subprocesses)
    signal.signal(signal.SIGINT, lambda signum, frame: ctrl_c.append(signum))
    envs = checkpoint["envs"] if checkpoint and checkpoint["envs"] else make_env(args, args.num_envs)
    run_dir = args.resume.rstrip("/") or f"runs/{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    run_name = os.path.basename(run_dir)
    writer = SummaryWriter(run_dir, purge_step=checkpoint["global_step"] + 1 if checkpoint else None)
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
    )

    # TRY NOT TO MODIFY: seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if args.cuda else "cpu")
    her_rng = np.random.default_rng(args.seed)
    compute_reward = make_env(args, 0).unwrapped.compute_reward
    terminal_rewards = (1.0, -1.0) if args.env_id == "PredatorPrey-v0" else ()  # capture, failure step; Fetch: none

    action_dim, goal_dim = envs.single_action_space.shape[0], envs.single_observation_space["desired_goal"].shape[0]
    agent = Agent(envs.single_observation_space, action_dim, args.hidden_size, args.init_logstd).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, weight_decay=args.weight_decay,
                           fused=True)  # fused: ~25% faster on CPU

    # ALGO Logic: Storage setup, (num_steps, num_envs) like CleanRL
    obs = np.zeros((args.num_steps, args.num_envs, len(agent.obs_scale)), np.float32)
    actions = np.zeros((args.num_steps, args.num_envs, action_dim), np.float32)
    logprobs = np.zeros((args.num_steps, args.num_envs), np.float32)
    values = np.zeros((args.num_steps, args.num_envs), np.float32)
    rewards = np.zeros((args.num_steps, args.num_envs), np.float32)
    terminals = np.zeros((args.num_steps, args.num_envs), np.float32)
    truncated = np.zeros((args.num_steps, args.num_envs), bool)  # a time limit cut the episode there (Fetch)
    episode_steps = np.zeros((args.num_steps, args.num_envs), np.int64)
    next_observations = np.zeros_like(obs)  # after each step's action, also where the episode ended

    global_step, done_iterations = 0, 0
    start_time = time.time()
    recent_success = []  # outcomes of the last 100 real episodes
    success_rate = 0.0
    if checkpoint:  # continue exactly where the checkpoint was written
        agent.load_state_dict({**agent.state_dict(), **checkpoint["agent"]})  # older ones lack the normaliser
        optimizer.load_state_dict(checkpoint["optimizer"])
        random.setstate(checkpoint["python_rng"])
        np.random.set_state(checkpoint["numpy_rng"])
        torch.set_rng_state(checkpoint["torch_rng"])
        her_rng, next_obs = checkpoint["her_rng"], checkpoint["next_obs"]
        global_step, done_iterations = checkpoint["global_step"], checkpoint["iteration"]
        recent_success, success_rate = checkpoint["recent_success"], checkpoint["success_rate"]
        start_time -= checkpoint["seconds"]
    if not checkpoint or not checkpoint["envs"]:  # a new run, or MuJoCo envs, which start afresh on a resume
        next_obs = flat_obs(envs.reset(seed=args.seed + global_step)[0])
    iteration_ends = [time.time()]  # of the last few iterations, for the ETA
    end_reason = ""
    task = f"{args.env_id} ({args.prey} prey, {args.spawn} spawn)" if args.env_id == "PredatorPrey-v0" else args.env_id
    print(f"{'resuming' if checkpoint else 'run'} {run_dir} on {device}: {task}, budget {args.total_timesteps} env "
          f"steps = {num_iterations} rollouts of {batch_size}", flush=True)

    for iteration in range(done_iterations + 1, num_iterations + 1):
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(torch.from_numpy(next_obs).to(device))
            actions[step] = action.cpu().numpy()
            logprobs[step] = logprob.cpu().numpy()
            values[step] = value.flatten().cpu().numpy()

            next_obs_dict, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
            rewards[step], terminals[step], truncated[step] = reward, terminations, truncations
            episode_steps[step] = infos["episode_steps"]
            final_obs = infos["final_obs"] if "final_obs" in infos else next_obs_dict
            next_observations[step] = flat_obs(final_obs)  # its achieved goal: the post-action position
            next_obs = flat_obs(next_obs_dict)
            for env_index in np.flatnonzero(terminations | truncations):
                recent_success.append(float(infos["is_success"][env_index]))
                returns = infos.get("episode_return", reward)  # Predator-Prey's: the last reward, +1 or -1
                writer.add_scalar("charts/episodic_return", returns[env_index], global_step)
                writer.add_scalar("charts/episodic_length", infos["episode_steps"][env_index], global_step)
        recent_success = recent_success[-100:]
        if recent_success:
            success_rate = float(np.mean(recent_success))
            writer.add_scalar("charts/success_rate", success_rate, global_step)

        # ALGO LOGIC: GAE of the real data, per env in flat env-major order; a fragment ends at an episode's end or at
        # the rollout's end, where it bootstraps from V of the next observation; a time limit (Fetch) cuts an episode
        # without ending it: there it bootstraps from V of the episode's last observation
        real_next_obs, cut = env_major(next_observations), env_major(truncated)
        with torch.no_grad():
            last_value = agent.get_value(torch.from_numpy(next_obs).to(device)).flatten().cpu().numpy()
            cut_value = agent.get_value(torch.from_numpy(real_next_obs[cut]).to(device)).flatten().cpu().numpy()
        real_values = env_major(values)
        next_values = np.roll(real_values, -1)
        rollout_end = np.arange(batch_size) % args.num_steps == args.num_steps - 1
        next_values[rollout_end], next_values[cut] = last_value, cut_value
        real_terminal = env_major(terminals)
        fragment_end = rollout_end | (real_terminal > 0) | cut
        real_advantages = compute_gae(env_major(rewards), real_values, next_values, real_terminal, fragment_end,
                                      args.gamma, args.gae_lambda)
        batch = dict(obs=env_major(obs), actions=env_major(actions), logprobs=env_major(logprobs),
                     advantages=real_advantages, returns=real_advantages + real_values, values=real_values)

        # ALGO LOGIC: HER: relabel every fragment, score the copies under the rollout policy, train on both
        if args.her:
            rollout = dict(next_achieved_goal=real_next_obs[:, -2 * goal_dim : -goal_dim], fragment_end=fragment_end,
                           episode_steps=env_major(episode_steps), reward=env_major(rewards), terminal=real_terminal)
            copies = relabel(rollout, args.her_strategy, args.her_k, compute_reward, her_rng, terminal_rewards)
            relabelled = relabelled_batch(agent, batch["obs"], real_next_obs, batch["actions"], copies, goal_dim,
                                          args.gamma, args.gae_lambda, device)
            batch = {key: np.concatenate([batch[key], relabelled[key]]) for key in batch}
            writer.add_scalar("her/relabelled_fraction", len(copies["index"]) / len(batch["obs"]), global_step)

        losses = ppo_update(agent, optimizer, batch, args, device)
        # ALGO LOGIC: Fetch's normaliser moves only now: the rollout's log-probs, the copies' scores and the update all
        # saw the same one, so a relabelled goal is normalised as a real one and the PPO ratio's old log-probs hold
        if agent.running_normaliser:
            agent.update_normaliser(torch.tensor(obs.reshape(batch_size, -1), dtype=torch.float64, device=device))
        sps = int(global_step / (time.time() - start_time))
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        for name, value in losses.items():
            writer.add_scalar(f"losses/{name}", value, global_step)
        writer.add_scalar("charts/SPS", sps, global_step)
        iteration_ends = (iteration_ends + [time.time()])[-6:]
        eta = (num_iterations - iteration) * (iteration_ends[-1] - iteration_ends[0]) / (len(iteration_ends) - 1)
        print(f"step {global_step:>8}/{args.total_timesteps}  success {success_rate:.2f}  SPS {sps:>6}  "
              f"ETA {eta / 60:.1f} min", flush=True)
        if len(recent_success) >= 100 and success_rate >= args.stop_at_success:
            end_reason = f"success rate {success_rate:.2f} >= --stop-at-success {args.stop_at_success}"
        if ctrl_c:
            end_reason = "interrupted by Ctrl-C"
        every = args.checkpoint_every and iteration % args.checkpoint_every == 0
        if end_reason or every or iteration == num_iterations:
            save_checkpoint(f"{run_dir}/checkpoint.pt", dict(
                script=os.path.basename(__file__), args=vars(args), agent=agent.state_dict(),
                optimizer=optimizer.state_dict(), python_rng=random.getstate(), numpy_rng=np.random.get_state(),
                torch_rng=torch.get_rng_state(), her_rng=her_rng, next_obs=next_obs, global_step=global_step,
                envs=None if isinstance(envs, GoalVectorEnv) else envs,  # MuJoCo's (subprocesses) do not pickle
                iteration=iteration, recent_success=recent_success,
                success_rate=success_rate, seconds=time.time() - start_time))
        if end_reason:
            break

    if args.save_model:
        torch.save(agent.state_dict(), f"{run_dir}/{args.exp_name}.cleanrl_model")
    if args.save_model or args.capture_video:
        video_path = f"videos/{run_name}/eval-step{global_step}.mp4" if args.capture_video else ""
        eval_success = evaluate(agent, args, device, video_path)
        writer.add_scalar("eval/success_rate", eval_success, global_step)
        print(f"eval success rate over {args.eval_episodes} episodes: {eval_success:.3f} {video_path}", flush=True)
    print(f"{end_reason or 'budget reached'}: {global_step} env steps in {(time.time() - start_time) / 60:.1f} min, "
          f"success rate {success_rate:.2f}; logs and checkpoint in {run_dir}", flush=True)
    envs.close()
    writer.close()
    if ctrl_c:
        raise SystemExit(130)
