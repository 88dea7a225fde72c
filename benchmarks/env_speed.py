"""Speed of the Predator-Prey environment, and how often a greedy pursuer catches each kind of prey.

    python benchmarks/env_speed.py

Prints one figure per line as `name value`: env steps per second (sps) of the single env, of the
vector env at 64 / 1,024 / 4,096 games, of gymnasium's SyncVectorEnv over 1,024 single envs, the
vector env's speedup over it, and the greedy-pursuit capture rate per prey x spawn condition.
Runs on one core with one thread; each speed is the best of 3 timings of about 1 s, random actions
drawn beforehand. Targets: vector_env_sps_4096 >= 3,000,000, speedup_vs_sync_1024 >= 50.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core

import time  # noqa: E402

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

from envs import PREY_BEHAVIOURS, SPAWN_MODES, PredatorPreyEnv, PredatorPreyVectorEnv  # noqa: E402

PREY = "repel"  # the hardest behaviours are attract and repel (an orthogonal draw per step); both cost the same
SECONDS, REPEATS, ACTION_BATCHES = 1.0, 3, 64


def steps_per_second(step, actions: np.ndarray, games: int) -> float:
    """Best of REPEATS timings of about SECONDS each of `step(action)`, cycling through `actions`."""
    calls = 10
    while True:  # find how many calls take about SECONDS
        start = time.perf_counter()
        for i in range(calls):
            step(actions[i % len(actions)])
        elapsed = time.perf_counter() - start
        if elapsed > SECONDS / 10:
            break
        calls *= 4
    calls = max(1, round(calls * SECONDS / elapsed))
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for i in range(calls):
            step(actions[i % len(actions)])
        best = min(best, time.perf_counter() - start)
    return calls * games / best


def random_actions(shape) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (ACTION_BATCHES, *shape)).astype(np.float32)


def single_env_sps() -> float:
    env = PredatorPreyEnv(prey=PREY)
    env.reset(seed=0)

    def step(action):
        if env.step(action)[2]:
            env.reset()
    return steps_per_second(step, random_actions((3,)), 1)


def vector_env_sps(env) -> float:
    env.reset(seed=0)
    return steps_per_second(env.step, random_actions((env.num_envs, 3)), env.num_envs)


def greedy(obs) -> np.ndarray:
    """Full speed straight at the prey: the direction scaled so that its largest component is 1."""
    direction = obs["desired_goal"] - obs["achieved_goal"]
    return direction / np.maximum(np.abs(direction).max(-1, keepdims=True), 1e-6)


def capture_rate(prey, spawn, episodes=1000) -> float:
    """Fraction of `episodes` (one per game, run side by side) that greedy pursuit ends with a capture."""
    env = PredatorPreyVectorEnv(episodes, prey=prey, spawn=spawn)
    obs, _ = env.reset(seed=0)
    outcome = np.zeros(episodes)  # +1 captured, -1 failed, 0 still running
    while (outcome == 0).any():
        obs, reward, terminated, _, _ = env.step(greedy(obs))
        outcome = np.where((outcome == 0) & terminated, reward, outcome)
    return float((outcome == 1).mean())


def main() -> None:
    print(f"# prey={PREY} spawn=random num_dims=3, one core, one thread, best of {REPEATS} x ~{SECONDS:g} s")
    print(f"single_env_sps {single_env_sps():.0f}", flush=True)
    vector = {n: vector_env_sps(PredatorPreyVectorEnv(n, prey=PREY)) for n in (64, 1024, 4096)}
    for n, sps in vector.items():
        print(f"vector_env_sps_{n} {sps:.0f}", flush=True)
    sync = vector_env_sps(gymnasium.vector.SyncVectorEnv([lambda: PredatorPreyEnv(prey=PREY)] * 1024))
    print(f"sync_vector_env_sps_1024 {sync:.0f}")
    print(f"speedup_vs_sync_1024 {vector[1024] / sync:.1f}", flush=True)
    for prey in PREY_BEHAVIOURS:
        for spawn in SPAWN_MODES:
            print(f"capture_rate_{prey}_{spawn} {capture_rate(prey, spawn):.3f}")


if __name__ == "__main__":
    main()
