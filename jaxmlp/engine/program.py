"""Trains a group's members (one Structure) as compiled, vmapped, sharded programs.

A program holds a block of members per device and runs one epoch per call; between
epochs the host records the history, saves checkpoints and honours stop requests
(plan.py decides which members a program takes). Members never interact, so a
diverging member (NaN/inf) cannot disturb the others.
"""

import dataclasses
import functools
import signal
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmlp.engine import checkpoint as checkpoint_lib
from jaxmlp.engine import devices
from jaxmlp.common import faults
from jaxmlp.common import hosts
from jaxmlp.engine import interrupt
from jaxmlp.core import train


def over_members(fn, in_axes, block: int, sequential: bool = False):
  """`fn` of one member, applied to a device's block of members.

  A block of one is squeezed rather than vmapped: XLA's CPU kernels for a
  batched matmul with a batch of one run well below the plain matmul's speed.
  `sequential` maps members one after another, so each gets bit-for-bit what
  it would get alone (a batched matmul may round differently).
  """
  if sequential and block > 1:
    def one_by_one(*args):
      member_args = [a for a, ax in zip(args, in_axes) if ax == 0]
      def call(per_member):
        it = iter(per_member)
        return fn(*(next(it) if ax == 0 else a for a, ax in zip(args, in_axes)))
      return jax.lax.map(call, member_args)
    return one_by_one
  if block > 1:
    return jax.vmap(fn, in_axes=in_axes)
  def single(*args):
    args = [jax.tree.map(lambda x: x[0], a) if ax == 0 else a
            for a, ax in zip(args, in_axes)]
    return jax.tree.map(lambda x: x[None], fn(*args))
  return single


def sharded(fn, in_axes, mesh: Mesh, block: int, sequential: bool = False,
            **jit_kwargs):
  """jit(shard_map(...)): each device runs `fn` over its own block of members."""
  specs = tuple(P(devices.MEMBER_AXIS) if ax == 0 else P() for ax in in_axes)
  return jax.jit(jax.shard_map(over_members(fn, in_axes, block, sequential), mesh=mesh,
                               in_specs=specs, out_specs=P(devices.MEMBER_AXIS),
                               # Members never communicate: no collectives to check.
                               check_vma=False),
                 # Stated, so that outputs fed back in (a slot program's state) come
                 # with the sharding they went in with, even on a one-device mesh, and
                 # jit's cache finds the same executable.
                 out_shardings=NamedSharding(mesh, P(devices.MEMBER_AXIS)), **jit_kwargs)


class Program(NamedTuple):
  """A group's compiled functions, member axis first (M = devices x block)."""
  init: Callable      # (seed_M, hparams_M, first_epoch_M) -> TrainState
  start: Callable     # (state, params) -> (state with params, Tracker)
  epoch: Callable     # (state, tracker, hparams_M, data) -> (state, tracker, EpochMetrics)
  test: Callable      # (params, x, y, hparams_M) -> Evaluation
  select: Callable    # (take_M, new, old) -> new where take_M, else old (a slot refill)
  train_pass: Callable  # (state, hparams_M, x, y) -> (state, Sums): training alone
                        # (what the benchmark times against a naive loop)


# Programs kept compiled. Each costs a few hundred memory mappings (its executables),
# and a process may hold only 65,530: a study of hundreds of structures must let the
# programs it is done with go.
PROGRAMS_KEPT = 16


@functools.lru_cache(maxsize=PROGRAMS_KEPT)
def build_program(structure: train.Structure, tracking: train.Tracking, mesh: Mesh,
                  block: int) -> Program:
  """The one place programs are built (the engine and the benchmark use it); jit's
  cache keeps one executable per shape. Where the structure's arithmetic is 'alone'
  (train.Structure.alone), a device's members run one after another (lax.map), so
  that each member's numbers are what it gets alone whatever the block and the
  device count; else they are vmapped (a batched matmul per layer, see over_members)."""
  sequential = structure.alone(mesh.devices.flat[0].platform)
  partial = lambda fn, **kw: functools.partial(fn, structure=structure, **kw)
  init = sharded(lambda seed, hparams, first_epoch: train.init_state(
      seed, hparams, structure, first_epoch=first_epoch), (0, 0, 0), mesh, block)
  start = sharded(lambda state, params: (state._replace(params=params),
                                         train.init_tracker(params, tracking)),
                  (0, 0), mesh, block)
  epoch = sharded(partial(train.tracked_epoch, tracking=tracking), (0, 0, 0, None),
                  mesh, block, sequential, donate_argnums=(0, 1))
  # The test pass is cheap: run it member by member so that a saved member
  # evaluated alone (jaxmlp.evaluate) reproduces its numbers exactly.
  test = sharded(partial(train.evaluate), (0, None, None, 0), mesh, block, sequential=True)
  select = sharded(lambda take, new, old: jax.tree.map(
      lambda a, b: jax.numpy.where(take, a, b), new, old), (0, 0, 0), mesh, block)
  train_pass = sharded(lambda state, hparams, x, y: train.train_epoch(
      state, x, y, hparams, structure), (0, 0, None, None), mesh, block, sequential,
                       donate_argnums=(0,))
  return Program(init, start, epoch, test, select, train_pass)


@dataclasses.dataclass
class GroupResult:
  """Per-member arrays and pytrees, member axis first."""
  history: dict[str, np.ndarray]      # name -> (M, epochs); NaN after an early stop
  test_loss: np.ndarray               # (M,)
  test_accuracy: np.ndarray           # (M,)
  test_f1: np.ndarray                 # (M,) macro-F1
  weight_updates: np.ndarray          # (M,)
  epochs_trained: np.ndarray          # (M,) fewer than asked after an early stop
  best_epoch: np.ndarray              # (M,) by the tracking objective, 0-based in history
  initial_params: dict                # pytree of (M, ...) arrays
  final_params: dict
  best_params: dict                   # the weights of the best epoch
  fit_time_s: np.ndarray              # (M,) wall time of the program the member ran in
  compile_time_s: np.ndarray          # (M,)
  members_per_program: np.ndarray     # (M,) the program's slots, padding included
  # name -> (M, epochs): the hyperparameters each epoch trained with, where an `evolve`
  # changed them (population-based training); None for every other program.
  schedule: dict[str, np.ndarray] | None = None


class Evolve(Protocol):
  """What changes a program's members between epochs (search/pbt/_evolve.py): it owns
  their hyperparameters and may replace member rows of the state and tracker, without
  changing a shape, so the epoch program is compiled once. Its own state is host
  arrays of fixed shapes, kept in the program's checkpoint."""

  hparams: dict[str, np.ndarray]   # name -> (n,): what the members train with now
  # Optionally `layout`: (mesh, members per device) the program must run in, in place
  # of the planner's (plan.run reads it).

  def saved(self) -> dict[str, np.ndarray]:
    """Its state, as a checkpoint holds it (the same shapes from the start)."""

  def restore(self, saved: dict[str, np.ndarray], done: int) -> None:
    """Its state as of `done` epochs, from a checkpoint's `saved()`."""

  def prepare(self, state: train.TrainState, tracker: train.Tracker) -> None:
    """Before the first epoch: compile what it runs between epochs."""

  def used(self, epoch: int) -> dict[str, np.ndarray]:
    """'hp/<name>' -> (n,): the hyperparameters epoch `epoch` trained with."""

  def after_epoch(self, done: int, state: train.TrainState, tracker: train.Tracker,
                  history: dict[str, np.ndarray]) -> tuple[Any, Any, bool]:
    """(state, tracker, whether `hparams` changed) after `done` epochs; it may rewrite
    `history` rows (a member that copies another takes its past too)."""

  def finish(self) -> dict[str, np.ndarray]:
    """The schedule (GroupResult.schedule), once the last epoch has run."""


def _first(tree, n: int):
  """The real members' rows of a (padded, sharded) member-axis pytree, on the host."""
  return jax.tree.map(lambda x: x[:n], devices.to_host(tree))


def _savable(state: train.TrainState, tracker: train.Tracker):
  """Random keys as their raw data, which a checkpoint can hold."""
  return state._replace(key=jax.random.key_data(state.key)), tracker


def _unsavable(state: train.TrainState, tracker: train.Tracker):
  return state._replace(key=jax.random.wrap_key_data(state.key)), tracker


def _restore(checkpoint: checkpoint_lib.ProgramCheckpoint | None, state: train.TrainState,
             tracker: train.Tracker, history: dict[str, np.ndarray], epochs: int,
             member_sharding: NamedSharding, evolve: Evolve | None = None):
  """(state, tracker, history, epochs done, fit seconds so far): the program's latest
  checkpoint's, where it has one; else as they are, at epoch 0. An `evolve`'s state is
  saved beside them (a program without one saves what it always did)."""
  restored = None
  if checkpoint is not None:
    template = (jax.eval_shape(_savable, state, tracker), history)
    if evolve is not None:
      template += (evolve.saved(),)
    restored = checkpoint.restore(template)
  if restored is None:
    return state, tracker, history, 0, 0.0
  (saved_state, history, *evolved), meta = restored
  state, tracker = _unsavable(*jax.tree.map(
      lambda x: devices.to_devices(x, member_sharding), saved_state))
  done = int(meta['epochs_done'])
  if evolve is not None:
    evolve.restore(evolved[0], done)
  checkpoint.log(f'resumed at epoch {done} of {epochs} from its checkpoint')
  return state, tracker, history, done, float(meta['fit_time_s'])


def _after_epoch(checkpoint: checkpoint_lib.ProgramCheckpoint | None, done: int,
                 epochs: int, stopped: np.ndarray, saved_tree: Callable[[], Any],
                 fit_time: Callable[[], float]) -> None:
  """Between epochs: a checkpoint when its policy says, or when a stop is requested
  (SIGTERM, Ctrl-C, on any process), which then raises interrupt.Stopped."""
  more = done < epochs and not stopped.all()
  stop = hosts.any_process(interrupt.requested() is not None) and more
  if checkpoint is not None and more and (stop or checkpoint.due(done)):
    checkpoint.save(done, saved_tree, dict(fit_time_s=fit_time(), epochs=epochs))
  faults.passed('epoch')   # a test's kill leaves what one after this epoch leaves
  if stop:
    if checkpoint is not None:
      checkpoint.wait()
    what = 'saved a checkpoint' if checkpoint is not None else 'stopped'
    raise interrupt.Stopped(interrupt.requested() or signal.SIGTERM,
                            f'{what} at epoch {done} of {epochs}')


def run_program(structure: train.Structure, tracking: train.Tracking,
                hparams: dict[str, np.ndarray], seeds: np.ndarray, data: devices.DeviceData,
                epochs: int, layout: tuple[Mesh, int], *,
                initial_params: dict | None = None, first_epoch: int = 0,
                on_epoch: Callable[[int, dict[str, np.ndarray]], None] | None = None,
                checkpoint: checkpoint_lib.ProgramCheckpoint | None = None,
                evolve: Evolve | None = None) -> GroupResult:
  """Trains `len(seeds)` members for `epochs` epochs, or until all stopped early, then
  tests them, laid out as `layout` says: (the program's mesh, members per device),
  which plan.PlannedProgram.layout gives; the members are padded to fill it.

  `initial_params` (member axis first) replaces the initial weights, with a fresh
  optimizer state, as keras_tuner's continued trials reload weights; `first_epoch`
  numbers the epochs on from there. `on_epoch(epoch, metrics)` is called between
  epochs. With a `checkpoint`, the program continues from its latest one, saves
  as its policy says, and on a stop request (SIGTERM, Ctrl-C) saves and raises
  interrupt.Stopped. An `evolve` (Evolve) changes the members between epochs and
  owns their hyperparameters; `on_epoch` then also gets them, as 'hp/<name>'.
  """
  n = len(seeds)
  mesh, block = layout
  size = block * mesh.size
  data = devices.data_on(data, mesh)
  member_sharding = NamedSharding(mesh, P(devices.MEMBER_AXIS))
  put = lambda x: devices.to_devices(devices.pad_members(np.asarray(x), size),
                                     member_sharding)
  hparams_M = {k: put(np.asarray(v, np.float32)) for k, v in hparams.items()}
  program = build_program(structure, tracking, mesh, block)

  started = time.perf_counter()
  state = program.init(put(np.asarray(seeds, np.uint32)), hparams_M,
                       put(np.full(n, first_epoch, np.int32)))
  params = state.params if initial_params is None else jax.tree.map(put, initial_params)
  initial = _first(params, n)
  state, tracker = program.start(state, params)
  history = {k: np.full((n, epochs), np.nan, np.float32) for k in train.EpochMetrics._fields}
  state, tracker, history, done, fit_before = _restore(checkpoint, state, tracker, history,
                                                      epochs, member_sharding, evolve)
  if evolve is not None:   # restored: the hyperparameters it had reached
    hparams_M = {k: put(np.asarray(v, np.float32)) for k, v in evolve.hparams.items()}
  compiled = program.epoch.lower(state, tracker, hparams_M, data).compile()
  faults.passed('compile')
  if evolve is not None:
    evolve.prepare(state, tracker)
  jax.block_until_ready(tracker)
  compile_time = time.perf_counter() - started

  started = time.perf_counter()
  stopped = devices.to_host(tracker.stopped)[:n]
  with interrupt.deferred():
    for epoch in range(done, epochs):
      if stopped.all():
        break
      state, tracker, metrics = compiled(state, tracker, hparams_M, data)
      for name, value in devices.to_host(metrics)._asdict().items():
        history[name][:, epoch] = np.where(stopped, np.nan, value[:n])
      stopped = devices.to_host(tracker.stopped)[:n]
      done = epoch + 1
      if on_epoch is not None:
        on_epoch(epoch, {**{k: v[:, epoch] for k, v in history.items()},
                         **(evolve.used(epoch) if evolve is not None else {})})
      if evolve is not None:
        state, tracker, changed = evolve.after_epoch(done, state, tracker, history)
        if changed:   # same shapes and shardings: the compiled epoch takes them as is
          hparams_M = {k: put(np.asarray(v, np.float32)) for k, v in evolve.hparams.items()}
        stopped = devices.to_host(tracker.stopped)[:n]
      _after_epoch(checkpoint, done, epochs, stopped,
                   lambda: (devices.to_host(_savable(state, tracker)),
                            {k: v.copy() for k, v in history.items()},
                            *([evolve.saved()] if evolve is not None else [])),
                   lambda: fit_before + time.perf_counter() - started)
  test_metrics = devices.to_host(program.test(state.params, data.x_test, data.y_test,
                                              hparams_M))
  fit_time = fit_before + time.perf_counter() - started
  first = lambda x: devices.to_host(x)[:n]
  full = lambda value: np.full(n, value)
  return GroupResult(
      history, first(test_metrics.loss), first(test_metrics.accuracy), first(test_metrics.f1),
      first(state.step), first(tracker.epochs_trained),
      first(tracker.best_epoch) - first_epoch, initial, _first(state.params, n),
      _first(tracker.best_params, n), full(fit_time), full(compile_time), full(size),
      None if evolve is None else evolve.finish())


def member(result: GroupResult, k: int) -> dict[str, Any]:
  """Member k's initial, final and best-epoch weights."""
  take = lambda tree: jax.tree.map(lambda x: x[k], tree)
  return dict(initial=take(result.initial_params), final=take(result.final_params),
              best=take(result.best_params))
