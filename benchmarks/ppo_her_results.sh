#!/usr/bin/env bash
# PPO vs PPO-HER, paper defaults, 4 prey x spawn conditions x 3 seeds, up to 300k env steps (a run stops
# early once 95% of its last 100 episodes succeed). PPO-HER runs go first. Resumable: a run whose log
# folder exists in runs/ is skipped. Then: python benchmarks/plot_results.py --out docs/ppo_her
# Usage: [PPO_STEPS=N] bash benchmarks/ppo_her_results.sh [parallel jobs, default 1]   (one torch thread per job)
# PPO_STEPS caps the plain-PPO runs (default 300000).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-1}
for algorithm in ppo_her ppo; do
  for condition in "random random" "straight_away apart" "static random" "repel random"; do
    set -- $condition
    for seed in 1 2 3; do
      name="$algorithm-$1-$2"
      compgen -G "runs/*__${name}__${seed}__*" > /dev/null && continue
      flags="--prey $1 --spawn $2 --seed $seed --exp-name $name --total-timesteps 300000"
      [ "$algorithm" = ppo ] && flags="$flags --no-her --total-timesteps ${PPO_STEPS:-300000}"
      echo "$flags"
    done
  done
done | OMP_NUM_THREADS=1 xargs -P "$jobs" -L 1 sh -c \
  'python algorithms/ppo_her.py --stop-at-success 0.95 "$@" > /dev/null || echo "failed: $*" >&2' _
