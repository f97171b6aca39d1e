#!/usr/bin/env bash
# Runs every study in configs/ on this machine, one after another.
#
# Each study is one `python -m jaxmlp.launch --study=NAME` process (so one study's
# compiled programs and memory are gone before the next starts); every flag after
# the script's own is passed through to each of them unchanged.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/run_all_local.sh [--dry-run] [--studies=a,b,...] [--keep-going] [LAUNCH_FLAGS...]

Runs every study in configs/ (or those named in --studies) locally, one after
another, as `python -m jaxmlp.launch --study=NAME LAUNCH_FLAGS...`.

  --dry-run        print the commands instead of running them (or DRY_RUN=1)
  --studies=LIST   comma-separated study names (default: every file in configs/)
  --keep-going     run the remaining studies when one fails; exit 1 at the end
  -h, --help       this text

LAUNCH_FLAGS go to every study unchanged, e.g.
  launch/run_all_local.sh --seeds=5 --epochs=10 --output_dir=/tmp/results
Set PYTHON to choose the interpreter (default: python).
EOF
}

# die_usage and show, shared by the launchers.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
DRY_RUN="${DRY_RUN:-0}"
KEEP_GOING=0
STUDIES=""
PASSTHROUGH=()

for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run|--dry_run) DRY_RUN=1 ;;
    --keep-going|--keep_going) KEEP_GOING=1 ;;
    --studies=*) STUDIES="${arg#--studies=}"
                 [[ -n "$STUDIES" ]] || die_usage "--studies= needs at least one name" ;;
    --study=*) die_usage "use --studies=a,b (this script runs several studies)" ;;
    -*) PASSTHROUGH+=("$arg") ;;
    *) die_usage "unexpected argument '$arg': flags only (--name=value)" ;;
  esac
done

AVAILABLE=()
for path in "$ROOT"/configs/*.py; do
  name="$(basename "$path" .py)"
  [[ "$name" == _* ]] || AVAILABLE+=("$name")
done
[[ ${#AVAILABLE[@]} -gt 0 ]] || { echo "error: no study configs in $ROOT/configs" >&2; exit 1; }

if [[ -n "$STUDIES" ]]; then
  IFS=',' read -r -a SELECTED <<<"$STUDIES"
  for name in "${SELECTED[@]}"; do
    if [[ ! " ${AVAILABLE[*]} " == *" $name "* ]]; then
      die_usage "unknown study '$name': choose from ${AVAILABLE[*]}"
    fi
  done
else
  SELECTED=("${AVAILABLE[@]}")
fi

cd "$ROOT"
FAILED=()
for name in "${SELECTED[@]}"; do
  cmd=("$PYTHON" -m jaxmlp.launch "--study=$name" ${PASSTHROUGH[@]+"${PASSTHROUGH[@]}"})
  if [[ "$DRY_RUN" == 1 ]]; then
    show "${cmd[@]}"
    continue
  fi
  echo "=== $(date '+%F %T') study $name: $(show "${cmd[@]}")"
  if ! "${cmd[@]}"; then
    echo "=== study $name failed" >&2
    [[ "$KEEP_GOING" == 1 ]] || exit 1
    FAILED+=("$name")
  fi
done

if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "failed studies: ${FAILED[*]}" >&2
  exit 1
fi
