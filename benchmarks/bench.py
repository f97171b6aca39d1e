"""The engine against a naive JAX loop, Keras, this machine's floor, and sweep scaling.

  python benchmarks/bench.py [--quick] [--json=PATH]

Everything is measured in one run, on the same data (real MNIST, rows 0..47,999 in
file order, no shuffling) and the same configuration (the baseline 784-128-256-10
MLP, Keras' Adam through the engine's Structure()), so every ratio in the table
compares numbers from the same minutes on the same machine. After a warm-up that
compiles, each of --reps repetitions times every contender back to back, so load
from other processes on a shared machine hits them alike; times are medians, and
ratios are medians of the per-repetition ratios.

1. Engine vs naive: the engine's training pass (one member, a lax.scan over the
   batches inside one compiled program) against the loop most JAX tutorials write:
   a jax.jit-ed train step (same model, optimizer and loss) called from a Python for
   loop over batches sliced with numpy on the host. At batch 256 on the 48,000 rows,
   and at batch 1 on a slice (per-update time). Keras `model.fit` when importable.
2. Engine vs the floor: at batch 256, 6 x parameters x rows FLOPs at the measured
   2048x2048 float32 matmul rate; at batch 1, the bytes an Adam update must move at
   the bandwidth measured for that working set.
3. Sweep scaling: K members (learning rates) in one vmapped group, sharded over the
   CPU devices as jaxmlp.launch shards them (--cpu_devices: one per core by default),
   against K single-member runs one after another, taken as K x the measured 1-member time
   (compilation counted once, as a loop in one process would). At batch 256
   as a study runs them, planned and run by plan.train_group (the engine's whole
   epoch: training, validation, metrics to the host); at batch 1 as the training pass of section 1.
4. Checkpoints (--sections=checkpoint): the baseline study's 3 seeds as the one
   program the planner makes of them (plan.run), without in-program checkpoints, with Policy 'auto' and with
   Policy '1' (every epoch), for --checkpoint_epochs epochs: the overhead on the fit
   time, and what saving held training up (ProgramCheckpoint.saved_seconds).
5. Invariance (--sections=invariance): what member_arithmetic 'alone' (each member
   computed as it is alone, lax.map; the same bits in any packing) costs against
   'batched' (vmap), K = 1, 2, 4 and 8 members a program, at batch 256 and batch 1.
Option (--sections=throughput, not run by default): training throughput against the
matmul rate for --throughput_members members: the engine's training pass and its
whole epoch program (with the validation pass) on the 48,000 rows.

The engine's contenders run engine.build_program's compiled functions (train_pass,
init, start, epoch), the ones engine.run_program runs. The JSON (--json) holds every
raw time, the environment and the rendered table; it is rewritten after each
section, so a run cut short keeps what it measured.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script (python benchmarks/bench.py) or imported with benchmarks/ on the
# path: either way its sibling modules import from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import optax

from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.store import folders

import contenders  # pylint: disable=wrong-import-position
import timing
from render import render  # pylint: disable=unused-import  (launch/device_check.sh uses bench.render)

STRUCTURE = contenders.STRUCTURE
SECTIONS = ('loops', 'sweep', 'checkpoint', 'throughput', 'invariance')
DEFAULT_SECTIONS = 'loops,sweep,checkpoint,invariance'
CHECKPOINT_POLICIES = ('auto', '1')  # timed against no checkpoints
QUICK = dict(reps=3, batch1_rows=2000, sweep1_rows=500, ks='1,4,16', checkpoint_epochs=6)
FULL = dict(reps=5, batch1_rows=5000, sweep1_rows=1000, ks='1,4,16,36',
            checkpoint_epochs=10)


def environment() -> dict:
  devices = jax.devices()
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
  except (OSError, StopIteration):
    pass
  return dict(
      date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
      device=f'{devices[0].platform} {devices[0].device_kind}',
      device_count=len(devices), host_cpu=cpu, host_cores=os.cpu_count(),
      python=platform.python_version(), jax=jax.__version__,
      jaxlib=getattr(jax.lib, '__version__', None) or _version('jaxlib'),
      flax=_version('flax'), optax=optax.__version__, numpy=np.__version__,
      matmul_precision=str(jax.config.jax_default_matmul_precision),
      # Other processes sharing the cores show up here; compare with host_cores.
      load_average_at_start=_load_average(),
      command=' '.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]))


def _load_average() -> float | None:
  try:
    return round(os.getloadavg()[0], 2)
  except OSError:
    return None


def _version(module: str) -> str:
  try:
    return __import__(module).__version__
  except Exception:  # pylint: disable=broad-except
    return '?'


def write_json(path: str, payload: dict) -> None:
  """Written after every section and renamed into place: a killed run keeps what it had."""
  folders.write_atomic(Path(path), json.dumps(payload, indent=1))


def _max_abs_diff(a, b) -> float:
  return float(max(np.max(np.abs(x - y)) for x, y in zip(jax.tree.leaves(a),
                                                         jax.tree.leaves(b))))


def compare_loops(split, args, out: dict) -> None:
  """Sections 1 and 2: engine, naive loop, Keras and the floor at batch 256 and 1."""
  params = timing.parameter_count(STRUCTURE)
  cases = [('batch256', STRUCTURE, len(split.x_train)),
           ('batch1', dataclasses.replace(STRUCTURE, batch_size=1), args.batch1_rows)]
  for name, structure, rows in cases:
    x, y = split.x_train[:rows], split.y_train[:rows]
    updates = -(-rows // structure.batch_size)
    print(f'[bench] {name}: engine, naive loop, keras and the floor, {args.reps} + 1 '
          f'epochs of {rows} rows each', flush=True)
    engine_epoch, engine_weights = contenders.engine_loop(structure, x, y)
    naive_epoch, naive_weights = contenders.naive_loop(structure, x, y,
                                                           engine_weights())
    fit_keras, keras_note = contenders.keras_fit(x, y, structure.batch_size)
    # The warm-up epoch compiles; then the same initial weights and batches
    # should give the same weights (later epochs drift apart: Adam's division by
    # sqrt(v) + 1e-7 on tiny gradients amplifies rounding ~1000x per epoch).
    engine_epoch(), naive_epoch()
    diff = _max_abs_diff(engine_weights(), naive_weights())
    if name == 'batch256':
      # The floor: the epoch's FLOPs (forward 2, backward 4 per parameter and
      # row) at the rate of a 2048x2048 float32 matmul.
      floor_name, floor_timer, size = 'matmul', timing.matmul_timer(2048), 2048
      flops = 6 * params * rows
      rates = lambda: [2 * size**3 / t for t in times['matmul']]
      floor_s = lambda: [flops / rate for rate in rates()]
    else:
      # The floor: the bytes every update must move, at the bandwidth measured
      # for the update's working set (w, g, m, v: half the bytes moved).
      moved = timing.adam_update_bytes(params)
      floor_timer, sweep_bytes = timing.axpy_timer(moved // 2)
      floor_name = 'axpy'
      rates = lambda: [sweep_bytes / t for t in times['axpy']]
      floor_s = lambda: [moved / rate * updates for rate in rates()]
    floor_timer()  # compiles
    timers = {'engine': engine_epoch, 'naive': naive_epoch, floor_name: floor_timer}
    if name == 'batch1':
      # Where a batch-1 update goes: the same training pass with SGD (forward,
      # backward, one elementwise pass over the weights), and the Adam update alone.
      timers['engine_sgd'] = contenders.engine_loop(
          dataclasses.replace(structure, optimizer='sgd'), x, y)[0]
      timers['adam_update'] = contenders.adam_update_timer(structure, updates)
      for timer in (timers['engine_sgd'], timers['adam_update']):
        timer()  # compiles
    times = None
    if fit_keras is not None:
      times = {contender: [] for contender in timers}

      def after(epoch):
        if epoch:  # Keras' first epoch compiled; after each later one, the others once.
          for contender, timer in timers.items():
            times[contender].append(timer())

      try:
        times['keras'] = fit_keras(args.reps + 1, after)[1:]
      except Exception as e:  # pylint: disable=broad-except
        # E.g. TensorFlow failing to get GPU memory that jax already holds.
        keras_note = f'keras failed: {type(e).__name__}: {e}'[:200]
        times = None
    if times is None:
      times = timing.interleave(timers, args.reps, warm_up=False)
    median = lambda contender: (statistics.median(times[contender]) if contender in times
                                else None)
    row = dict(batch_size=structure.batch_size, rows=rows, updates_per_epoch=updates,
               engine_epoch_s=median('engine'), naive_epoch_s=median('naive'),
               keras_epoch_s=median('keras'), keras_note=keras_note,
               floor_epoch_s=statistics.median(floor_s()),
               naive_over_engine=timing.paired_ratio(times['naive'], times['engine']),
               keras_over_engine=(timing.paired_ratio(times['keras'], times['engine'])
                                  if 'keras' in times else None),
               engine_over_floor=timing.paired_ratio(times['engine'], floor_s()),
               max_abs_param_diff=diff, times_s=times)
    if name == 'batch256':
      row.update(flops_per_epoch=flops, matmul_flops=statistics.median(rates()))
    else:
      row.update(bytes_per_update=moved, working_set_bytes=moved // 2,
                 bandwidth_bytes_per_s=statistics.median(rates()),
                 engine_sgd_epoch_s=median('engine_sgd'),
                 adam_update_epoch_s=median('adam_update'),
                 adam_update_over_engine=timing.paired_ratio(times['adam_update'],
                                                      times['engine']))
    out['loops'][name] = row
    write_json(args.json, out)


def sweep(split, args, out: dict) -> None:
  """Section 3: K members in one group, at batch 256 (plan.train_group: what a study
  runs) and at batch 1."""
  mesh = devices.member_mesh()
  device_data = devices.put_data(split, mesh)
  ks = list(map(int, args.ks.split(',')))
  if 1 not in ks:
    ks = [1, *ks]  # K single runs are K x the 1-member time
  timers, lasts = {}, {}
  for k in ks:
    print(f'[bench] sweep, batch 256: compiling and warming up K={k}', flush=True)
    timers[k], lasts[k] = contenders.group_timer(k, device_data)
    timers[k]()
    outcomes = lasts[k]['outcomes']
    # A group of several programs compiles each shape it has not seen before.
    out['sweep'].append(dict(k=k, compile_s=plan.seconds(outcomes)[0],
                             members_per_program=int(outcomes[0][1].members_per_program[0])))
    write_json(args.json, out)
  print(f'[bench] sweep, batch 256: {args.reps} interleaved repetitions', flush=True)
  times = timing.interleave(timers, args.reps, warm_up=False)
  for point in out['sweep']:
    k = point['k']
    point.update(epoch_s=statistics.median(times[k]), times_s=times[k],
                 speedup=timing.paired_ratio([k * t for t in times[1]], times[k]))
  write_json(args.json, out)

  structure = dataclasses.replace(STRUCTURE, batch_size=1)
  rows = args.sweep1_rows
  x, y = split.x_train[:rows], split.y_train[:rows]
  print(f'[bench] sweep, batch 1: {args.reps} + 1 interleaved epochs of {rows} rows',
        flush=True)
  epochs = {k: contenders.chunked_engine_epoch(structure, x, y, contenders.learning_rates(k))
            for k in ks}
  times = timing.interleave(epochs, args.reps)
  out['sweep_batch1'] = [
      dict(k=k, rows=rows, epoch_s=statistics.median(times[k]), times_s=times[k],
           speedup=timing.paired_ratio([k * t for t in times[1]], times[k])) for k in ks]
  write_json(args.json, out)


def invariance(split, args, out: dict) -> None:
  """Section 5: what the layout-invariant arithmetic costs. K members in one program
  laid out as the planner lays them (plan.cut), their training pass vmapped (a batched
  matmul per layer: today's fast path) against mapped one by one (lax.map: each member
  computed as it is alone, so its bits do not depend on K or the devices), at batch 256
  on the 48,000 rows and at batch 1 on --sweep1_rows rows."""
  out['invariance'] = []
  for batch, rows in ((256, len(split.x_train)), (1, args.sweep1_rows)):
    structure = dataclasses.replace(STRUCTURE, batch_size=batch)
    x, y = split.x_train[:rows], split.y_train[:rows]
    for k in (1, 2, 4, 8):
      rates = contenders.learning_rates(k)
      print(f'[bench] invariance, batch {batch}: K={k}, compiling both', flush=True)
      timers = {mode: contenders.engine_loop(structure, x, y, rates,
                                             sequential=mode == 'invariant')[0]
                for mode in ('batched', 'invariant')}
      times = timing.interleave(timers, args.reps)
      out['invariance'].append(dict(
          batch=batch, rows=rows, k=k, batched_s=statistics.median(times['batched']),
          invariant_s=statistics.median(times['invariant']),
          ratio=timing.paired_ratio(times['invariant'], times['batched']),
          times_s=times))
      write_json(args.json, out)


def checkpoint_section(split, args, out: dict) -> None:
  """Section 4: the baseline study's program without and with in-program checkpoints."""
  device_data = devices.put_data(split, devices.member_mesh())
  epochs = args.checkpoint_epochs
  names = ('none', *CHECKPOINT_POLICIES)
  members = len(contenders.baseline_members())
  print(f"[bench] checkpoint: {members} members, {epochs} epochs, policies "
        f"{', '.join(names)}: a warm-up, then {args.reps} interleaved repetitions",
        flush=True)
  with tempfile.TemporaryDirectory(prefix='jaxmlp-bench-checkpoints-') as folder:
    timers, runs = {}, {}
    for name in names:
      timers[name], runs[name] = contenders.checkpoint_timer(
          None if name == 'none' else name, device_data, epochs, Path(folder) / name)
      timers[name]()  # compiles (the first run_program of its layout), imports orbax
      runs[name].clear()
    times = timing.interleave(timers, args.reps, warm_up=False)
  policies = {}
  for name in names:
    row = dict(epoch_s=statistics.median(times[name]), times_s=times[name], runs=runs[name])
    if name != 'none':
      over = timing.paired_ratio(times[name], times['none'])
      row.update(over_none=over, overhead_pct=100 * (over - 1),
                 saved_s=statistics.median(r['saved_s'] for r in runs[name]),
                 saved_pct=statistics.median(100 * r['saved_s'] / r['fit_s']
                                             for r in runs[name]),
                 saves=statistics.median(r['saves'] for r in runs[name]))
    policies[name] = row
  out['checkpoint'] = dict(members=members, members_per_program=runs['none'][0]['slots'],
                           rows=len(split.x_train), epochs=epochs,
                           directory=tempfile.gettempdir(), policies=policies)
  write_json(args.json, out)


def throughput(split, args, out: dict) -> None:
  """Option: training throughput against the matmul rate for a few member counts."""
  flops_per_member = 6 * timing.parameter_count(STRUCTURE) * len(split.x_train)
  size = 2048
  for members in map(int, args.throughput_members.split(',')):
    print(f'[bench] throughput: {members} members, training pass and epoch program, '
          f'{args.reps} + 1 interleaved epochs', flush=True)
    timers = contenders.epoch_program_timers(STRUCTURE, members, split)
    timers['matmul'] = timing.matmul_timer(size)
    times = timing.interleave(timers, args.reps)
    rates = [2 * size**3 / t for t in times['matmul']]
    flops = flops_per_member * members
    over_matmul = lambda name: statistics.median(
        flops / t / rate for t, rate in zip(times[name], rates))
    mesh, block, _ = contenders.engine_program(
        STRUCTURE, members, plan.data_bytes_of(devices.split_arrays(split)),
        len(split.x_train))
    out['throughput'].append(dict(
        members=members, members_per_program=mesh.size * block,
        train_epoch_s=statistics.median(times['train']),
        fit_epoch_s=statistics.median(times['fit']), flops_per_epoch=flops,
        matmul_flops=statistics.median(rates), train_over_matmul=over_matmul('train'),
        fit_over_matmul=over_matmul('fit'), times_s=times))
    write_json(args.json, out)


def preset_parser(doc: str, quick: dict, full: dict, quick_help: str,
                  json_default: str) -> argparse.ArgumentParser:
  """A benchmark's command line: its docstring's first paragraph, --quick and --json
  (fill_preset then gives what was not passed the values of --quick's or the full preset)."""
  parser = argparse.ArgumentParser(
      description=doc.split('\n\n')[0].strip(),
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=f'--quick: {quick}. Full (default): {full}.')
  parser.add_argument('--quick', action='store_true', help=quick_help)
  parser.add_argument('--json', default=json_default,
                      help='where the JSON results go (default: %(default)s)')
  return parser


def fill_preset(args: argparse.Namespace, quick: dict, full: dict) -> None:
  for field, value in (quick if args.quick else full).items():
    if getattr(args, field) is None:
      setattr(args, field, value)


def parse_args(argv=None):
  parser = preset_parser(__doc__, QUICK, FULL, 'fewer repetitions, rows and members '
                         '(~2 minutes on 2 CPU cores)', 'bench.json')
  parser.add_argument('--reps', type=int, help='timed repetitions per measurement')
  parser.add_argument('--batch1_rows', type=int,
                      help='training rows for the batch-1 engine/naive/floor comparison')
  parser.add_argument('--sweep1_rows', type=int, help='training rows for the batch-1 sweep')
  parser.add_argument('--ks', help='comma-separated member counts for the sweeps')
  parser.add_argument('--checkpoint_epochs', type=int,
                      help='epochs of each run in the checkpoint section')
  parser.add_argument('--throughput_members', default='1,3',
                      help='comma-separated member counts for --sections=throughput '
                      '(default: %(default)s)')
  parser.add_argument('--sections', default=DEFAULT_SECTIONS,
                      help=f'which sections to run, of {", ".join(SECTIONS)} '
                      '(default: %(default)s)')
  parser.add_argument('--data_dir', default=None,
                      help='MNIST IDX folder (default: $MNIST_DIR or the cache)')
  parser.add_argument('--cpu_devices', type=int, default=0,
                      help='as jaxmlp.launch: JAX devices a CPU is split into (0: one per '
                      'core); members shard over them')
  parser.add_argument('--matmul_precision', default='float32',
                      choices=['float32', 'tensorfloat32', 'bfloat16'],
                      help='as jaxmlp.launch; float32 reproduces Keras')
  args = parser.parse_args(argv)
  fill_preset(args, QUICK, FULL)
  if args.cpu_devices < 0:
    parser.error('--cpu_devices must be 0 (one per core) or more')
  if min(args.reps, args.batch1_rows, args.sweep1_rows, args.checkpoint_epochs) < 1:
    parser.error('--reps, --batch1_rows, --sweep1_rows and --checkpoint_epochs must be '
                 'at least 1')
  for flag in ('ks', 'throughput_members'):
    try:
      if min(map(int, getattr(args, flag).split(','))) < 1:
        raise ValueError
    except ValueError:
      parser.error(f'--{flag}={getattr(args, flag)}: give positive integers, e.g. 1,4,16')
  unknown = set(args.sections.split(',')) - set(SECTIONS)
  if unknown:
    parser.error(f'--sections: unknown {sorted(unknown)}; choose from {", ".join(SECTIONS)}')
  return args


def main(argv=None):
  args = parse_args(argv)
  devices.use_cpu_cores(args.cpu_devices)
  jax.config.update('jax_default_matmul_precision', args.matmul_precision)
  begin = time.perf_counter()
  split = data_lib.split(data_lib.load('idx', args.data_dir))
  out = dict(environment=environment(), quick=args.quick, reps=args.reps,
             parameters=timing.parameter_count(STRUCTURE), structure=str(STRUCTURE),
             floors=dict(dispatch_s=timing.dispatch_seconds()), loops={}, sweep=[],
             sweep_batch1=[], checkpoint={}, throughput=[], invariance=[])
  sections = args.sections.split(',')
  print(f"[bench] {out['environment']['device']} x{out['environment']['device_count']}, "
        f"jax {jax.__version__}; json: {args.json}", flush=True)
  if 'loops' in sections:
    compare_loops(split, args, out)
  if 'sweep' in sections:
    sweep(split, args, out)
  if 'checkpoint' in sections:
    checkpoint_section(split, args, out)
  if 'throughput' in sections:
    throughput(split, args, out)
  if 'invariance' in sections:
    invariance(split, args, out)
  out['total_s'] = time.perf_counter() - begin
  out['environment']['load_average_at_end'] = _load_average()
  out['markdown'] = render(out)
  write_json(args.json, out)
  print()
  print(out['markdown'])


if __name__ == '__main__':
  main()
