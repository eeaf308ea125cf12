#!/usr/bin/env bash
# Held-out adaptation curves of meta-learned runs beside the baselines, on their family's 40
# fixed test tasks, 0..3 adaptation steps of 20 episodes each, seed 0. Reports (JSON) and the
# plot go to OUT; experiments/RESULTS.md quotes them.
#
#   bash experiments/heldout.sh OUT MAML_RUN_DIR [REPTILE_RUN_DIR]
#
# MAML_RUN_DIR (any run, in fact) also sets the baselines' family, policy and inner step.
# The PPO baselines train for PPO_STEPS env steps (default: the env steps MAML_RUN_DIR
# meta-trained for, an equal budget).
set -euo pipefail
OUT=${1:?output directory for the reports}
MAML=${2:?MAML-TRPO run directory}
REPTILE=${3:-}
PPO_STEPS=${PPO_STEPS:-}
BUDGET=()
[[ -n "$PPO_STEPS" ]] && BUDGET=(--timesteps "$PPO_STEPS")
mkdir -p "$OUT"
metarl evaluate "$MAML" --out "$OUT/maml_trpo.json"
metarl baseline random-init --like "$MAML" --out "$OUT/random_init_maml_inner.json"
if [[ -n "$REPTILE" ]]; then
  metarl evaluate "$REPTILE" --out "$OUT/reptile.json"
  metarl baseline random-init --like "$REPTILE" --out "$OUT/random_init_reptile_inner.json"
fi
metarl baseline pretrained --like "$MAML" "${BUDGET[@]}" --out "$OUT/pretrained.json"
metarl baseline ppo-scratch --like "$MAML" --out "$OUT/ppo_scratch.json"
metarl baseline oracle --like "$MAML" "${BUDGET[@]}" --out "$OUT/oracle.json"
metarl plot "$OUT"/*.json -o "$OUT/curves.png"
