"""PPO-HER speed, printed as `name value` lines.

1. Throughput with the paper's default hyperparameters and HER on: end-to-end env steps/s (the script's
   charts/SPS), and the seconds per 2,048-step iteration spent in the rollout, the relabelling (GAE of the real data,
   `relabel`, `relabelled_batch`) and the PPO update (`ppo_update`), timed by calling ppo_her.py's own functions.
2. Wall-clock to 90% success on random prey / random spawn: the default configuration and the fast one
   (FAST below), run one after the other in this command, and their ratio.
3. The floor (`--part floor`): microseconds of one default minibatch-64 gradient step through the script's Agent,
   split into forward+backward, gradient clipping and fused Adam; the same forward+backward under bf16 autocast;
   and the env steps/s that the update alone would allow at the measured minibatches per iteration.

    python benchmarks/ppo_her_speed.py            # both parts (about 10 minutes here)
    python benchmarks/ppo_her_speed.py --part throughput
"""
import argparse
import glob
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "algorithms", "ppo_her.py")
FAST = ["--hidden-size", "64", "--num-envs", "32", "--num-steps", "64", "--minibatch-size", "256"]


def run(flags, workdir):
    """Run ppo_her.py in `workdir`; return its TensorBoard scalars and the run's wall-clock seconds."""
    started = time.time()
    subprocess.run([sys.executable, SCRIPT, *flags], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    seconds = time.time() - started
    events = EventAccumulator(glob.glob(os.path.join(workdir, "runs", "*"))[-1], size_guidance={"scalars": 0})
    events.Reload()
    return events, seconds


def scalar(events, tag):
    return np.array([s.value for s in events.Scalars(tag)])


def seconds_to_success(events, threshold):
    start = events.FirstEventTimestamp()
    hits = [s.wall_time - start for s in events.Scalars("charts/success_rate")
            if s.value >= threshold - 1e-6]  # float32 logs
    return hits[0] if hits else float("nan")


def load_ppo_her():
    spec = importlib.util.spec_from_file_location("ppo_her", SCRIPT)
    ppo_her = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ppo_her)
    return ppo_her


def iteration_parts(seed, iterations=10):
    """Median seconds per default iteration (one env x 2,048 steps, HER `final`, k = 1) spent in the rollout, the
    relabelling and the PPO update, each timed around the script's own functions, from a fresh agent as a run starts."""
    import torch
    from envs import make_goal_env
    ppo_her = load_ppo_her()
    args = ppo_her.Args(seed=int(seed))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    envs = make_goal_env(args.env_id, args.num_envs)
    space = envs.single_observation_space
    goal_dim = space["desired_goal"].shape[0]
    agent = ppo_her.Agent(space, args.num_dims, args.hidden_size)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)
    her_rng = np.random.default_rng(args.seed)
    next_obs = ppo_her.flat_obs(envs.reset(seed=args.seed)[0])
    seconds = {"rollout": [], "relabel": [], "update": []}
    for _ in range(iterations):
        started = time.perf_counter()
        steps = {key: [] for key in ("obs", "actions", "logprobs", "values", "reward", "terminal", "episode_steps",
                                     "next_obs")}
        for _ in range(args.num_steps):
            obs = next_obs
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(torch.from_numpy(obs))
            next_obs, reward, terminations, _, infos = envs.step(action.numpy())
            next_obs = ppo_her.flat_obs(next_obs)
            step = dict(obs=obs, actions=action.numpy(), logprobs=logprob.numpy(), values=value.flatten().numpy(),
                        reward=reward, terminal=terminations.astype(np.float32),
                        episode_steps=infos["episode_steps"], next_obs=ppo_her.flat_obs(infos["final_obs"]))
            for key, x in step.items():
                steps[key].append(x)
        rollout = {key: np.concatenate(x) for key, x in steps.items()}  # one env: flat order is step order
        relabelling = time.perf_counter()
        with torch.no_grad():
            last_value = agent.get_value(torch.from_numpy(next_obs)).flatten().numpy()
        next_values = np.append(rollout["values"][1:], last_value)
        rollout["fragment_end"] = rollout["terminal"] > 0
        rollout["fragment_end"][-1] = True
        rollout["next_achieved_goal"] = rollout["next_obs"][:, -2 * goal_dim : -goal_dim]
        advantages = ppo_her.compute_gae(rollout["reward"], rollout["values"], next_values, rollout["terminal"],
                                         rollout["fragment_end"], args.gamma, args.gae_lambda)
        batch = dict(obs=rollout["obs"], actions=rollout["actions"], logprobs=rollout["logprobs"],
                     advantages=advantages, returns=advantages + rollout["values"], values=rollout["values"])
        copies = ppo_her.relabel(rollout, args.her_strategy, args.her_k, envs.compute_reward, her_rng,
                                 envs.terminal_rewards)
        relabelled = ppo_her.relabelled_batch(agent, batch["obs"], rollout["next_obs"], batch["actions"], copies,
                                              goal_dim, args, "cpu")
        batch = {key: np.concatenate([batch[key], relabelled[key]]) for key in batch}
        updating = time.perf_counter()
        ppo_her.ppo_update(agent, optimizer, batch, args, "cpu")
        seconds["rollout"].append(relabelling - started)
        seconds["relabel"].append(updating - relabelling)
        seconds["update"].append(time.perf_counter() - updating)
    envs.close()
    return {part: float(np.median(x)) for part, x in seconds.items()}


def floor(threads, minibatches_per_iteration=610):
    """Time the default update's minibatch step in isolation (no rollout, no logging, no data loading)."""
    import torch
    torch.set_num_threads(int(threads))
    ppo_her = load_ppo_her()
    import gymnasium as gym
    space = gym.make("PredatorPrey-v0").observation_space
    agent = ppo_her.Agent(space, 3, 512)
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-4, eps=1e-5, fused=True)
    obs, actions, advantages = torch.randn(64, 9), torch.randn(64, 3), torch.randn(64)

    def forward_backward(dtype=None):
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            _, logprob, _, value = agent.get_action_and_value(obs, actions)
        loss = -(logprob.float() * advantages).mean() + 0.5 * (value.float().view(-1) - advantages).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()

    def microseconds(fn, n=300):
        for _ in range(30):
            fn()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n * 1e6

    fb = microseconds(forward_backward)
    clip = microseconds(lambda: torch.nn.utils.clip_grad_norm_(agent.parameters(), 0.5))
    adam = microseconds(optimizer.step)
    print(f"minibatch_forward_backward_us {fb:.0f}")
    print(f"minibatch_clip_us {clip:.0f}")
    print(f"minibatch_adam_us {adam:.0f}")
    print(f"minibatch_forward_backward_bf16_autocast_us {microseconds(lambda: forward_backward(torch.bfloat16)):.0f}")
    update = minibatches_per_iteration * (fb + clip + adam) / 1e6
    print(f"update_floor_seconds_per_iteration {update:.2f}  # {minibatches_per_iteration} minibatches")
    print(f"update_floor_sps {2048 / update:.0f}  # with free rollouts, relabelling and loss arithmetic")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["throughput", "time-to-learn", "floor", "all"], default="all")
    parser.add_argument("--threads", default="1", help="torch threads (OMP_NUM_THREADS) for the runs")
    parser.add_argument("--seed", default="1")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = args.threads
    print(f"# torch threads {args.threads}, seed {args.seed}")
    if args.part == "floor":
        floor(args.threads)
    if args.part in ("throughput", "all"):
        with tempfile.TemporaryDirectory() as workdir:
            events, _ = run(["--total-timesteps", "20480", "--seed", args.seed], workdir)
        print(f"default_her_sps {scalar(events, 'charts/SPS')[-1]:.0f}")
        import torch
        torch.set_num_threads(int(args.threads))
        for part, seconds in iteration_parts(args.seed).items():
            print(f"default_{part}_seconds_per_iteration {seconds:.3f}")
    if args.part in ("time-to-learn", "all"):
        common = ["--prey", "random", "--spawn", "random", "--seed", args.seed, "--stop-at-success", "0.9"]
        seconds = {}
        for name, flags in (("default", []), ("fast", FAST)):
            with tempfile.TemporaryDirectory() as workdir:
                events, _ = run(common + flags, workdir)
            steps = events.Scalars("charts/success_rate")[-1].step
            seconds[name] = seconds_to_success(events, 0.9)
            print(f"{name}_steps_to_0.9 {steps}")
            print(f"{name}_seconds_to_0.9 {seconds[name]:.1f}")
        print(f"fast_speedup_to_0.9 {seconds['default'] / seconds['fast']:.1f}")
