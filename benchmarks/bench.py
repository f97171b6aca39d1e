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
   through engine.run_group (the engine's whole epoch: training, validation,
   metrics to the host); at batch 1 as the training pass of section 1.

The JSON (--json) holds every raw time, the environment and the rendered table;
it is rewritten after each section, so a run cut short keeps what it measured.
"""

import argparse
from collections.abc import Callable
import dataclasses
import datetime
import functools
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmlp import data as data_lib
from jaxmlp import engine
from jaxmlp import optim
from jaxmlp import results
from jaxmlp import study
from jaxmlp import train

STRUCTURE = train.Structure()  # the baseline: 784-128-256-10, glorot, Adam, batch 256
QUICK = dict(reps=3, batch1_rows=2000, sweep1_rows=500, ks='1,4,16')
FULL = dict(reps=5, batch1_rows=5000, sweep1_rows=1000, ks='1,4,16,36')


def parameter_count(structure: train.Structure, input_dim: int = 784) -> int:
  sizes = (input_dim, *structure.hidden_sizes, 10)
  return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def adam_update_bytes(params: int) -> int:
  """Bytes one Adam update at batch 1 must move between memory and the cores.

  At batch 1 the matmuls are matrix-vector products: every weight is touched once
  or twice for a handful of FLOPs, so an update is bound by memory traffic, not
  arithmetic. Four float32 arrays of `params` values are each read once and
  written once per update:
    - the parameters w: read by the forward pass, written by the update;
    - the gradient g: written by the backward pass, read by the optimizer;
    - Adam's first moment m: read and written by the update;
    - Adam's second moment v: read and written by the update.
  4 arrays x 2 (read + write) x 4 bytes = 32 bytes per parameter. This is a floor:
  it ignores the backward pass reading w a second time, the activations (about
  1,200 floats, negligible) and the input row; a kernel fusing the backward pass
  into the update could skip materializing g (24 bytes per parameter), but neither
  XLA nor the naive loop does that.
  """
  return 4 * 2 * 4 * params


def baseline_hparams(learning_rates) -> dict[str, np.ndarray]:
  """The baseline's numeric hyperparameters for len(learning_rates) members."""
  base = {k: v for k, v in study.baseline().items() if k in study.HPARAM_FIELDS}
  n = len(learning_rates)
  hp = {k: np.full(n, v, np.float32) for k, v in base.items()}
  hp['learning_rate'] = np.asarray(learning_rates, np.float32)
  return hp


def _median_time(fn, repeats: int) -> float:
  """Median seconds of `repeats` calls of fn, after one call that compiles."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def interleave(contenders: dict[str, Callable[[], float]], reps: int, *,
               warm_up: bool = True) -> dict[str, list[float]]:
  """Times every contender once per repetition, back to back.

  Each contender returns the seconds of one repetition. Interleaving makes any
  change in the machine's load (other processes on shared cores) hit every
  contender alike, so per-repetition ratios between them stay fair.
  """
  if warm_up:
    for fn in contenders.values():
      fn()  # compiles
  times = {name: [] for name in contenders}
  for _ in range(reps):
    for name, fn in contenders.items():
      times[name].append(fn())
  return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
  """The median of per-repetition ratios: robust to load that drifts between repetitions."""
  return statistics.median(a / b for a, b in zip(numerator, denominator))


def matmul_timer(n: int = 2048, calls: int = 3) -> Callable[[], float]:
  """Seconds of one jitted n x n float32 matmul (median of `calls`)."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  return lambda: _median_time(lambda: matmul(a).block_until_ready(), calls)


def axpy_timer(working_set_bytes: int, iters: int = 200, calls: int = 3):
  """Seconds per sweep of y <- 0.5 y + x over arrays whose total size is the working set.

  The loop runs inside one jitted program, so dispatch is paid once per `iters`
  sweeps; each sweep reads x and y and writes y: returns (timer, bytes per sweep).
  """
  n = max(1, working_set_bytes // 8)  # x and y: 8 bytes per index
  x = jnp.ones(n, jnp.float32)
  y = jnp.zeros(n, jnp.float32)
  loop = jax.jit(lambda x, y: jax.lax.fori_loop(0, iters, lambda _, y: 0.5 * y + x, y))
  timer = lambda: _median_time(lambda: loop(x, y).block_until_ready(), calls) / iters
  return timer, 12 * n


def adam_update_timer(structure, updates: int) -> Callable[[], float]:
  """Seconds of `updates` Keras-Adam updates alone, in one compiled loop.

  The engine's optimizer (optim.make_optimizer, baseline hyperparameters as traced
  arrays) applied to the baseline's weights with a fixed gradient: what the update
  costs without the forward and backward passes. The gradient is read from
  memory here, while in a batch-1 training step XLA recomputes it from the two
  vectors of the outer product inside the update's kernels.
  """
  hparams = {k: jnp.asarray(v[0]) for k, v in baseline_hparams([1e-3]).items()}
  tx = structure.optimizer_for(hparams)
  params = train.init_state(0, hparams, structure).params
  grads = jax.tree.map(lambda w: jnp.full_like(w, 1e-3), params)

  @jax.jit
  def loop(params, opt_state, grads, hparams):
    tx = structure.optimizer_for(hparams)

    def update(carry, _):
      params, opt_state = carry
      delta, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, delta), opt_state), None

    return jax.lax.scan(update, (params, opt_state), None, length=updates)[0]

  args = (params, tx.init(params), grads, hparams)

  def timer() -> float:
    start = time.perf_counter()
    jax.block_until_ready(loop(*args))
    return time.perf_counter() - start

  return timer


def dispatch_seconds(repeats: int = 200) -> float:
  """One call of a jitted no-op on a tiny array: the per-call cost a Python loop pays."""
  noop = jax.jit(lambda x: x + 1)
  x = jnp.zeros(4, jnp.float32)
  return _median_time(lambda: noop(x).block_until_ready(), repeats)


def _learning_rates(k: int) -> np.ndarray:
  return np.geomspace(1e-4, 1e-2, k) if k > 1 else np.array([1e-3])


def engine_loop(structure, x_u8, y, learning_rates=(1e-3,)):
  """The engine's training pass for len(learning_rates) members.

  The program is the engine's epoch program minus the validation pass:
  train.train_epoch under engine.sharded, vmapped over the members (squeezed
  for one), state donated. Returns (epoch, weights): epoch() trains one epoch
  and returns its seconds; weights() is member 0's weights now, on the host.
  """
  k = len(learning_rates)
  # Laid out as run_group lays out a program of k members.
  mesh, block = engine.program_layout(engine.member_mesh(), k,
                                      engine.members_per_program(structure, k, k, 0))
  size = block * mesh.size
  # The engine's own init and epoch programs are built the same way (engine.py).
  init = engine.sharded(functools.partial(train.init_state, structure=structure), (0, 0),
                        mesh, block)
  train_epoch = engine.sharded(
      functools.partial(train.train_epoch, structure=structure), (0, None, None, 0, None),
      mesh, block, donate_argnums=0)
  member_sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(engine.MEMBER_AXIS))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  put = lambda a: jax.device_put(engine.pad_members(np.asarray(a), size), member_sharding)
  hp_M = {name: put(v) for name, v in baseline_hparams(learning_rates).items()}
  x_ND = jax.device_put(x_u8, replicated)
  y_N = jax.device_put(y, replicated)
  run = dict(state=init(put(np.zeros(k, np.uint32)), hp_M), epoch=0)

  def epoch() -> float:
    start = time.perf_counter()
    run['state'], sums = train_epoch(run['state'], x_ND, y_N, hp_M, jnp.int32(run['epoch']))
    jax.block_until_ready((run['state'], sums))
    run['epoch'] += 1
    return time.perf_counter() - start

  return epoch, lambda: jax.tree.map(lambda a: a[0], engine.to_host(run['state'].params))


def naive_loop(structure, x_u8, y, params):
  """The tutorial loop: a jitted step, a Python for loop, batches sliced on the host.

  Same model, same optimizer (optim.make_optimizer with the baseline's constants)
  and same loss as the engine, from the given initial weights; data normalized
  once on the host, as tutorials do. Steps are dispatched asynchronously and the
  loop waits once per epoch, the most favourable form of the loop. Returns
  (epoch, weights) as engine_loop does.
  """
  model = structure.model()
  hparams = {name: float(v[0]) for name, v in baseline_hparams([1e-3]).items()}
  tx = optim.make_optimizer(structure.optimizer, hparams, use_l1=False, use_l2=False)

  @jax.jit
  def step(params, opt_state, x_BD, y_B):
    def loss_fn(params):
      logits_BC = model.apply({'params': params}, x_BD)
      return optax.softmax_cross_entropy_with_integer_labels(logits_BC, y_B).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  x_ND = np.asarray(x_u8, np.float32) / 255.0
  batch = structure.batch_size
  params = jax.tree.map(jnp.asarray, params)
  run = dict(params=params, opt_state=tx.init(params))

  def epoch() -> float:
    start = time.perf_counter()
    params, opt_state = run['params'], run['opt_state']
    for i in range(0, len(x_ND), batch):
      params, opt_state, loss = step(params, opt_state, x_ND[i:i + batch], y[i:i + batch])
    jax.block_until_ready((params, loss))
    run.update(params=params, opt_state=opt_state)
    return time.perf_counter() - start

  return epoch, lambda: engine.to_host(run['params'])


def keras_fit(x_u8, y, batch: int):
  """Keras' model.fit with the same settings: (fit or None, note).

  fit(epochs, after_epoch) runs ONE model.fit call, as Keras users do (each fit
  call would compile again), returns every epoch's seconds, and calls
  after_epoch(epoch) between epochs, outside the timed span, so that other
  contenders can be timed between Keras' epochs.
  """
  if importlib.util.find_spec('keras') is None:
    return None, 'keras not installed'
  if 'KERAS_BACKEND' not in os.environ and importlib.util.find_spec('tensorflow') is None:
    # Keras 3 defaults to TensorFlow; without it, run Keras on JAX.
    os.environ['KERAS_BACKEND'] = 'jax'
  try:
    import keras  # pylint: disable=g-import-not-at-top
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        keras.layers.Dense(128, activation='relu', kernel_initializer='glorot_uniform'),
        keras.layers.Dense(256, activation='relu', kernel_initializer='glorot_uniform'),
        keras.layers.Dense(10, activation='softmax', kernel_initializer='glorot_uniform'),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.9,
                                                  beta_2=0.999, epsilon=1e-7),
                  loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    backend = getattr(keras.backend, 'backend', lambda: '?')()
    note = f'keras {keras.__version__} ({backend} backend)'
  except Exception as e:  # pylint: disable=broad-except
    return None, f'keras unusable: {type(e).__name__}: {e}'[:200]
  x_ND = np.asarray(x_u8, np.float32) / 255.0

  def fit(epochs: int, after_epoch: Callable[[int], None]) -> list[float]:
    seconds = []

    class Timer(keras.callbacks.Callback):
      """Times each epoch itself; runs after_epoch once the epoch's time is taken."""

      def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

      def on_epoch_end(self, epoch, logs=None):
        seconds.append(time.perf_counter() - self.start)
        after_epoch(epoch)

    model.fit(x_ND, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[Timer()])
    return seconds

  return fit, note


def run_group_timer(k: int, device_data, epochs: int = 2):
  """One engine.run_group call of K members: its seconds per epoch, compiling excluded.

  run_group reports each program's wall time (every epoch's training, validation and
  metrics' trip to the host, then the test pass); a group larger than
  engine.members_per_program runs as several programs, one after another, so their
  times add up. Repeated calls reuse the compiled programs.
  Returns (timer, result of the last call).
  """
  last = {}

  def timer() -> float:
    result = engine.run_group(
        STRUCTURE, baseline_hparams(_learning_rates(k)), np.zeros(k, np.int64), device_data,
        epochs, engine.member_mesh())
    last['result'] = result
    return result.program_seconds()[1] / epochs

  return timer, last


def chunked_engine_epoch(structure, x_u8, y, learning_rates) -> Callable[[], float]:
  """The training pass of K members split into programs as engine.run_group splits
  them (engine.members_per_program), one after another: seconds per epoch."""
  chunk = engine.members_per_program(structure, 0, len(learning_rates), 0)
  loops = [engine_loop(structure, x_u8, y, learning_rates[i:i + chunk])[0]
           for i in range(0, len(learning_rates), chunk)]
  return lambda: sum(loop() for loop in loops)


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


def _write_json(path: str, payload: dict) -> None:
  """Written after every section and renamed into place: a killed run keeps what it had."""
  results.write_atomic(Path(path), json.dumps(payload, indent=1))


def _max_abs_diff(a, b) -> float:
  return float(max(np.max(np.abs(x - y)) for x, y in zip(jax.tree.leaves(a),
                                                         jax.tree.leaves(b))))


def compare_loops(split, args, out: dict) -> None:
  """Sections 1 and 2: engine, naive loop, Keras and the floor at batch 256 and 1."""
  params = parameter_count(STRUCTURE)
  cases = [('batch256', STRUCTURE, len(split.x_train)),
           ('batch1', dataclasses.replace(STRUCTURE, batch_size=1), args.batch1_rows)]
  for name, structure, rows in cases:
    x, y = split.x_train[:rows], split.y_train[:rows]
    updates = -(-rows // structure.batch_size)
    print(f'[bench] {name}: engine, naive loop, keras and the floor, {args.reps} + 1 '
          f'epochs of {rows} rows each', flush=True)
    engine_epoch, engine_weights = engine_loop(structure, x, y)
    naive_epoch, naive_weights = naive_loop(structure, x, y, engine_weights())
    fit_keras, keras_note = keras_fit(x, y, structure.batch_size)
    # The warm-up epoch compiles; then the same initial weights and batches
    # should give the same weights (later epochs drift apart: Adam's division by
    # sqrt(v) + 1e-7 on tiny gradients amplifies rounding ~1000x per epoch).
    engine_epoch(), naive_epoch()
    diff = _max_abs_diff(engine_weights(), naive_weights())
    if name == 'batch256':
      # The floor: the epoch's FLOPs (forward 2, backward 4 per parameter and
      # row) at the rate of a 2048x2048 float32 matmul.
      floor_name, floor_timer, size = 'matmul', matmul_timer(2048), 2048
      flops = 6 * params * rows
      rates = lambda: [2 * size**3 / t for t in times['matmul']]
      floor_s = lambda: [flops / rate for rate in rates()]
    else:
      # The floor: the bytes every update must move, at the bandwidth measured
      # for the update's working set (w, g, m, v: half the bytes moved).
      moved = adam_update_bytes(params)
      floor_timer, sweep_bytes = axpy_timer(moved // 2)
      floor_name = 'axpy'
      rates = lambda: [sweep_bytes / t for t in times['axpy']]
      floor_s = lambda: [moved / rate * updates for rate in rates()]
    floor_timer()  # compiles
    contenders = {'engine': engine_epoch, 'naive': naive_epoch, floor_name: floor_timer}
    if name == 'batch1':
      # Where a batch-1 update goes: the same training pass with SGD (forward,
      # backward, one elementwise pass over the weights), and the Adam update alone.
      contenders['engine_sgd'] = engine_loop(
          dataclasses.replace(structure, optimizer='sgd'), x, y)[0]
      contenders['adam_update'] = adam_update_timer(structure, updates)
      for timer in (contenders['engine_sgd'], contenders['adam_update']):
        timer()  # compiles
    times = None
    if fit_keras is not None:
      times = {contender: [] for contender in contenders}

      def after(epoch):
        if epoch:  # Keras' first epoch compiled; after each later one, the others once.
          for contender, timer in contenders.items():
            times[contender].append(timer())

      try:
        times['keras'] = fit_keras(args.reps + 1, after)[1:]
      except Exception as e:  # pylint: disable=broad-except
        # E.g. TensorFlow failing to get GPU memory that jax already holds.
        keras_note = f'keras failed: {type(e).__name__}: {e}'[:200]
        times = None
    if times is None:
      times = interleave(contenders, args.reps, warm_up=False)
    median = lambda contender: (statistics.median(times[contender]) if contender in times
                                else None)
    row = dict(batch_size=structure.batch_size, rows=rows, updates_per_epoch=updates,
               engine_epoch_s=median('engine'), naive_epoch_s=median('naive'),
               keras_epoch_s=median('keras'), keras_note=keras_note,
               floor_epoch_s=statistics.median(floor_s()),
               naive_over_engine=paired_ratio(times['naive'], times['engine']),
               keras_over_engine=(paired_ratio(times['keras'], times['engine'])
                                  if 'keras' in times else None),
               engine_over_floor=paired_ratio(times['engine'], floor_s()),
               max_abs_param_diff=diff, times_s=times)
    if name == 'batch256':
      row.update(flops_per_epoch=flops, matmul_flops=statistics.median(rates()))
    else:
      row.update(bytes_per_update=moved, working_set_bytes=moved // 2,
                 bandwidth_bytes_per_s=statistics.median(rates()),
                 engine_sgd_epoch_s=median('engine_sgd'),
                 adam_update_epoch_s=median('adam_update'),
                 adam_update_over_engine=paired_ratio(times['adam_update'],
                                                      times['engine']))
    out['loops'][name] = row
    _write_json(args.json, out)


def sweep(split, args, out: dict) -> None:
  """Section 3: K members in one group, at batch 256 (run_group) and at batch 1."""
  mesh = engine.member_mesh()
  device_data = engine.put_data(split, mesh)
  ks = list(map(int, args.ks.split(',')))
  if 1 not in ks:
    ks = [1, *ks]  # K single runs are K x the 1-member time
  timers, lasts = {}, {}
  for k in ks:
    print(f'[bench] sweep, batch 256: compiling and warming up K={k}', flush=True)
    timers[k], lasts[k] = run_group_timer(k, device_data)
    timers[k]()
    result = lasts[k]['result']
    # A group of several programs compiles each shape it has not seen before.
    out['sweep'].append(dict(k=k, compile_s=result.program_seconds()[0],
                             members_per_program=int(result.members_per_program[0])))
    _write_json(args.json, out)
  print(f'[bench] sweep, batch 256: {args.reps} interleaved repetitions', flush=True)
  times = interleave(timers, args.reps, warm_up=False)
  for point in out['sweep']:
    k = point['k']
    point.update(epoch_s=statistics.median(times[k]), times_s=times[k],
                 speedup=paired_ratio([k * t for t in times[1]], times[k]))
  _write_json(args.json, out)

  structure = dataclasses.replace(STRUCTURE, batch_size=1)
  rows = args.sweep1_rows
  x, y = split.x_train[:rows], split.y_train[:rows]
  print(f'[bench] sweep, batch 1: {args.reps} + 1 interleaved epochs of {rows} rows',
        flush=True)
  epochs = {k: chunked_engine_epoch(structure, x, y, _learning_rates(k)) for k in ks}
  times = interleave(epochs, args.reps)
  out['sweep_batch1'] = [
      dict(k=k, rows=rows, epoch_s=statistics.median(times[k]), times_s=times[k],
           speedup=paired_ratio([k * t for t in times[1]], times[k])) for k in ks]
  _write_json(args.json, out)


def _fmt_s(seconds) -> str:
  if seconds is None:
    return '-'
  if seconds >= 1:
    return f'{seconds:.2f} s'
  if seconds >= 1e-3:
    return f'{seconds * 1e3:.1f} ms'
  return f'{seconds * 1e6:.1f} µs'


def _fmt_compile(seconds: float) -> str:
  # A group whose programs have the shapes of an earlier group's reuses them.
  return f'{seconds:.1f}' if seconds >= 0.05 else 'reused'


def render(out: dict) -> str:
  """The Markdown report: a header, the loops-and-floor table, the sweep tables."""
  env = out['environment']
  params = out['parameters']
  lines = [
      f"jaxmlp benchmark, {env['date']}: {env['device']} x{env['device_count']} "
      f"(host {env['host_cpu']}, {env['host_cores']} cores); jax {env['jax']}, "
      f"flax {env['flax']}, optax {env['optax']}, python {env['python']}.",
      f'Baseline MLP 784-128-256-10 ({params:,} parameters), Keras Adam (lr 1e-3), '
      f'no shuffle, float32 (matmul precision {env["matmul_precision"]}). Times: medians '
      f"of {out['reps']} repetitions after a warm-up, every contender timed back to back "
      'in each repetition; ratios: medians of the per-repetition ratios. '
      f"`{env['command']}`.",
      '',
  ]
  loops = out['loops']
  if loops:
    lines += ['| training pass, 1 member | engine | naive jit loop | naive / engine '
              '| Keras fit | Keras / engine | floor | engine / floor |',
              '|---|---|---|---|---|---|---|---|']
    for row in loops.values():
      per = row['updates_per_epoch'] if row['batch_size'] == 1 else 1
      unit = 'per update' if per > 1 else 'per epoch'
      case = (f"batch {row['batch_size']}, {row['rows']:,} rows "
              f"({row['updates_per_epoch']:,} updates/epoch), {unit}")
      has_keras = row['keras_epoch_s'] is not None
      keras = _fmt_s(row['keras_epoch_s'] / per) if has_keras else row['keras_note']
      keras_ratio = f"{row['keras_over_engine']:.1f}x" if has_keras else '-'
      lines.append(
          f"| {case} | {_fmt_s(row['engine_epoch_s'] / per)} | "
          f"{_fmt_s(row['naive_epoch_s'] / per)} | {row['naive_over_engine']:.1f}x | "
          f"{keras} | {keras_ratio} | {_fmt_s(row['floor_epoch_s'] / per)} | "
          f"{row['engine_over_floor']:.1f}x |")
    lines.append('')
    notes = []
    if 'batch256' in loops:
      r = loops['batch256']
      notes.append(f"floor at batch 256: 6 x {params:,} parameters x {r['rows']:,} rows = "
                   f"{r['flops_per_epoch'] / 1e9:.1f} GFLOP per epoch at "
                   f"{r['matmul_flops'] / 1e9:.1f} GFLOP/s (2048x2048 float32 jax matmul); "
                   f"the engine's training pass reaches "
                   f"{r['flops_per_epoch'] / r['engine_epoch_s'] / 1e9:.1f} GFLOP/s.")
    if 'batch1' in loops:
      r = loops['batch1']
      notes.append(f"floor at batch 1: 32 bytes x {params:,} parameters = "
                   f"{r['bytes_per_update'] / 1e6:.2f} MB per update (w, gradient, Adam m and "
                   f"v, each read and written once) at {r['bandwidth_bytes_per_s'] / 1e9:.1f} "
                   f"GB/s (jitted axpy loop over a {r['working_set_bytes'] / 1e6:.2f} MB "
                   f"working set); a jitted no-op costs {_fmt_s(out['floors']['dispatch_s'])} "
                   'per call from Python.')
      if r.get('adam_update_epoch_s') is not None:
        per = r['updates_per_epoch']
        notes.append(
            f"where a batch-1 update goes: the same training pass with SGD instead of "
            f"Adam takes {_fmt_s(r['engine_sgd_epoch_s'] / per)} per update (forward, "
            f"backward, one elementwise pass over the weights); Keras' Adam update "
            f"alone, over a fixed gradient, takes {_fmt_s(r['adam_update_epoch_s'] / per)}"
            f" ({r['adam_update_over_engine']:.0%} of the engine's training step)."
            + (' XLA:CPU writes m, v and w in three separate elementwise passes per '
               'weight array (it has no multi-output fusion), so the update moves 40 '
               'bytes per parameter here, and 32 in the training step, where the '
               'gradient is recomputed inside the m and v passes.'
               if out['environment']['device'].startswith('cpu') else ''))
    keras_notes = {r['keras_note'] for r in loops.values() if r['keras_epoch_s'] is not None}
    if keras_notes:
      notes.append(f"Keras: {', '.join(sorted(keras_notes))}; model.fit(shuffle=False), "
                   'sparse categorical cross-entropy on a softmax output, accuracy metric.')
    diffs = ', '.join(f"batch {r['batch_size']} {r['max_abs_param_diff']:.1e}"
                      for r in loops.values())
    notes.append('same computation check, max |engine weights - naive weights| after '
                 f'one epoch from the same initial weights: {diffs}.')
    lines += [f'- {n}' for n in notes] + ['']
  sweep_256 = [p for p in out['sweep'] if 'epoch_s' in p]
  if sweep_256:
    one = next(p for p in sweep_256 if p['k'] == 1)
    lines += ['| sweep, batch 256, 48,000 rows + validation | one vmapped group s/epoch '
              '| K single runs s/epoch (K x 1-member) | speedup | s/epoch per member '
              '| compile s (per group) |', '|---|---|---|---|---|---|']
    for p in sweep_256:
      lines.append(f"| K = {p['k']} | {p['epoch_s']:.3f} | {p['k'] * one['epoch_s']:.3f} | "
                   f"{p['speedup']:.2f}x | {p['epoch_s'] / p['k']:.3f} | "
                   f"{_fmt_compile(p['compile_s'])} |")
    lines.append('')
  if out['sweep_batch1']:
    one = next(p for p in out['sweep_batch1'] if p['k'] == 1)
    rows = one['rows']
    lines += [f'| sweep, batch 1, {rows:,} rows, training pass | one vmapped group per update '
              '| K single runs per update (K x 1-member) | speedup | per member-update |',
              '|---|---|---|---|---|']
    for p in out['sweep_batch1']:
      update = p['epoch_s'] / rows
      lines.append(f"| K = {p['k']} | {_fmt_s(update)} | "
                   f"{_fmt_s(p['k'] * one['epoch_s'] / rows)} | {p['speedup']:.2f}x | "
                   f"{_fmt_s(update / p['k'])} |")
    lines.append('')
  if sweep_256 or out['sweep_batch1']:
    lines += ['- K members differ in learning rate (log-spaced 1e-4..1e-2); at batch 256 '
              'they run as one engine.run_group call (epoch = training + validation + '
              'metrics to the host), at batch 1 as the training pass of the first table, '
              'both split as run_group splits them: programs of up to 4 members per CPU '
              'device (engine.members_per_program) run one after another, each on as few '
              'of the devices as give every device the same number of members '
              '(engine.program_layout). "K single runs" '
              'is K x the 1-member time measured in the same repetitions (compilation '
              'paid once, as a loop in one process would).', '']
  if 'total_s' in out:
    lines.append(f"total benchmark time {out['total_s']:.0f} s; 1-minute load average "
                 f"{env['load_average_at_start']} at the start, "
                 f"{env.get('load_average_at_end')} at the end ({env['host_cores']} cores).")
  return '\n'.join(lines).rstrip('\n')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n')[0].strip(),
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=f'--quick: {QUICK}. Full (default): {FULL}.')
  parser.add_argument('--quick', action='store_true',
                      help='fewer repetitions, rows and members (~2 minutes on 2 CPU cores)')
  parser.add_argument('--json', default='bench.json',
                      help='where the JSON results go (default: %(default)s)')
  parser.add_argument('--reps', type=int, help='timed repetitions per measurement')
  parser.add_argument('--batch1_rows', type=int,
                      help='training rows for the batch-1 engine/naive/floor comparison')
  parser.add_argument('--sweep1_rows', type=int, help='training rows for the batch-1 sweep')
  parser.add_argument('--ks', help='comma-separated member counts for the sweeps')
  parser.add_argument('--sections', default='loops,sweep',
                      help='which sections to run (default: %(default)s)')
  parser.add_argument('--data_dir', default=None,
                      help='MNIST IDX folder (default: $MNIST_DIR or the cache)')
  parser.add_argument('--cpu_devices', type=int, default=0,
                      help='as jaxmlp.launch: JAX devices a CPU is split into (0: one per '
                      'core); members shard over them')
  parser.add_argument('--matmul_precision', default='float32',
                      choices=['float32', 'tensorfloat32', 'bfloat16'],
                      help='as jaxmlp.launch; float32 reproduces Keras')
  args = parser.parse_args(argv)
  for field, value in (QUICK if args.quick else FULL).items():
    if getattr(args, field) is None:
      setattr(args, field, value)
  if args.cpu_devices < 0:
    parser.error('--cpu_devices must be 0 (one per core) or more')
  if min(args.reps, args.batch1_rows, args.sweep1_rows) < 1:
    parser.error('--reps, --batch1_rows and --sweep1_rows must be at least 1')
  try:
    if min(map(int, args.ks.split(','))) < 1:
      raise ValueError
  except ValueError:
    parser.error(f'--ks={args.ks}: give positive integers, e.g. --ks=1,4,16')
  unknown = set(args.sections.split(',')) - {'loops', 'sweep'}
  if unknown:
    parser.error(f'--sections: unknown {sorted(unknown)}; choose from loops, sweep')
  return args


def main(argv=None):
  args = parse_args(argv)
  engine.use_cpu_cores(args.cpu_devices)
  jax.config.update('jax_default_matmul_precision', args.matmul_precision)
  begin = time.perf_counter()
  split = data_lib.split(data_lib.load('idx', args.data_dir))
  out = dict(environment=environment(), quick=args.quick, reps=args.reps,
             parameters=parameter_count(STRUCTURE), structure=str(STRUCTURE),
             floors=dict(dispatch_s=dispatch_seconds()), loops={}, sweep=[],
             sweep_batch1=[])
  sections = args.sections.split(',')
  print(f"[bench] {out['environment']['device']} x{out['environment']['device_count']}, "
        f"jax {jax.__version__}; json: {args.json}", flush=True)
  if 'loops' in sections:
    compare_loops(split, args, out)
  if 'sweep' in sections:
    sweep(split, args, out)
  out['total_s'] = time.perf_counter() - begin
  out['environment']['load_average_at_end'] = _load_average()
  out['markdown'] = render(out)
  _write_json(args.json, out)
  print()
  print(out['markdown'])


if __name__ == '__main__':
  main()
