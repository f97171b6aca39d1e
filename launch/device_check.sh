#!/usr/bin/env bash
# One short check of an accelerator machine (GPU or TPU): the test suite, then the
# benchmark, then one summary table. Designed to finish in under 8 minutes: every
# step has a time limit, and a step that fails or runs out of time does not stop
# the next one (the benchmark writes its JSON after every section, so a cut-short
# run still reports what it measured).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/device_check.sh [--quick] [--dry-run]

Runs, with jaxmlp and its test extras already installed and MNIST in $MNIST_DIR
(default: shared/mnist or ../shared/mnist beside the checkout, if present):
  1. the devices jax sees;
  2. the test suite on the accelerator (python -m pytest -q -x): tests/test_launch.py
     (whose tests start jaxmlp.launch processes) in a pytest process of its own,
     and the test that simulates 4 CPU devices alone on the CPU;
  3. benchmarks/bench.py (full, or --quick), JSON and table.
Logs, bench.json and summary.md go to $OUT if set, else to a new temporary folder.

  --quick     the benchmark's --quick mode
  --dry-run   print the commands instead of running them (or DRY_RUN=1)
  -h, --help  this text

Environment: PYTHON (default python), BENCH_FLAGS (extra benchmark flags, default
--ks=1,4,16,36,144 on an accelerator), PYTEST_FLAGS (default -q -x), and the
steps' limits in seconds: TEST_LIMIT_S (150; 180 on a CPU), LAUNCH_TEST_LIMIT_S
(75), CPU_TEST_LIMIT_S (40), BENCH_LIMIT_S (180); at most 475 s in all.
EOF
}

die_usage() {
  echo "error: $1" >&2
  usage | head -n 1 >&2 || true
  exit 2
}

# Prints a command readably, quoting each word only where a shell needs it.
show() {
  local out=() word flag value
  local safe='^[A-Za-z0-9_./:=,@%+-]*$'
  for word in "$@"; do
    if [[ "$word" =~ $safe && -n "$word" ]]; then
      out+=("$word")
      continue
    fi
    flag=""
    value="$word"
    if [[ "$word" =~ ^(--?[A-Za-z0-9_.-]+=)(.*)$ ]]; then
      flag="${BASH_REMATCH[1]}"
      value="${BASH_REMATCH[2]}"
    fi
    out+=("$flag'${value//\'/\'\\\'\'}'")
  done
  printf '%s\n' "${out[*]}"
}

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

read -r -a PYTEST_ARGS <<<"${PYTEST_FLAGS:--q -x}"
# Simulates 4 CPU devices: on an accelerator jax.devices() is the accelerator.
CPU_ONLY_TEST="tests/test_engine.py::test_members_shard_over_four_devices_with_the_same_numbers"

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
  local last
  last="$(grep -E '(passed|failed|error)' "$OUT_DIR/$log" | tail -n 1 || true)"
  STEPS+=("| $name | $outcome | ${last:-} | $((SECONDS - start)) | $log |")
  return 0
}

step "devices" 30 devices.log "$PYTHON" -c '
import platform, jax, flax, optax
print("devices:", jax.devices())
print(f"jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}, "
      f"python {platform.python_version()}")'

PLATFORM="$(grep -o -m1 -E '(Cuda|Rocm|Tpu|Cpu|Gpu)Device' "$OUT_DIR/devices.log" 2>/dev/null || true)"
# The suite runs with float32 matmuls, as jaxmlp.launch does by default: the tests
# compare against float32 references, which TF32 (a GPU's default) would miss.
# Tests that start `python -m jaxmlp.launch` run in their own pytest process: a
# TPU admits one process at a time, and a GPU process must not hold 75% of the
# memory (XLA's default preallocation) while another starts.
TEST_ENV=(env JAX_DEFAULT_MATMUL_PRECISION=float32 XLA_PYTHON_CLIENT_PREALLOCATE=false)
if [[ "$PLATFORM" == "CpuDevice" ]]; then
  step "tests" "${TEST_LIMIT_S:-180}" pytest.log \
    "${TEST_ENV[@]}" "$PYTHON" -m pytest "${PYTEST_ARGS[@]}" tests
else
  step "tests (accelerator)" "${TEST_LIMIT_S:-150}" pytest.log \
    "${TEST_ENV[@]}" "$PYTHON" -m pytest "${PYTEST_ARGS[@]}" --deselect "$CPU_ONLY_TEST" \
    --ignore=tests/test_launch.py tests
  step "tests/test_launch.py (accelerator)" "${LAUNCH_TEST_LIMIT_S:-75}" pytest_launch.log \
    "${TEST_ENV[@]}" "$PYTHON" -m pytest "${PYTEST_ARGS[@]}" tests/test_launch.py
  step "test on 4 simulated CPU devices" "${CPU_TEST_LIMIT_S:-40}" pytest_cpu.log \
    env JAX_PLATFORMS=cpu "$PYTHON" -m pytest -q "$CPU_ONLY_TEST"
fi
# An accelerator has room for a larger sweep than the benchmark's CPU default.
DEFAULT_BENCH_FLAGS="--ks=1,4,16,36,144"
[[ "$PLATFORM" != "CpuDevice" ]] || DEFAULT_BENCH_FLAGS=""
read -r -a BENCH_ARGS <<<"${BENCH_FLAGS-$DEFAULT_BENCH_FLAGS}"
step "benchmark" "${BENCH_LIMIT_S:-180}" bench.log \
  "$PYTHON" benchmarks/bench.py ${QUICK[@]+"${QUICK[@]}"} "--json=$OUT_DIR/bench.json" \
  ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}

[[ "$DRY_RUN" == 1 ]] && exit 0

{
  echo "| step | outcome | last result line | seconds | log |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${STEPS[@]}"
  echo
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
