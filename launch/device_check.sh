#!/usr/bin/env bash
# One short check of an accelerator machine (GPU or TPU): the test suite, then the
# benchmark, then one summary table. Designed to finish in under 11 minutes: every
# step has a time limit, and a step that fails or runs out of time does not stop
# the next one (the benchmark writes its JSON after every section, so a cut-short
# run still reports what it measured).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/device_check.sh [--quick] [--dry-run]

Runs, with jaxmlp and its test extras already installed and MNIST in $MNIST_DIR
(default: shared/mnist or ../shared/mnist beside the checkout, if present), what an
accelerator adds to the CPU's CI:
  1. the devices jax sees;
  2. the tests of the numbers on the device: the engine, slot refills, the training
     step, the optimizers and the replay of Keras' own trajectories (tests/core/golden);
  3. benchmarks/bench.py (full, or --quick), JSON and table;
  4. benchmarks/search_bench.py: the Optuna search with K slots per program against
     one trial at a time through the same engine (trials per hour);
  5. on an accelerator, the finetune grid (36 configurations x 3 seeds x 50 epochs),
     timed by its report;
  6. population-based training (configs/finetune_pbt.py: 16 members in one program,
     50 epochs, no final retraining): its compile count and an exploit's cost
     against an epoch, from pbt.json;
  7. the layout guarantee on the device: a member's bits alone and in programs of 2, 3
     and 8 slots, member_arithmetic 'alone' (must agree) and 'batched'.
Every step has a time limit, 610 s in all. Logs, the JSONs and summary.md go to $OUT if
set, else to a new temporary folder. Exits 1 if a step failed or timed out.

  --quick     the benchmark's --quick mode
  --dry-run   print the commands instead of running them (or DRY_RUN=1)
  -h, --help  this text

Environment: PYTHON (default python), PYTEST_FLAGS (default -q -x --durations=10),
BENCH_FLAGS (extra benchmark flags; default --ks=1,4,16,36,144 on an accelerator),
SEARCH_FLAGS (search-benchmark flags; default --slots=32 --rows=12000 --epochs=5
--trials=64 on an accelerator, --quick on a CPU), and the steps' limits in seconds:
TEST_LIMIT_S (150), BENCH_LIMIT_S (120), SEARCH_LIMIT_S (120), STUDY_LIMIT_S (80),
PBT_LIMIT_S (60), LAYOUT_LIMIT_S (60).
EOF
}

# die_usage and show, shared by the launchers.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
DRY_RUN="${DRY_RUN:-0}"
QUICK=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run|--dry_run) DRY_RUN=1 ;;
    --quick) QUICK=(--quick) ;;
    *) die_usage "unexpected argument '$arg'" ;;
  esac
done

# -n 0: one test process (pyproject's two would each take 75% of the accelerator).
read -r -a PYTEST_ARGS <<<"${PYTEST_FLAGS:--q -x -n 0 --durations=10}"
DEVICE_TESTS=(tests/engine/test_engine.py tests/engine/test_slots.py
              tests/engine/test_plan.py tests/core/test_train.py tests/core/test_optim.py
              tests/core/test_golden.py)
# It simulates 4 CPU devices in a process of its own: CI's, not the accelerator's.
CPU_ONLY_TEST="tests/engine/test_engine.py::test_members_shard_over_four_devices_with_the_same_numbers"

if [[ -z "${MNIST_DIR:-}" ]]; then
  for candidate in "$ROOT/shared/mnist" "$ROOT/../shared/mnist"; do
    if [[ -d "$candidate" ]]; then
      export MNIST_DIR="$(cd "$candidate" && pwd)"
      break
    fi
  done
fi
if [[ "$DRY_RUN" == 1 ]]; then
  OUT_DIR="${OUT:-/tmp/jaxmlp_device_check}"
else
  OUT_DIR="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/jaxmlp_device_check.XXXXXX")}"
  mkdir -p "$OUT_DIR"
fi
cd "$ROOT"

STEPS=()
# Runs one step under a time limit, its output to the terminal and LOG; records
# the step's name, outcome and duration. Never fails: the next step still runs.
step() {
  local name="$1" limit="$2" log="$3"
  shift 3
  local cmd=(timeout --kill-after=10 "$limit" "$@")
  if [[ "$DRY_RUN" == 1 ]]; then
    show "${cmd[@]}"
    return 0
  fi
  echo "=== $(date '+%T') $name: $(show "$@")"
  local start=$SECONDS rc=0
  "${cmd[@]}" 2>&1 | tee "$OUT_DIR/$log" || rc=$?
  local outcome="ok"
  if [[ $rc == 124 || $rc == 137 ]]; then
    outcome="TIMED OUT after ${limit} s"
  elif [[ $rc != 0 ]]; then
    outcome="FAILED (exit $rc)"
  fi
  # pytest's verdict, the benchmark's last line, or where a step was cut short.
  local last
  last="$(grep -E '(passed|failed|error|total benchmark time)' "$OUT_DIR/$log" | tail -n 1 ||
          true)"
  [[ -n "$last" ]] || last="$(grep -v '^[[:space:]]*$' "$OUT_DIR/$log" | tail -n 1 || true)"
  last="${last//|//}"
  STEPS+=("| $name | $outcome | ${last:0:100} | $((SECONDS - start)) | $log |")
  return 0
}

step "devices" 20 devices.log "$PYTHON" -c '
import platform, jax, flax, optax
print("devices:", jax.devices())
print(f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}, "
      f"python {platform.python_version()}")'

PLATFORM="$(grep -o -m1 -E '(Cuda|Rocm|Tpu|Cpu|Gpu)Device' "$OUT_DIR/devices.log" 2>/dev/null || true)"

# The tests run with float32 matmuls, as jaxmlp.launch does by default (they compare
# with float32 references and Keras' own float32 runs, which TF32, a GPU's default,
# would miss), and without XLA's preallocation of 75% of a GPU's memory.
TEST_ENV=(env JAX_DEFAULT_MATMUL_PRECISION=float32 XLA_PYTHON_CLIENT_PREALLOCATE=false)
step "tests of the numbers on the device" "${TEST_LIMIT_S:-150}" pytest.log \
  "${TEST_ENV[@]}" "$PYTHON" -m pytest "${PYTEST_ARGS[@]}" --deselect "$CPU_ONLY_TEST" \
  "${DEVICE_TESTS[@]}"
# An accelerator has room for a larger sweep than the benchmark's CPU default.
DEFAULT_BENCH_FLAGS="--ks=1,4,16,36,144"
[[ "$PLATFORM" != "CpuDevice" ]] || DEFAULT_BENCH_FLAGS=""
read -r -a BENCH_ARGS <<<"${BENCH_FLAGS-$DEFAULT_BENCH_FLAGS}"
step "benchmark" "${BENCH_LIMIT_S:-120}" bench.log \
  "$PYTHON" benchmarks/bench.py ${QUICK[@]+"${QUICK[@]}"} "--json=$OUT_DIR/bench.json" \
  ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}
# The Optuna search's slots against one trial at a time: on a CPU the gain is bounded
# by its cores; on an accelerator a program of 32 slots should cost little more than
# one of 1.
DEFAULT_SEARCH_FLAGS="--slots=32 --rows=12000 --epochs=5 --trials=64"
[[ "$PLATFORM" != "CpuDevice" ]] || DEFAULT_SEARCH_FLAGS="--quick"
read -r -a SEARCH_ARGS <<<"${SEARCH_FLAGS-$DEFAULT_SEARCH_FLAGS}"
step "search benchmark: slots vs one trial at a time" "${SEARCH_LIMIT_S:-120}" search.log \
  "$PYTHON" benchmarks/search_bench.py --contenders=engine,single \
  "--json=$OUT_DIR/search_bench.json" ${SEARCH_ARGS[@]+"${SEARCH_ARGS[@]}"}
# The accelerator target: the 36-point finetune grid x 3 seeds x 50 epochs (without the
# final retraining), which the report times as training + testing and compiling. On a
# CPU it would take the better part of an hour.
if [[ "$PLATFORM" != "CpuDevice" ]]; then
  step "finetune grid, 36 x 3 seeds x 50 epochs" "${STUDY_LIMIT_S:-80}" finetune.log \
    "$PYTHON" -m jaxmlp.launch --study=finetune --search=grid --config.final_epochs=0 \
    --progress=false "--output_dir=$OUT_DIR/results"
fi

# Population-based training in one program: the population exploits every 5 epochs
# without recompiling (pbt.json: compiles_while_evolving 0); on a CPU, fewer rows.
PBT_ROWS=()
[[ "$PLATFORM" != "CpuDevice" ]] || PBT_ROWS=(--data_limit=6000 --epochs=10)
step "population-based training, 16 members" "${PBT_LIMIT_S:-60}" pbt.log \
  "$PYTHON" -m jaxmlp.launch --study=finetune_pbt --config.final_epochs=0 \
  --progress=false --tensorboard=false "--output_dir=$OUT_DIR/results" \
  ${PBT_ROWS[@]+"${PBT_ROWS[@]}"}

# The layout guarantee (README, "What is guaranteed") on this device: two members of a
# chaotic and of the baseline configuration, alone and in programs of 2, 3 and 8 slots,
# computed 'alone' (the same bits in every packing, or the guarantee does not hold
# here) and 'batched' (how the packing moves them); bench.py's invariance table above
# is what 'alone' costs here.
step "layout guarantee: a member's bits in any packing" "${LAYOUT_LIMIT_S:-60}" layout.log \
  "${TEST_ENV[@]}" "$PYTHON" -c '
import sys
sys.path.insert(0, "tests/engine")
import test_invariance as t
platform = {"CudaDevice": "cuda", "GpuDevice": "cuda", "RocmDevice": "rocm",
            "TpuDevice": "tpu"}.get(sys.argv[1], "cpu")
for arithmetic in ("alone", "batched"):
  by_member = t._matrix(1, arithmetic, "1,2,3,8", platform=platform)
  kinds = {m: len(set(d.values())) for m, d in by_member.items()}
  print(f"{arithmetic}: distinct bits per member over 1, 2, 3 and 8 slots: {kinds}")
  if arithmetic == "alone" and max(kinds.values()) > 1:
    sys.exit("failed: alone, a member got other bits in another packing")
print("passed: alone gives every member its bits in every packing")' "${PLATFORM:-CpuDevice}"

[[ "$DRY_RUN" == 1 ]] && exit 0

{
  echo "| step | outcome | last result line | seconds | log |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${STEPS[@]}"
  echo
  if [[ -f "$OUT_DIR/results/finetune/report.md" ]]; then
    echo "finetune grid: $(grep -m1 -E 's of training and testing' \
      "$OUT_DIR/results/finetune/report.md" | sed 's/^- //')"
    echo
  fi
  if [[ -f "$OUT_DIR/results/finetune_pbt/pbt.json" ]]; then
    "$PYTHON" - "$OUT_DIR/results/finetune_pbt/pbt.json" <<'EOF' || true
import json, sys
p = json.load(open(sys.argv[1]))
print(f"pbt: epoch program compiled {p['epoch_program_compiles']}x, "
      f"{p['compiles_while_evolving']} compilations while evolving; exploit "
      f"{1e3 * (p['exploit_s_median'] or 0):.1f} ms vs epoch {p['epoch_s_median']:.3f} s "
      f"(medians); winner member {p.get('winner')}")
EOF
    echo
  fi
  if [[ -f "$OUT_DIR/search_bench.json" ]]; then
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("markdown", ""))' \
      "$OUT_DIR/search_bench.json" || true
  fi
  # The benchmark's own table; from the JSON when the run was cut short.
  "$PYTHON" - "$OUT_DIR/bench.json" <<'EOF' || echo "(no benchmark results)"
import json, sys
sys.path.insert(0, 'benchmarks')
import bench
out = json.load(open(sys.argv[1]))
print(out.get('markdown') or bench.render(out) + '\n(cut short: partial results)')
EOF
} | tee "$OUT_DIR/summary.md"
echo "results: $OUT_DIR"
if grep -q -E '\| (FAILED|TIMED OUT)' "$OUT_DIR/summary.md"; then
  exit 1
fi
