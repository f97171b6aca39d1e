#!/usr/bin/env bash
# N workers on one Optuna study, on this machine: each runs its own vectorized programs
# and asks the shared study for trials; worker 0 waits for the study to end, retrains
# the best configuration and writes the report, the others (--search_only) stop when
# the budget is spent.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/optuna_workers.sh N [--dry-run] [--storage=URL|PATH.log] [LAUNCH_FLAGS...]

Starts N `python -m jaxmlp.launch --search=optuna LAUNCH_FLAGS... --worker_id=K` processes
sharing one study (worker 0 without --search_only, the others with it) and waits for
all of them; exits 1 if any failed.

  N               how many workers (at least 1)
  --storage=...   the study's storage, shared by every worker: an RDB URL
                  (postgresql://..., mysql://...) or a journal file; default
                  OUTPUT_DIR/STUDY.optuna.log (a journal file beside the study folder)
  --dry-run       print the commands instead of running them (or DRY_RUN=1)
  -h, --help      this text

On a CPU each worker gets --cpu_devices=CORES/N (at least 1) unless LAUNCH_FLAGS set it;
with GPUs, worker K sees GPU K (CUDA_VISIBLE_DEVICES) when N GPUs or more are visible.
Across hosts (a SLURM array, one task per GPU), start the same command line with a
shared --storage=postgresql://... on each, --worker_id=$SLURM_ARRAY_TASK_ID and
--search_only on all tasks but one.
EOF
}

# die_usage and show, shared by the launchers.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
DRY_RUN="${DRY_RUN:-0}"
WORKERS=""
STORAGE=""
STUDY=""
OUTPUT_DIR="results"
CPU_FLAG=0
PASSTHROUGH=()

for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run|--dry_run) DRY_RUN=1 ;;
    --storage=*) STORAGE="${arg#--storage=}" ;;
    --worker_id=*|--search_only|--search=*)
      die_usage "$arg is set by this script for each worker" ;;
    --study=*) STUDY="${arg#--study=}"; PASSTHROUGH+=("$arg") ;;
    --output_dir=*) OUTPUT_DIR="${arg#--output_dir=}"; PASSTHROUGH+=("$arg") ;;
    --cpu_devices=*) CPU_FLAG=1; PASSTHROUGH+=("$arg") ;;
    -*) PASSTHROUGH+=("$arg") ;;
    *) [[ -z "$WORKERS" ]] || die_usage "unexpected argument '$arg'"
       WORKERS="$arg" ;;
  esac
done
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die_usage "give the number of workers first, e.g. 2"
[[ -n "$STUDY" ]] || die_usage "choose a study with --study=NAME"
[[ -n "$STORAGE" ]] || STORAGE="$OUTPUT_DIR/$(basename "$STUDY" .py).optuna.log"

CORES="$(nproc 2>/dev/null || echo 1)"
GPUS=0
if command -v nvidia-smi >/dev/null 2>&1; then
  GPUS="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"
fi

cd "$ROOT"
PIDS=()
for ((k = 0; k < WORKERS; k++)); do
  cmd=()
  if (( GPUS >= WORKERS )); then
    cmd+=(env "CUDA_VISIBLE_DEVICES=$k")
  fi
  cmd+=("$PYTHON" -m jaxmlp.launch --search=optuna "--storage=$STORAGE" "--worker_id=$k")
  (( k == 0 )) || cmd+=(--search_only)
  if (( GPUS == 0 && CPU_FLAG == 0 )); then
    per=$(( CORES / WORKERS )); (( per >= 1 )) || per=1
    cmd+=("--cpu_devices=$per")
  fi
  cmd+=(${PASSTHROUGH[@]+"${PASSTHROUGH[@]}"})
  if [[ "$DRY_RUN" == 1 ]]; then
    show "${cmd[@]}"
    continue
  fi
  echo "=== $(date '+%F %T') worker $k: $(show "${cmd[@]}")"
  "${cmd[@]}" &
  PIDS+=("$!")
done
[[ "$DRY_RUN" == 1 ]] && exit 0

trap 'kill -TERM "${PIDS[@]}" 2>/dev/null || true' INT TERM
STATUS=0
for pid in "${PIDS[@]}"; do
  wait "$pid" || STATUS=1
done
exit "$STATUS"
