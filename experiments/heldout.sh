#!/usr/bin/env bash
# Held-out adaptation curves of meta-learned runs beside the baselines, on their family's 40
# fixed test tasks (and its out-of-distribution tasks, for the meta-learners, when the family
# has them), 0..3 adaptation steps of 20 episodes each, seed 0. The reports (JSON), the plot
# and the policies behind every row (safetensors + JSON: the meta-learners' final
# checkpoints, PPO's pretrained and oracle policies) go to OUT; experiments/RESULTS.md and
# README quote them, and `metarl evaluate OUT/<name>.safetensors --tasks FILE.json`
# re-evaluates any of them on tasks of your own.
#
#   bash experiments/heldout.sh OUT MAML_RUN_DIR [REPTILE_RUN_DIR]
#
# MAML_RUN_DIR (any run, in fact) also sets the baselines' family, policy and inner step.
# The PPO baselines train for PPO_STEPS env steps (default: the env steps MAML_RUN_DIR
# meta-trained for, an equal budget); PPO pre-trained once is adapted with each
# meta-learner's inner procedure, and fine-tuned with PPO on each task.
set -euo pipefail
OUT=${1:?output directory for the reports}
MAML=${2:?MAML-TRPO run directory}
REPTILE=${3:-}
PPO_STEPS=${PPO_STEPS:-}
BUDGET=()
[[ -n "$PPO_STEPS" ]] && BUDGET=(--timesteps "$PPO_STEPS")
mkdir -p "$OUT"

latest() { ls "$1"/checkpoints/iter_*.safetensors | sort | tail -n 1; }
has_ood() {
  python -c "import metarl, sys; sys.exit(0 if metarl.load('$1').family.has_ood else 1)"
}

meta_learner() {  # RUN NAME: evaluate a meta-learner held out (and OOD), keep its checkpoint
  cp "$(latest "$1")" "$OUT/$2.safetensors"
  metarl evaluate "$OUT/$2.safetensors" --out "$OUT/$2.json"
  if has_ood "$1"; then
    metarl evaluate "$OUT/$2.safetensors" --tasks ood --out "$OUT/ood/$2.json"
  fi
  metarl baseline random-init --like "$1" --out "$OUT/random_init_$2_inner.json"
}

meta_learner "$MAML" maml_trpo
if [[ -f "$OUT/pretrained.safetensors" ]]; then  # trained before: reuse it
  metarl baseline pretrained --like "$MAML" --policy "$OUT/pretrained.safetensors" \
    --out "$OUT/pretrained.json"
else
  metarl baseline pretrained --like "$MAML" "${BUDGET[@]}" --out "$OUT/pretrained.json"
fi
if [[ ! -f "$OUT/oracle.safetensors" ]]; then
  metarl baseline oracle --like "$MAML" "${BUDGET[@]}" --out "$OUT/oracle.json"
fi
metarl baseline pretrained-finetune --like "$MAML" --policy "$OUT/pretrained.safetensors" \
  --out "$OUT/pretrained_finetune.json"
metarl baseline ppo-scratch --like "$MAML" --out "$OUT/ppo_scratch.json"
if [[ -n "$REPTILE" ]]; then
  meta_learner "$REPTILE" reptile
  metarl baseline pretrained --like "$REPTILE" --policy "$OUT/pretrained.safetensors" \
    --out "$OUT/pretrained_reptile_inner.json"
fi
metarl plot "$OUT"/*.json -o "$OUT/curves.png"
