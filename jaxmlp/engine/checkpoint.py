"""Checkpoints inside a program, with orbax-checkpoint.

A program's whole state (parameters, optimizer state, random keys, the tracker and the
history so far) is saved between epochs, atomically (orbax writes a temporary folder
and renames it), so a program killed at epoch 99 of 100 continues from its last
checkpoint with identical results. Process 0 alone writes and reads them.

Every step is verified when it is read: a SHA-256 over its arrays and its meta is saved
with it, so a truncated or corrupted file (a kill during a save, a full disk, a bad
disk) is caught whether orbax notices or not. A damaged step is moved aside, never
deleted (outside `checkpoints/`, which a finished run removes), with one line naming
both folders, and the program resumes from the previous good step or from its start.
"""

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxmlp.common import faults
from jaxmlp.common import hosts
from jaxmlp.engine import orbax_noise
from jaxmlp.common.errors import UserError, cannot_write

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


DIGEST = 'sha256'     # the meta key that holds a step's digest (see _digest)
DAMAGED = '.damaged'  # suffix of the folder damaged steps are moved to


def _digest(leaves: list[np.ndarray], meta: dict) -> str:
  """What a step must read back as: every array's dtype, shape and bytes, and the meta."""
  h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
  for leaf in leaves:
    leaf = np.ascontiguousarray(leaf)
    h.update(f'{leaf.dtype.str}{leaf.shape}'.encode())
    h.update(leaf.tobytes())
  return h.hexdigest()


def aside_folder(directory: Path) -> Path:
  """Where a program's damaged steps go: beside the study's `checkpoints/` folder
  (which is deleted once the study's members are written), else beside `directory`."""
  parts = directory.parts
  if 'checkpoints' in parts[:-1]:
    at = len(parts) - 1 - parts[::-1].index('checkpoints')
    return Path(*parts[:at], 'checkpoints' + DAMAGED, *parts[at + 1:])
  return directory.with_name(directory.name + DAMAGED)


def _steps(directory: Path) -> list[int]:
  """The committed steps, newest first: orbax renames a step's temporary folder to
  its number once written, so a save cut short leaves no such folder."""
  return sorted((int(p.name) for p in directory.iterdir()
                 if p.is_dir() and p.name.isdigit()), reverse=True)


def _causes(error: BaseException):
  """`error` and the errors it was raised from, or during."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def _why(error: BaseException) -> str:
  lines = str(error).strip().splitlines()
  return f'{type(error).__name__}: {lines[0][:200]}' if lines else type(error).__name__


def _options():
  ocp = _orbax()
  return ocp.CheckpointManagerOptions(
      # The write goes on in a background thread while the program trains on; only
      # copying the state to the host holds training up.
      max_to_keep=1, create=False, enable_async_checkpointing=True,
      multiprocessing_options=ocp.options.MultiprocessingOptions(
          primary_host=0, active_processes={0}))


_OPEN: 'weakref.WeakSet[ProgramCheckpoint]' = weakref.WeakSet()


def finish_writes() -> None:
  """Waits for every checkpoint write still going on in the background: a run that
  stops (SIGTERM between programs, an error) must not leave the interpreter while
  orbax's thread writes, which then fails with a traceback. A write that fails here
  leaves only a temporary folder, never read as a step; nothing is raised."""
  for saver in list(_OPEN):
    if saver._manager is not None:  # pylint: disable=protected-access
      try:
        saver._manager.wait_until_finished()  # pylint: disable=protected-access
      except Exception:  # pylint: disable=broad-except
        pass


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
      orbax_noise.silence()
      self._manager = _orbax().CheckpointManager(self.directory, options=_options())
      _OPEN.add(self)
    return self._manager

  def restore(self, template) -> tuple[Any, dict[str, Any]] | None:
    """(tree, meta) of the latest good checkpoint, shaped like `template` (leaves with
    a shape and dtype); None if there is none, or if it was saved for another layout
    (then the program starts over). Damaged steps are moved aside (see the module)."""
    leaves, treedef = jax.tree.flatten(template)
    found = []

    def read():
      if not self.directory.is_dir():
        return None
      for step in _steps(self.directory):
        try:
          arrays, meta = self._read_step(step, len(leaves))
        except Exception as e:  # pylint: disable=broad-except
          # orbax, tensorstore and json each fail in their own way on a damaged file.
          orbax_noise.ignore_late_reads()
          self._move_aside(step, _why(e))
          continue
        if any(a.shape != tuple(l.shape) or a.dtype != l.dtype
               for a, l in zip(arrays, leaves)):
          self._discard()  # saved for another layout: of no use to this program
          return None
        found.extend(arrays)
        return meta
      return None

    meta = hosts.from_primary(read)
    if meta is None:
      return None
    arrays = hosts.tree_from_primary(found, [np.zeros(l.shape, l.dtype) for l in leaves])
    return jax.tree.unflatten(treedef, arrays), meta

  def _read_step(self, step: int, count: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """A step's arrays and meta, checked against the digest saved with them."""
    ocp = _orbax()
    # A checkpointer of its own reads one step's files: a manager would read every
    # step's metadata on opening, and fail on any damaged one.
    reader = ocp.Checkpointer(
        ocp.CompositeCheckpointHandler(state=ocp.StandardCheckpointHandler(),
                                       meta=ocp.JsonCheckpointHandler()),
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            primary_host=0, active_processes={0}))
    saved = reader.restore(self.directory / str(step), args=ocp.args.Composite(
        state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
    meta = dict(saved['meta'])
    expected = meta.pop(DIGEST, None)
    arrays = [np.asarray(saved['state'][f'{i:05d}']) for i in range(count)]
    if len(saved['state']) != count:
      raise ValueError(f'{len(saved["state"])} arrays where {count} were saved')
    if expected is None or _digest(arrays, meta) != expected:
      raise ValueError('its contents do not match the digest saved with them')
    return arrays, meta

  def _move_aside(self, step: int, why: str) -> None:
    """Keeps a damaged step for inspection, out of the way of this program's steps."""
    if self._manager is not None:
      self._manager.close()
      self._manager = None
    folder = aside_folder(self.directory)
    target = folder / f'{step}{DAMAGED}-{time.strftime("%Y%m%d-%H%M%S")}'
    suffix = 1
    while target.exists():
      target = target.with_name(f'{target.name.split("~")[0]}~{suffix}')
      suffix += 1
    try:
      folder.mkdir(parents=True, exist_ok=True)
      shutil.move(str(self.directory / str(step)), str(target))
    except OSError as e:
      raise UserError(f'checkpoint step {step} in {self.directory} is damaged ({why}) and '
                      f'could not be moved to {target} ({e.strerror or e}): move that step '
                      'away by hand and rerun the same command') from None
    older = [s for s in _steps(self.directory) if s < step]
    then = f'resuming from step {older[0]}' if older else 'starting the program over'
    self.log(f'checkpoint step {step} in {self.directory} is damaged ({why}); moved it to '
             f'{target} and {then}')

  def save(self, epochs_done: int, host_tree_fn: Callable[[], Any], meta: dict) -> None:
    """Saves the tree `host_tree_fn()` gives (numpy, on every host) as of `epochs_done`."""
    if hosts.is_primary() and self._manager is None:
      opened = time.perf_counter()   # once per program: not what each save costs
      with self._writing():
        self._open()
      self.saved_seconds += time.perf_counter() - opened
    started = time.perf_counter()
    leaves = jax.tree.leaves(host_tree_fn())
    if hosts.is_primary():
      with self._writing():
        manager = self._open()
        manager.wait_until_finished()  # the previous write, if it is still going
        if not self.directory.exists():   # orbax would make it again, study folder too
          raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        ocp = _orbax()
        arrays = [np.asarray(l) for l in leaves]
        meta = dict(meta, epochs_done=epochs_done)
        manager.save(epochs_done, args=ocp.args.Composite(
            state=ocp.args.StandardSave({f'{i:05d}': a for i, a in enumerate(arrays)}),
            meta=ocp.args.JsonSave(dict(meta, **{DIGEST: _digest(arrays, meta)}))),
                     force=True)
        faults.passed('save')   # a test's kill lands while the write goes on
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
      with self._writing():
        self._manager.wait_until_finished()

  @contextlib.contextmanager
  def _writing(self):
    """A write that fails (a full disk, a folder made read-only or deleted) stops the
    run with one line: the members written so far and the last good checkpoint stay."""
    try:
      yield
    except OSError as e:
      raise UserError(cannot_write(self.directory, e)) from None
    except Exception as e:  # pylint: disable=broad-except
      # orbax reports a failed background write as its own error, the OSError inside.
      cause = next((c for c in _causes(e) if isinstance(c, OSError)), None)
      if cause is None and not self.directory.exists():   # orbax: 'does not exist'
        cause = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
      if cause is None:
        raise
      raise UserError(cannot_write(self.directory, cause)) from None

  def delete(self) -> None:
    """Once the program's members are written, its checkpoints are of no more use."""
    if hosts.is_primary():
      self._discard()

  def _discard(self) -> None:
    if self._manager is not None:
      manager, self._manager = self._manager, None
      with self._writing():
        manager.close()   # the last write's end; it fails if the folder was deleted
    shutil.rmtree(self.directory, ignore_errors=True)
