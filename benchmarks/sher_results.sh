#!/usr/bin/env bash
# SHER vs DDPG + HER on FetchPush-v4 (640k env steps each) and SHER's temperature alpha in {0.03, 0.05, 0.1}
# (320k steps; alpha 0.05 is the sher-push run), task defaults, --torch-threads 2, one run at a time (each wants both
# cores of a 2-core machine: the wall-clock columns compare only runs that had the machine to themselves).
# Usage: bash benchmarks/sher_results.sh [seeds, default "1 2"]. Resumable: a run whose log directory exists is skipped.
# About 40 min (DDPG) + 55 min (SHER) + 2 x 28 min (alpha) per seed here.
set -euo pipefail
cd "$(dirname "$0")/.."
for seed in ${1:-1 2}; do
  for run in "her_ddpg --total-timesteps 640000 --exp-name her_ddpg-push" \
             "sher --total-timesteps 640000 --exp-name sher-push" \
             "sher --total-timesteps 320000 --alpha 0.03 --exp-name sher_alpha0.03-push" \
             "sher --total-timesteps 320000 --alpha 0.1 --exp-name sher_alpha0.1-push"; do
    set -- $run
    compgen -G "runs/FetchPush-v4__${!#}__${seed}__*" > /dev/null && continue
    script=$1.py; shift
    python "algorithms/$script" --env-id FetchPush-v4 --seed "$seed" --torch-threads 2 "$@" > /dev/null
  done
done
python benchmarks/plot_results.py --tag eval/success_rate --include her_ddpg-push sher-push --out docs/sher \
  --max-steps 650000 --hold-above 1.1
python benchmarks/delta_s_table.py --include her_ddpg-push sher-push --max-steps 640000
python benchmarks/plot_results.py --tag eval/success_rate --include sher-push sher_alpha --out docs/sher/alpha \
  --max-steps 330000 --hold-above 1.1
python benchmarks/delta_s_table.py --include sher-push sher_alpha --max-steps 320000
