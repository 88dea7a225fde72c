#!/usr/bin/env bash
# MEHER (S-ratio 0.6, random and targeted failures) and PPO-HER-2-PPO on random prey / random spawn, seeds 1-3,
# paper defaults, up to 300k env steps, stopping at 95% success. Compare with the ppo_her runs of
# ppo_her_results.sh: python benchmarks/plot_results.py --out docs/meher --include random-random
# Usage: bash benchmarks/meher_results.sh [parallel jobs, default 1]. Resumable like ppo_her_results.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-1}
for seed in 1 2 3; do
  for run in "meher --s-ratio 0.6 --failure random --exp-name meher0.6-random-random" \
             "meher --s-ratio 0.6 --failure targeted --exp-name meher0.6targeted-random-random" \
             "ppo_her_2_ppo --exp-name ppo_her_2_ppo-random-random"; do
    set -- $run
    compgen -G "runs/*__${!#}__${seed}__*" > /dev/null && continue
    echo "algorithms/$* --seed $seed"
  done
done | OMP_NUM_THREADS=1 xargs -P "$jobs" -L 1 sh -c \
  'script=$1.py; shift; python $script --prey random --spawn random --total-timesteps 300000 --stop-at-success 0.95 "$@" > /dev/null || echo "failed: $*" >&2' _
