#!/usr/bin/env bash
# The search for Reptile settings that meta-learn (issue 14, experiments/RESULTS.md): each
# variant of the family's Reptile config trains for its budget (48M env steps unless it says
# otherwise), then is evaluated held out (40 test tasks, 3 steps of 20 episodes, seed 0)
# beside the same inner loop from a random initialisation and from PPO's pretrained policy
# (PRETRAINED: a policy `metarl baseline pretrained` saved; if the file does not exist, PPO
# is pre-trained into it first, for the env steps of the first variant's run). Runs already
# trained are resumed, reports already written are kept; each variant's final checkpoint is
# copied to OUT/<variant>.safetensors (`metarl evaluate` it on tasks of your own); a variant
# whose checkpoint is there and whose run directory is not (a fresh clone) is evaluated from
# that checkpoint, not trained again. While
# PRETRAINED is still being pre-trained elsewhere, TRAIN_ONLY=1 only trains the variants and
# NO_PRETRAINED=1 also evaluates them and the random initialisation (run again without it
# afterwards).
#
#   bash experiments/reptile_search.sh CONFIG PRETRAINED OUT [VARIANT ...]
#   python experiments/search_table.py OUT
#
# A variant is a name from the list below; the default is all of them.
set -euo pipefail
CONFIG=${1:?a Reptile config, e.g. experiments/halfcheetah_reversed_joints_reptile.yaml}
PRETRAINED=${2:?a saved pretrained policy (.safetensors) of the same family}
OUT=${3:?output directory for the reports}
shift 3

declare -A SETTINGS=(
  [base]=""
  [lr1e-2]="inner_lr=0.01"
  [lr3e-3-steps5]="inner_lr=0.003 inner_steps=5 iterations=60"
  [vpg-sgd-lr0.5]="inner_algorithm=vpg inner_optimizer=sgd inner_lr=0.5"
  [eps0.3]="meta_step_size=0.3 meta_step_size_final=0.3"
  [tasks10]="meta_batch_size=10 iterations=400"
  [tasks5]="meta_batch_size=5 iterations=800"
  [lr1e-2-tasks10]="inner_lr=0.01 meta_batch_size=10 iterations=400"
  [adam-outer]="outer_optimizer=adam meta_step_size=0.01 meta_step_size_final=0"
)
VARIANTS=("$@")
[[ ${#VARIANTS[@]} -eq 0 ]] && VARIANTS=(base lr1e-2 lr3e-3-steps5 vpg-sgd-lr0.5 eps0.3 tasks10 tasks5
  lr1e-2-tasks10 adam-outer)
name=$(basename "$CONFIG" .yaml)
mkdir -p "$OUT"
for variant in "${VARIANTS[@]}"; do
  sets=(--set "iterations=100")
  for pair in ${SETTINGS[$variant]}; do sets+=(--set "$pair"); done
  run=runs/search/$name/$variant
  if [[ -f $OUT/$variant.safetensors && ! -d $run/checkpoints ]]; then
    run=$OUT/$variant.safetensors # trained before, its run directory gone: its final checkpoint
  else
    resume=()
    [[ -d $run/checkpoints ]] && resume=(--resume)
    metarl train "$CONFIG" --run-dir "$run" "${sets[@]}" "${resume[@]}"
    cp "$(ls "$run"/checkpoints/iter_*.safetensors | sort | tail -n 1)" "$OUT/$variant.safetensors"
  fi
  [[ ${TRAIN_ONLY:-0} == 1 ]] && continue
  [[ -f $OUT/$variant.json ]] || metarl evaluate "$run" --label "Reptile, $variant" \
    --out "$OUT/$variant.json"
  [[ -f $OUT/random_init_$variant.json ]] || metarl baseline random-init --like "$run" \
    --label "random init, $variant's inner loop" --out "$OUT/random_init_$variant.json"
  [[ ${NO_PRETRAINED:-0} == 1 ]] && continue
  [[ -f $PRETRAINED ]] || metarl baseline pretrained --like "$run" --save-policy "$PRETRAINED" \
    --out "${PRETRAINED%.safetensors}.json"
  [[ -f $OUT/pretrained_$variant.json ]] || metarl baseline pretrained --like "$run" \
    --policy "$PRETRAINED" --label "PPO pretrained, $variant's inner loop" \
    --out "$OUT/pretrained_$variant.json"
done
