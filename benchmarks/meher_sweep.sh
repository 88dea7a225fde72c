#!/usr/bin/env bash
# MEHER S-ratio sweep D = 0, 0.1, ..., 1 (random failures) plus the comparisons (MEHER 0.6 targeted, PPO-HER,
# PPO-HER-2-PPO) on random/random and straight_away/apart, seeds 1-3, 150k env steps each, no early stop.
# All runs use the README's fast configuration (--hidden-size 64 --num-envs 32 --num-steps 64
# --minibatch-size 256): the paper defaults would need about 9 hours of this 2-core machine for the 84 runs.
# Logs go to sweep/runs/ (kept apart from the paper-default runs in runs/). Resumable. Then:
#   python benchmarks/sratio_metric.py --runs sweep/runs --out docs/meher
# Usage: bash benchmarks/meher_sweep.sh [parallel jobs, default 1]   (one torch thread per job)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p sweep
jobs=${1:-1}
fast="--hidden-size 64 --num-envs 32 --num-steps 64 --minibatch-size 256 --total-timesteps 150000"
for seed in 1 2 3; do
  for condition in "random random" "straight_away apart"; do
    set -- $condition
    runs=()
    for d in 0.0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0; do
      runs+=("meher --s-ratio $d --failure random --exp-name meher$d-$1-$2")
    done
    runs+=("meher --s-ratio 0.6 --failure targeted --exp-name meher0.6targeted-$1-$2"
           "ppo_her --exp-name ppo_her-$1-$2" "ppo_her_2_ppo --exp-name ppo_her_2_ppo-$1-$2")
    for run in "${runs[@]}"; do
      name=${run##* }
      compgen -G "sweep/runs/*__${name}__${seed}__*" > /dev/null && continue
      echo "$run --prey $1 --spawn $2 --seed $seed"
    done
  done
done | OMP_NUM_THREADS=1 xargs -P "$jobs" -L 1 sh -c \
  'script=../algorithms/$1.py; shift; cd sweep && python $script '"$fast"' "$@" > /dev/null || echo "failed: $*" >&2' _
