"""Runs a group of members (one Structure) as one compiled, vmapped, sharded program.

The member axis is sharded over the devices (a CPU is split into one per core); a
group too large for one program runs in chunks. Members never interact, so a diverging
member (NaN/inf) cannot disturb the others.
"""

import dataclasses
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmlp import train

MEMBER_AXIS = 'members'


class DeviceData(NamedTuple):
  """The whole split, uint8 images, resident on (and replicated over) the devices."""
  x_train: jax.Array
  y_train: jax.Array
  x_val: jax.Array
  y_val: jax.Array
  x_test: jax.Array
  y_test: jax.Array


CGROUP_CPU_MAX = Path('/sys/fs/cgroup/cpu.max')  # "QUOTA PERIOD", or "max PERIOD"


def usable_cores() -> int:
  """The cores this process may use: its affinity mask (where the OS has one), and
  at most a container's CPU quota (cgroup v2, e.g. docker --cpus=2)."""
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:  # macOS and Windows have no affinity call
    cores = os.cpu_count() or 1
  try:
    quota, period = CGROUP_CPU_MAX.read_text().split()
    if quota != 'max':
      cores = min(cores, max(1, int(quota) // int(period)))
  except (OSError, ValueError):
    pass  # no cgroup v2 quota
  return cores


def use_cpu_cores(devices: int = 0) -> int:
  """Splits the host CPU into `devices` JAX devices (0: one per core this process may
  use), so that members shard over the cores; returns the count asked for.

  Devices run their members' programs side by side, while a single device spreads each
  of this model's small matmuls thinly over all cores: on 2 cores, 2 devices trained 4
  members 1.2x faster than 1 device at batch 256, and 1.45x at batch 1
  (benchmarks/RESULTS.md). Each device holds its own copy of the data (55 MB).
  Takes effect only before JAX starts its backends (returns 0 otherwise); a device
  count already given in XLA_FLAGS (--xla_force_host_platform_device_count) wins.
  Accelerators are untouched.
  """
  if 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', ''):
    return 0
  devices = devices or usable_cores()
  try:
    jax.config.update('jax_num_cpu_devices', devices)
  except RuntimeError:
    return 0  # JAX already runs (say, inside a notebook): its devices stay as they are
  return devices


def member_mesh() -> Mesh:
  """Every device of every host: members never talk, so any layout will do."""
  return Mesh(np.array(jax.devices()), (MEMBER_AXIS,))


def program_layout(mesh: Mesh, n_members: int, chunk: int) -> tuple[Mesh, int]:
  """The devices a program of `n_members` runs on, and the members each device takes.

  Members are padded to an equal block per device. On a CPU (one host), a program
  takes as few devices as give each device the same block (1 member on 4 devices: 1
  device; 6 on 4: 3 devices of 2, not 4 devices of 2 with 2 padding slots), since
  padding slots cost real time where devices share the cores. Accelerators and
  several hosts keep every device, and every program of a group takes the block of
  its full `chunk` (engine.members_per_program), so they share one compiled program.
  """
  devices = mesh.devices.ravel()
  if jax.process_count() > 1 or devices[0].platform != 'cpu':
    return mesh, chunk // len(devices)
  block = -(-n_members // min(len(devices), n_members))
  return Mesh(devices[:-(-n_members // block)], (MEMBER_AXIS,)), block


def to_devices(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """Host data onto the mesh; every process holds the same `x`, so each fills in its
  own devices' shards (this works on one host and on many)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def to_host(tree):
  """Member-axis results back on every host, whichever host's devices hold them."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
  return jax.tree.map(np.asarray, jax.device_get(tree))


def put_data(split, mesh: Mesh) -> DeviceData:
  replicated = NamedSharding(mesh, P())
  arrays = (split.x_train, split.y_train, split.x_val, split.y_val, split.x_test,
            split.y_test)
  return DeviceData(*(to_devices(a, replicated) for a in arrays))


def _data_on(data: DeviceData, mesh: Mesh) -> DeviceData:
  """The data on a program's devices: a subset of the devices it was put on."""
  if data.x_train.sharding.device_set == set(mesh.devices.flat):
    return data
  return jax.device_put(data, NamedSharding(mesh, P()))


@dataclasses.dataclass
class GroupResult:
  """Per-member arrays and pytrees, member axis first."""
  history: dict[str, np.ndarray]      # name -> (M, epochs); NaN after an early stop
  test_loss: np.ndarray               # (M,)
  test_accuracy: np.ndarray           # (M,)
  test_f1: np.ndarray                 # (M,) macro-F1
  weight_updates: np.ndarray          # (M,)
  epochs_trained: np.ndarray          # (M,) fewer than asked after an early stop
  best_epoch: np.ndarray              # (M,) by the tracking objective, 0-based
  initial_params: dict                # pytree of (M, ...) arrays
  final_params: dict
  best_params: dict                   # the weights of the best epoch
  fit_time_s: np.ndarray              # (M,) wall time of the program the member ran in
  compile_time_s: np.ndarray          # (M,)
  members_per_program: np.ndarray     # (M,)
  chunk_index: np.ndarray             # (M,) which of the group's programs ran it

  def program_seconds(self) -> tuple[float, float]:
    """(compile, fit) seconds of the whole group, summed over the programs it ran as
    (each member carries its own program's times)."""
    programs = {c: (compile_s, fit_s) for c, compile_s, fit_s in
                zip(self.chunk_index.tolist(), self.compile_time_s.tolist(),
                    self.fit_time_s.tolist())}
    return (sum(c for c, _ in programs.values()), sum(f for _, f in programs.values()))


def _device_memory_bytes(device) -> int:
  stats = device.memory_stats() if hasattr(device, 'memory_stats') else None
  if stats and stats.get('bytes_limit'):
    return int(stats['bytes_limit'])
  # CPU devices report no limit: they share the host's memory.
  return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // len(jax.devices())


def bytes_per_member(structure: train.Structure, input_dim: int = 784) -> int:
  """A generous estimate of one member's device footprint while training."""
  sizes = (input_dim, *structure.hidden_sizes, 10)
  params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
  # params, gradients, updates, two optimizer moments, and a copy in flight.
  state = 4 * params * 6
  width = sum(sizes[1:])
  batch = structure.batch_size
  activations = 4 * batch * (width * 4 + (input_dim if structure.shuffle else 0))
  evaluation = 4 * train.EVAL_CHUNK * width * 2
  return state + activations + evaluation


# A CPU gains nothing from wide blocks (one member keeps its cores busy) and loses
# cache locality: benchmarks/RESULTS.md measured 36 members in one block 2.2x slower
# per member-update at batch 1 than blocks of 4, and 0.92x vs 1.06x at batch 256.
CPU_MEMBERS_PER_DEVICE = 4


def members_per_program(structure: train.Structure, requested: int, n_members: int,
                        data_bytes: int) -> int:
  """How many members one program takes: `requested`; or, on an accelerator, what fits
  in half its memory, and on a CPU, CPU_MEMBERS_PER_DEVICE per device."""
  n_devices = len(jax.devices())
  if requested > 0:
    per_device = -(-requested // n_devices)
  else:
    budget = _device_memory_bytes(jax.devices()[0]) // 2 - data_bytes
    per_device = max(1, budget // bytes_per_member(structure))
    if jax.devices()[0].platform == 'cpu':
      per_device = min(per_device, CPU_MEMBERS_PER_DEVICE)
  per_device = min(per_device, -(-n_members // n_devices))
  return per_device * n_devices


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
  specs = tuple(P(MEMBER_AXIS) if ax == 0 else P() for ax in in_axes)
  return jax.jit(jax.shard_map(over_members(fn, in_axes, block, sequential), mesh=mesh,
                               in_specs=specs, out_specs=P(MEMBER_AXIS),
                               # Members never communicate: no collectives to check.
                               check_vma=False),
                 **jit_kwargs)


@functools.lru_cache(maxsize=None)
def _programs(structure: train.Structure, tracking: train.Tracking, mesh: Mesh, block: int):
  """The group's programs; jit's cache keeps one executable per shape."""
  partial = lambda fn, **kw: functools.partial(fn, structure=structure, **kw)
  init = sharded(partial(train.init_state), (0, 0), mesh, block)
  start = sharded(lambda state, params: (state._replace(params=params),
                                         train.init_tracker(params, tracking)),
                  (0, 0), mesh, block)
  epoch = sharded(partial(train.tracked_epoch, tracking=tracking), (0, 0, 0, None, None),
                  mesh, block, donate_argnums=(0, 1))
  # The test pass is cheap: run it member by member so that a saved member
  # evaluated alone (jaxmlp.evaluate) reproduces its numbers exactly.
  test = sharded(partial(train.evaluate), (0, None, None, 0), mesh, block, sequential=True)
  return init, start, epoch, test


def run_group(structure: train.Structure, hparams: dict[str, np.ndarray],
              seeds: np.ndarray, data: DeviceData, epochs: int, mesh: Mesh, *,
              max_members: int = 0, tracking: train.Tracking = train.Tracking(),
              initial_params: dict | None = None, first_epoch: int = 0,
              on_epoch: Callable[[int, int, dict[str, np.ndarray]], None] | None = None,
              ) -> GroupResult:
  """Trains every member of a group for `epochs` epochs (or until all stop early)
  and tests it.

  `initial_params` (member axis first) replaces the initial weights, with a fresh
  optimizer state, as keras_tuner's promoted trials reload weights; `first_epoch`
  numbers the epochs on from there. `on_epoch(done, total, metrics)` is called
  between epochs (never from inside a program), counting over all chunks.
  """
  n = len(seeds)
  data_bytes = sum(a.nbytes for a in data)
  chunk = members_per_program(structure, max_members, n, data_bytes)
  starts = range(0, n, chunk)
  parts = []
  for index, i in enumerate(starts):
    report = None
    if on_epoch is not None:
      report = functools.partial(
          lambda offset, epoch, metrics: on_epoch(offset + epoch + 1, epochs * len(starts),
                                                  metrics), index * epochs)
    take = lambda tree: None if tree is None else jax.tree.map(lambda x: x[i:i + chunk], tree)
    parts.append(_run_chunk(structure, take(hparams), seeds[i:i + chunk], data, epochs, mesh,
                            chunk, tracking, take(initial_params), first_epoch, report))
    parts[-1].chunk_index[:] = index
  concat = lambda *chunks: np.concatenate(chunks)
  return GroupResult(**{f.name: jax.tree.map(concat, *(getattr(p, f.name) for p in parts))
                        for f in dataclasses.fields(GroupResult)})


def pad_members(x: np.ndarray, size: int) -> np.ndarray:
  """Fills the program's unused member slots with copies of the first member."""
  return np.concatenate([x, np.repeat(x[:1], size - len(x), axis=0)])


def _run_chunk(structure, hparams, seeds, data, epochs, mesh, chunk, tracking,
               initial_params, first_epoch, on_epoch):
  n = len(seeds)
  mesh, block = program_layout(mesh, n, chunk)
  size = block * mesh.size
  data = _data_on(data, mesh)
  sharded_ = NamedSharding(mesh, P(MEMBER_AXIS))
  put = lambda x: to_devices(pad_members(np.asarray(x), size), sharded_)
  hparams_M = {k: put(np.asarray(v, np.float32)) for k, v in hparams.items()}
  seeds_M = put(np.asarray(seeds, np.uint32))
  init, start_program, epoch_program, test = _programs(structure, tracking, mesh, block)

  started = time.perf_counter()
  state = init(seeds_M, hparams_M)
  params = state.params if initial_params is None else jax.tree.map(put, initial_params)
  initial = _first(params, n)
  state, tracker = start_program(state, params)
  compiled = epoch_program.lower(state, tracker, hparams_M, jnp.int32(0), data).compile()
  jax.block_until_ready(tracker)
  compile_time = time.perf_counter() - started

  history = {k: np.full((n, epochs), np.nan, np.float32) for k in train.EpochMetrics._fields}
  started = time.perf_counter()
  for epoch in range(epochs):
    was_stopped = to_host(tracker.stopped)[:n]
    state, tracker, metrics = compiled(state, tracker, hparams_M,
                                       jnp.int32(first_epoch + epoch), data)
    for name, value in to_host(metrics)._asdict().items():
      history[name][:, epoch] = np.where(was_stopped, np.nan, value[:n])
    if on_epoch is not None:
      on_epoch(epoch, {k: v[:, epoch] for k, v in history.items()})
    if to_host(tracker.stopped)[:n].all():
      break
  test_metrics = to_host(test(state.params, data.x_test, data.y_test, hparams_M))
  fit_time = time.perf_counter() - started
  first = lambda x: to_host(x)[:n]

  full = lambda value: np.full(n, value)
  return GroupResult(
      history, first(test_metrics.loss), first(test_metrics.accuracy), first(test_metrics.f1),
      first(state.step), first(tracker.epochs_trained), first(tracker.best_epoch), initial,
      _first(state.params, n), _first(tracker.best_params, n), full(fit_time),
      full(compile_time), full(size), full(0))


def _first(tree, n: int):
  """The real members' rows of a (padded, sharded) member-axis pytree, on the host."""
  return jax.tree.map(lambda x: x[:n], to_host(tree))
