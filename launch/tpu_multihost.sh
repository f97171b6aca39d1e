#!/usr/bin/env bash
# Runs one study on every host of a Cloud TPU VM slice (e.g. v4-32, v5e-16).
#
# A multi-host slice runs one JAX process per host. `gcloud ... ssh --worker=all`
# starts the same command on every host at once; JAXMLP_DISTRIBUTED=1 makes
# jaxmlp.launch call jax.distributed.initialize(), which on a TPU VM finds the
# coordinator and the process ids by itself, so the member axis then spans every
# chip of the slice.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/tpu_multihost.sh --tpu=NAME --study=STUDY [--zone=ZONE] [--project=PROJECT]
                               [--remote_dir=DIR] [--setup] [--dry-run] [LAUNCH_FLAGS...]

Runs `python -m jaxmlp.launch --study=STUDY LAUNCH_FLAGS...` on every worker of the
TPU VM slice NAME, with JAXMLP_DISTRIBUTED=1.

  --tpu=NAME          the TPU VM (slice) name, as in `gcloud compute tpus tpu-vm list`
  --study=STUDY       the study to run (see configs/)
  --zone=ZONE         its zone (default: gcloud's configured compute/zone)
  --project=PROJECT   its project (default: gcloud's configured project)
  --remote_dir=DIR    the jaxmlp checkout on every worker, relative to the home
                      folder or absolute (default: jaxmlp)
  --setup             first copy this checkout's jaxmlp/, configs/, pyproject.toml and
                      README.md to DIR on every worker and `pip install 'jax[tpu]' -e DIR`
  --dry-run           print the gcloud commands instead of running them (or DRY_RUN=1)
  -h, --help          this text

LAUNCH_FLAGS (e.g. --seeds=5 --epochs=10 --output_dir=results --data_dir=/data/mnist)
go to every worker's jaxmlp.launch unchanged. MNIST must be readable on every
worker: pass --data_dir, or let each worker download it into its cache.
Set PYTHON for the workers' interpreter (default: python3).
EOF
}

# Prints the command (--dry-run), or prints and runs it.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    show "$@"
  else
    echo "=== $(show "$@")"
    "$@"
  fi
}

# die_usage and show, shared by the launchers.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DRY_RUN="${DRY_RUN:-0}"
TPU=""
STUDY=""
ZONE=""
PROJECT=""
REMOTE_DIR="jaxmlp"
SETUP=0
PASSTHROUGH=()

for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run|--dry_run) DRY_RUN=1 ;;
    --setup) SETUP=1 ;;
    --tpu=*) TPU="${arg#--tpu=}" ;;
    --study=*) STUDY="${arg#--study=}" ;;
    --zone=*) ZONE="${arg#--zone=}" ;;
    --project=*) PROJECT="${arg#--project=}" ;;
    --remote_dir=*|--remote-dir=*) REMOTE_DIR="${arg#*=}" ;;
    -*) PASSTHROUGH+=("$arg") ;;
    *) die_usage "unexpected argument '$arg': flags only (--name=value)" ;;
  esac
done
[[ -n "$TPU" ]] || die_usage "--tpu=NAME is required"
[[ -n "$STUDY" ]] || die_usage "--study=STUDY is required"
[[ -n "$REMOTE_DIR" ]] || die_usage "--remote_dir= must not be empty"

# Options every gcloud call shares.
GCLOUD_OPTS=(--worker=all)
[[ -z "$ZONE" ]] || GCLOUD_OPTS+=("--zone=$ZONE")
[[ -z "$PROJECT" ]] || GCLOUD_OPTS+=("--project=$PROJECT")

# The command each worker runs, quoted for the remote shell.
LAUNCH=("$PYTHON" -m jaxmlp.launch "--study=$STUDY" ${PASSTHROUGH[@]+"${PASSTHROUGH[@]}"})
REMOTE="cd $(show "$REMOTE_DIR") && JAXMLP_DISTRIBUTED=1 $(show "${LAUNCH[@]}")"

if [[ "$DRY_RUN" != 1 ]] && ! command -v gcloud >/dev/null; then
  echo "error: gcloud is not on PATH (install the Google Cloud CLI)" >&2
  exit 1
fi
if [[ "$SETUP" == 1 ]]; then
  run gcloud compute tpus tpu-vm ssh "$TPU" "${GCLOUD_OPTS[@]}" \
    "--command=mkdir -p $(show "$REMOTE_DIR")"
  run gcloud compute tpus tpu-vm scp --recurse "${GCLOUD_OPTS[@]}" \
    "$ROOT/jaxmlp" "$ROOT/configs" "$ROOT/pyproject.toml" "$ROOT/README.md" \
    "$TPU:$REMOTE_DIR/"
  run gcloud compute tpus tpu-vm ssh "$TPU" "${GCLOUD_OPTS[@]}" \
    "--command=$(show "$PYTHON") -m pip install -q 'jax[tpu]' -e $(show "$REMOTE_DIR")"
fi
run gcloud compute tpus tpu-vm ssh "$TPU" "${GCLOUD_OPTS[@]}" "--command=$REMOTE"
