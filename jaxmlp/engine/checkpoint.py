"""Checkpoints inside a program, with orbax-checkpoint.

A program's whole state (parameters, optimizer state, random keys, the tracker and the
history so far) is saved between epochs, atomically (orbax writes a temporary folder
and renames it), so a program killed at epoch 99 of 100 continues from its last
checkpoint with identical results. Process 0 alone writes and reads them.
"""

import dataclasses
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxmlp.engine import hosts
from jaxmlp.errors import UserError

# 'auto' saves once the time since the last save reaches this many times what a save
# costs: a program's first save is timed whole, its write included (later writes go on
# in a background thread, which still takes a core from training on a small CPU).
AUTO_RATIO = 100
POLICY_HELP = ('When a program saves a checkpoint: auto (default: as often as keeps the '
               f'cost about 1/{AUTO_RATIO} of training time), N (every N epochs), Nm or '
               'Ns (every N minutes or seconds), or 0 (only when stopped by SIGTERM or '
               'Ctrl-C).')


@dataclasses.dataclass(frozen=True)
class Policy:
  kind: str            # 'auto', 'epochs', 'seconds' or 'never'
  every: float = 0.0

  @classmethod
  def parse(cls, text: str) -> 'Policy':
    text = text.strip().lower()
    if text == 'auto':
      return cls('auto')
    match = re.fullmatch(r'(\d+(?:\.\d+)?)\s*(m|min|s|sec|e|epochs?)?', text)
    if not match:
      raise UserError(f'--checkpoint_every={text} is not a checkpoint interval: give auto, '
                      'a number of epochs (5), minutes (10m) or seconds (30s), or 0')
    number, unit = float(match.group(1)), match.group(2) or 'e'
    if number == 0:
      return cls('never')
    if unit.startswith('m'):
      return cls('seconds', 60 * number)
    if unit.startswith('s'):
      return cls('seconds', number)
    if not number.is_integer():
      raise UserError(f'--checkpoint_every={text}: a number of epochs is a whole number')
    return cls('epochs', number)

  def due(self, epochs_done: int, since_save_s: float, last_save_s: float | None) -> bool:
    if self.kind == 'epochs':
      return epochs_done % int(self.every) == 0
    if self.kind == 'seconds':
      return since_save_s >= self.every
    if self.kind == 'auto':
      return last_save_s is None or since_save_s >= AUTO_RATIO * last_save_s
    return False


def _orbax():
  # Imported here: orbax is slow to import and only saving or restoring needs it.
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  return ocp


def _options():
  ocp = _orbax()
  return ocp.CheckpointManagerOptions(
      # The write goes on in a background thread while the program trains on; only
      # copying the state to the host holds training up.
      max_to_keep=1, create=False, enable_async_checkpointing=True,
      multiprocessing_options=ocp.options.MultiprocessingOptions(
          primary_host=0, active_processes={0}))


class ProgramCheckpoint:
  """The checkpoints of one program, in `directory`; `log` says when one is used."""

  def __init__(self, directory: Path, policy: Policy, log: Callable[[str], None] = print):
    # orbax wants an absolute path.
    self.directory, self.policy, self.log = Path(directory).absolute(), policy, log
    self.last_save_s: float | None = None   # the first save's whole cost
    self.last_save_at = time.perf_counter()
    self.saved_seconds = 0.0  # what saving cost in all, for the overhead figure
    self._manager = None

  def _open(self):
    if self._manager is None:
      self.directory.mkdir(parents=True, exist_ok=True)
      self._manager = _orbax().CheckpointManager(self.directory, options=_options())
    return self._manager

  def restore(self, template) -> tuple[Any, dict[str, Any]] | None:
    """(tree, meta) of the latest checkpoint, shaped like `template` (leaves with a
    shape and dtype); None if there is none, or if it was saved for another layout
    (then the program starts over)."""
    leaves, treedef = jax.tree.flatten(template)
    found = []

    def read():
      if not self.directory.is_dir():
        return None
      manager = self._open()
      step = manager.latest_step()
      if step is None:
        return None
      ocp = _orbax()
      saved = manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
      arrays = [np.asarray(saved['state'].get(f'{i:05d}')) for i in range(len(leaves))]
      if any(a.shape != tuple(l.shape) or a.dtype != l.dtype
             for a, l in zip(arrays, leaves)):
        self._discard()  # saved for another layout: of no use to this program
        return None
      found.extend(arrays)
      return saved['meta']

    meta = hosts.from_primary(read)
    if meta is None:
      return None
    arrays = hosts.tree_from_primary(found, [np.zeros(l.shape, l.dtype) for l in leaves])
    return jax.tree.unflatten(treedef, arrays), meta

  def save(self, epochs_done: int, host_tree_fn: Callable[[], Any], meta: dict) -> None:
    """Saves the tree `host_tree_fn()` gives (numpy, on every host) as of `epochs_done`."""
    if hosts.is_primary() and self._manager is None:
      opened = time.perf_counter()   # once per program: not what each save costs
      self._open()
      self.saved_seconds += time.perf_counter() - opened
    started = time.perf_counter()
    leaves = jax.tree.leaves(host_tree_fn())
    if hosts.is_primary():
      manager = self._open()
      manager.wait_until_finished()  # the previous write, if it is still going
      ocp = _orbax()
      manager.save(epochs_done, args=ocp.args.Composite(
          state=ocp.args.StandardSave({f'{i:05d}': np.asarray(l)
                                       for i, l in enumerate(leaves)}),
          meta=ocp.args.JsonSave(dict(meta, epochs_done=epochs_done))), force=True)
      if self.last_save_s is None:
        manager.wait_until_finished()   # the first save is timed whole (see AUTO_RATIO)
    self.last_save_at = time.perf_counter()
    if self.last_save_s is None:
      self.last_save_s = self.last_save_at - started
    self.saved_seconds += self.last_save_at - started

  def due(self, epochs_done: int) -> bool:
    """The same answer on every process (a save gathers the state to the hosts):
    process 0's, which writes, where the clock decides."""
    decide = lambda: self.policy.due(epochs_done, time.perf_counter() - self.last_save_at,
                                     self.last_save_s)
    return hosts.from_primary(decide) if self.policy.kind in ('auto', 'seconds') else decide()

  def wait(self) -> None:
    """Until the last checkpoint is on disk (before stopping on a signal)."""
    if self._manager is not None:
      self._manager.wait_until_finished()

  def delete(self) -> None:
    """Once the program's members are written, its checkpoints are of no more use."""
    if hosts.is_primary():
      self._discard()

  def _discard(self) -> None:
    if self._manager is not None:
      self._manager.close()
      self._manager = None
    shutil.rmtree(self.directory, ignore_errors=True)
