"""PPO-HER speed, printed as `name value` lines.

1. Throughput with the paper's default hyperparameters and HER on: end-to-end env steps/s (the script's
   charts/SPS) and the seconds per 2,048-step iteration spent in rollout, relabelling and the PPO update.
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
    hits = [s.wall_time - start for s in events.Scalars("charts/success_rate") if s.value >= threshold - 1e-6]  # float32 logs
    return hits[0] if hits else float("nan")


def floor(threads, minibatches_per_iteration=610):
    """Time the default update's minibatch step in isolation (no rollout, no logging, no data loading)."""
    import torch
    torch.set_num_threads(int(threads))
    spec = importlib.util.spec_from_file_location("ppo_her", SCRIPT)
    ppo_her = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ppo_her)
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
        for part in ("rollout", "relabel", "update"):
            print(f"default_{part}_seconds_per_iteration {np.median(scalar(events, f'time/{part}_seconds')):.3f}")
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
