"""What bench.py times: the engine's programs, the naive jitted loop, Keras' fit, and
in-program checkpoints.

Every engine contender runs the program program_lib.build_program builds for its group's
layout, the same compiled functions program_lib.run_program runs: "one helper builds a
group's program for the engine and the benchmark alike". Each timer returns the
seconds of one repetition, for timing.interleave.
"""

import dataclasses
import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxmlp.engine import checkpoint
from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.engine import program as program_lib
from jaxmlp.core import optim
from jaxmlp.studies import study
from jaxmlp.core import train

STRUCTURE = train.Structure()  # the baseline: 784-128-256-10, glorot, Adam, batch 256


def baseline_hparams(learning_rates) -> dict[str, np.ndarray]:
  """The baseline's numeric hyperparameters for len(learning_rates) members."""
  n = len(learning_rates)
  hp = {k: np.full(n, v, np.float32) for k, v in study.hparams_of(study.baseline()).items()}
  hp['learning_rate'] = np.asarray(learning_rates, np.float32)
  return hp


def learning_rates(k: int) -> np.ndarray:
  return np.geomspace(1e-4, 1e-2, k) if k > 1 else np.array([1e-3])


def engine_program(structure: train.Structure, k: int, data_bytes: int, rows: int,
                   planned: plan.PlannedProgram | None = None,
                   sequential: bool | None = None):
  """(mesh, block, Program): the layout the planner gives a program of k members (a
  group of k asking for k a program, unless `planned`) and program_lib.build_program's
  functions for it (default Tracking, as the baseline's); `sequential`: members mapped
  one by one (arithmetic 'alone'), or vmapped ('batched'); None: the structure's own."""
  if planned is None:
    planned, = plan.cut(structure, [False] * k, k, data_bytes, rows)
  mesh, block = planned.layout(devices.member_mesh())
  if sequential is not None:
    structure = dataclasses.replace(structure, arithmetic='alone' if sequential else 'batched')
  return mesh, block, program_lib.build_program(structure, train.Tracking(), mesh, block)


def member_put(mesh, size: int) -> Callable[[np.ndarray], jax.Array]:
  """Host arrays of the real members onto the mesh, padded to `size` members, as
  program_lib.run_program puts them."""
  sharding = NamedSharding(mesh, P(devices.MEMBER_AXIS))
  return lambda a: devices.to_devices(devices.pad_members(np.asarray(a), size), sharding)


def engine_loop(structure, x_u8, y, learning_rates=(1e-3,), planned=None,
                sequential: bool | None = None):
  """The engine's training pass for len(learning_rates) members.

  Program.train_pass of program_lib.build_program: the engine's epoch program minus the
  validation pass (train.train_epoch, vmapped over the members, squeezed for one,
  state donated). Returns (epoch, weights): epoch() trains one epoch and returns its
  seconds; weights() is member 0's weights now, on the host. `planned`: the program
  of the planner's this is (else one of all the members); `sequential`: see
  engine_program.
  """
  k = len(learning_rates)
  mesh, block, program = engine_program(structure, k, x_u8.nbytes + y.nbytes, len(x_u8),
                                        planned, sequential)
  put = member_put(mesh, block * mesh.size)
  replicated = NamedSharding(mesh, P())
  hp_M = {name: put(v) for name, v in baseline_hparams(learning_rates).items()}
  x_ND = jax.device_put(x_u8, replicated)
  y_N = jax.device_put(y, replicated)
  run = dict(state=program.init(put(np.zeros(k, np.uint32)), hp_M,
                                put(np.zeros(k, np.int32))))

  def epoch() -> float:
    start = time.perf_counter()
    run['state'], sums = program.train_pass(run['state'], hp_M, x_ND, y_N)
    jax.block_until_ready((run['state'], sums))
    return time.perf_counter() - start

  return epoch, lambda: jax.tree.map(lambda a: a[0], devices.to_host(run['state'].params))


def epoch_program_timers(structure, members: int, split) -> dict[str, Callable[[], float]]:
  """The engine's training pass and its whole epoch program (training, the validation
  pass and the tracker: Program.epoch, what run_program calls each epoch) for
  `members` seeds of the baseline, on the whole split: {'train', 'fit'} -> timers of
  one epoch's seconds. Both advance the same members."""
  mesh, block, program = engine_program(
      structure, members, plan.data_bytes_of(devices.split_arrays(split)),
      len(split.x_train))
  put = member_put(mesh, block * mesh.size)
  data = devices.put_data(split, mesh)
  hp_M = {k: put(np.full(members, v, np.float32))
          for k, v in study.hparams_of(study.baseline()).items()}
  state = program.init(put(np.arange(members, dtype=np.uint32)), hp_M,
                       put(np.zeros(members, np.int32)))
  state, tracker = program.start(state, state.params)
  run = dict(state=state, tracker=tracker)

  def train_pass() -> float:
    start = time.perf_counter()
    run['state'], sums = program.train_pass(run['state'], hp_M, data.x_train, data.y_train)
    jax.block_until_ready((run['state'], sums))
    return time.perf_counter() - start

  def fit() -> float:
    start = time.perf_counter()
    run['state'], run['tracker'], metrics = program.epoch(run['state'], run['tracker'],
                                                          hp_M, data)
    jax.block_until_ready((run['state'], metrics))
    return time.perf_counter() - start

  return dict(train=train_pass, fit=fit)


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

  return epoch, lambda: devices.to_host(run['params'])


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


def group_timer(k: int, device_data, epochs: int = 2):
  """A group of K members, planned and run as a study runs it (plan.train_group): its
  seconds per epoch, compiling excluded.

  Each program reports its wall time (every epoch's training, validation and metrics'
  trip to the host, then the test pass); a group larger than plan.members_per_program
  runs as several programs, one after another, so their times add up. Repeated calls
  reuse the compiled programs. Returns (timer, {'outcomes': the last call's}).
  """
  last = {}

  def timer() -> float:
    outcomes = plan.train_group(
        STRUCTURE, baseline_hparams(learning_rates(k)), np.zeros(k, np.int64), device_data,
        epochs, devices.member_mesh())
    last['outcomes'] = outcomes
    return plan.seconds(outcomes)[1] / epochs

  return timer, last


def chunked_engine_epoch(structure, x_u8, y, rates) -> Callable[[], float]:
  """The training pass of K members in the programs the planner cuts them into
  (plan.cut), one after another: seconds per epoch."""
  programs = plan.cut(structure, [False] * len(rates), 0, x_u8.nbytes + y.nbytes,
                      len(x_u8))
  loops = [engine_loop(structure, x_u8, y, np.asarray(rates)[list(p.members)], p)[0]
           for p in programs]
  return lambda: sum(loop() for loop in loops)


class CountingCheckpoint(checkpoint.ProgramCheckpoint):
  """A ProgramCheckpoint that counts the checkpoints it saved."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.saves = 0

  def save(self, *args, **kwargs) -> None:
    super().save(*args, **kwargs)
    self.saves += 1


def baseline_members() -> list[study.Member]:
  """The baseline study's members (3 seeds of one configuration)."""
  return study.expand(study.make_config(name='baseline'))


def checkpoint_timer(policy: str | None, device_data, epochs: int, folder: Path):
  """The baseline study's members, planned and run as the runner runs them (one
  program, plan.cut and plan.run), for `epochs` epochs, with in-program
  checkpoints in `folder` saved as checkpoint.Policy.parse(policy) says, or none (None).

  Returns (timer, runs): timer() returns the program's fit_time_s per epoch (training,
  validation, the host's bookkeeping between epochs, the saves, the test pass) and
  appends dict(fit_s, saved_s, saves, slots) to `runs`: the ProgramCheckpoint's
  saved_seconds (what saving held training up), how many it saved, and the program's
  member slots (padding included). Every call
  starts from an empty folder, which it removes afterwards (waiting for the last write).
  """
  members = baseline_members()
  structure, tracking = members[0].structure, members[0].tracking
  hparams = {f: np.array([m.hparams[f] for m in members]) for f in members[0].hparams}
  seeds = np.array([m.seed for m in members])
  programs = plan.cut(structure, [False] * len(members), 0, plan.data_bytes_of(device_data),
                      len(device_data.x_train))
  assert len(programs) == 1, f'the baseline runs as one program here, not {len(programs)}'
  runs = []

  def timer() -> float:
    ckpt = None
    if policy is not None:
      ckpt = CountingCheckpoint(folder / f'run{len(runs)}', checkpoint.Policy.parse(policy),
                                log=lambda _: None)
    try:
      (_, result), = plan.run(structure, tracking, programs, hparams, seeds, device_data,
                              epochs, devices.member_mesh(),
                              checkpoint_for=None if ckpt is None else lambda _: ckpt)
    finally:
      if ckpt is not None:
        ckpt.delete()  # closes the manager, which waits for the last write
    fit_s = float(result.fit_time_s[0])
    runs.append(dict(fit_s=fit_s, saved_s=ckpt.saved_seconds if ckpt else 0.0,
                     saves=ckpt.saves if ckpt else 0,
                     slots=int(result.members_per_program[0])))
    return fit_s / epochs

  return timer, runs
