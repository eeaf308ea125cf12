#!/usr/bin/env bash
# Held-out adaptation curves on HalfCheetahRandParams-v0: MAML-TRPO and Reptile (trained by
# halfcheetah_rand_params_{maml_trpo,reptile}.yaml) beside the baselines, on the family's 40
# fixed test tasks, 0..3 adaptation steps of 20 episodes each, seed 0. Reports (JSON) and the
# plot go to OUT; experiments/RESULTS.md quotes them.
#
#   bash experiments/heldout_halfcheetah_rand_params.sh runs/hcrp_maml runs/hcrp_reptile
set -euo pipefail
MAML=${1:?MAML-TRPO run directory}
REPTILE=${2:?Reptile run directory}
OUT=${3:-experiments/results/halfcheetah_rand_params}
PPO_STEPS=${PPO_STEPS:-1000000}
mkdir -p "$OUT"
metarl evaluate "$MAML" --out "$OUT/maml_trpo.json"
metarl evaluate "$REPTILE" --out "$OUT/reptile.json"
metarl baseline random-init --like "$MAML" --out "$OUT/random_init_maml_inner.json"
metarl baseline random-init --like "$REPTILE" --out "$OUT/random_init_reptile_inner.json"
metarl baseline pretrained --like "$MAML" --timesteps "$PPO_STEPS" --out "$OUT/pretrained.json"
metarl baseline ppo-scratch --like "$MAML" --out "$OUT/ppo_scratch.json"
metarl baseline oracle --like "$MAML" --timesteps "$PPO_STEPS" --out "$OUT/oracle.json"
metarl plot "$OUT"/*.json -o "$OUT/curves.png"
