"""A compiled program whose member slots are filled and refilled while it runs.

A search (search/optuna/_worker.py) hands a slot a new trial between epochs: its
hyperparameters, fresh weights and optimizer state from its own seed, its epoch
count from zero. The shapes never change, so nothing recompiles, and the other
slots go on untouched (every slot is its own member of the vmapped program).
An empty slot is frozen (stopped), as an early-stopped member is.
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmlp.common import numbers
from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.engine import program as program_lib
from jaxmlp.core import train

_stop = jax.jit(lambda stopped, take: stopped | take)


class SlotProgram:
  """`size` slots of one structure (rounded up to a whole block per device)."""

  def __init__(self, structure: train.Structure, tracking: train.Tracking, mesh: Mesh,
               size: int, data: devices.DeviceData, idle_hparams: dict[str, float],
               program: program_lib.Program | None = None):
    """`program`: the compiled functions of another SlotProgram of this structure and
    size, to share."""
    self.structure, self.tracking = structure, tracking
    self.mesh, block = plan.slot_layout(mesh, size)
    self.size = block * self.mesh.size
    self.program = program or program_lib.build_program(structure, tracking, self.mesh, block)
    self.data = devices.data_on(data, self.mesh)
    self._sharding = NamedSharding(self.mesh, P(devices.MEMBER_AXIS))
    self.hparams = {k: np.full(self.size, v, np.float32) for k, v in idle_hparams.items()}
    self.seeds = np.zeros(self.size, np.uint32)
    self.owner: list[Any] = [None] * self.size   # what occupies each slot, or None
    self.epoch_of = np.zeros(self.size, np.int64)  # epochs the occupant has trained
    state = self.program.init(self._put(self.seeds), self._put_hparams(),
                              self._put(np.zeros(self.size, np.int32)))
    self.state, self.tracker = self.program.start(state, state.params)
    self.tracker = self.tracker._replace(
        stopped=_stop(self.tracker.stopped, self._put(np.ones(self.size, bool))))

  def _put(self, x: np.ndarray) -> jax.Array:
    return devices.to_devices(np.asarray(x), self._sharding)

  def _put_hparams(self) -> dict[str, jax.Array]:
    return {k: self._put(v) for k, v in self.hparams.items()}

  @property
  def free(self) -> list[int]:
    return [i for i, owner in enumerate(self.owner) if owner is None]

  @property
  def busy(self) -> bool:
    return any(owner is not None for owner in self.owner)

  def fill(self, slots: list[int], owner: Any, seeds: list[int],
           hparams: list[dict[str, float]]) -> None:
    """Starts `owner` in `slots`: fresh weights and optimizer state from each seed."""
    take = np.zeros(self.size, bool)
    for slot, seed, values in zip(slots, seeds, hparams):
      assert self.owner[slot] is None
      self.owner[slot], self.seeds[slot], self.epoch_of[slot] = owner, seed, 0
      for k, v in values.items():
        self.hparams[k][slot] = v
      take[slot] = True
    hparams_M = self._put_hparams()
    fresh = self.program.init(self._put(self.seeds), hparams_M,
                              self._put(np.zeros(self.size, np.int32)))
    fresh, fresh_tracker = self.program.start(fresh, fresh.params)
    take_M = self._put(take)
    self.state = self.program.select(take_M, fresh, self.state)
    self.tracker = self.program.select(take_M, fresh_tracker, self.tracker)

  def release(self, slots: list[int]) -> None:
    """Empties `slots`: they freeze until the next fill."""
    take = np.zeros(self.size, bool)
    for slot in slots:
      self.owner[slot] = None
      take[slot] = True
    self.tracker = self.tracker._replace(stopped=_stop(self.tracker.stopped,
                                                       self._put(take)))

  def run_epoch(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One epoch of every slot: (metrics per slot, NaN where a slot was frozen;
    whether each slot is stopped now)."""
    was_stopped = devices.to_host(self.tracker.stopped)
    # jit's cache: programs of one structure and size share one executable.
    self.state, self.tracker, metrics = self.program.epoch(self.state, self.tracker,
                                                           self._put_hparams(), self.data)
    metrics = {k: np.where(was_stopped, np.nan, v)
               for k, v in devices.to_host(metrics)._asdict().items()}
    self.epoch_of[~was_stopped] += 1
    return metrics, devices.to_host(self.tracker.stopped)

  def params(self, slot: int, which: str = 'final') -> dict:
    """A slot's final (or best-epoch) weights, on the host."""
    tree = self.state.params if which == 'final' else self.tracker.best_params
    return jax.tree.map(lambda x: np.asarray(x[slot]), devices.to_host(tree))


def sizes(structure: train.Structure, requested: int, seeds: int, trials: int,
          data: devices.DeviceData, flag: str) -> int:
  """Slots per program, whole trials (a trial takes one slot per seed): `requested`
  (the setting `flag`; refused in one line, naming it, where the devices cannot hold
  them); or what the devices hold
  (plan.members_per_program: on a CPU, 4 per core), at most a quarter of the trials
  budget, since trials that run together are sampled without each other's results."""
  data_bytes, rows = plan.data_bytes_of(data), len(data.x_train)
  if requested:
    slots = numbers.ceil_div(requested, seeds) * seeds
    plan.require_fit([structure], slots, data_bytes, rows, flag=flag)
    return slots
  fit = plan.members_per_program(structure, 0, 1 << 20, data_bytes, rows)
  cap = numbers.ceil_div(trials, 4) * seeds
  return max(seeds, min(fit, cap) // seeds * seeds)
