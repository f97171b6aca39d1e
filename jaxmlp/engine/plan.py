"""The one planner: which members train together, in programs of how many slots, laid
out over which devices, in what order, and whether they fit in the devices' memory.

A study's grid, Hyperband's rounds and final models (runner.py, which adds checkpoints
and writes members as programs end), the tests, the benchmarks and the tools all train
through `cut` and `run`, so what is tested and timed is what a study runs. An Optuna
search's slot programs (slots.py) take their size (members_per_program, require_fit)
and layout (slot_layout) from here too.
"""

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jaxmlp.common import numbers
from jaxmlp.core import train
from jaxmlp.engine import checkpoint as checkpoint_lib
from jaxmlp.engine import devices
from jaxmlp.engine import interrupt
from jaxmlp.engine import program as program_lib
from jaxmlp.common.errors import UserError

# Bytes one device may hold, in place of what it reports (tests plan against a small
# budget this way).
MEMORY_ENV = 'JAXMLP_DEVICE_MEMORY'

# A CPU gains nothing from wide blocks (one member keeps its cores busy) and loses
# cache locality: benchmarks/RESULTS.md measured 36 members in one block 2.2x slower
# per member-update at batch 1 than blocks of 4, and 0.92x vs 1.06x at batch 256.
CPU_MEMBERS_PER_DEVICE = 4

INPUT_DIM, CLASSES = 784, 10
MOMENTS = {'adam': 2, 'rmsprop': 1, 'sgd': 0}   # optimizer state per weight
SLOT_OVERHEAD_BYTES = 1 << 20   # scalars, keys, hyperparameters, XLA's small buffers


# -- memory ---------------------------------------------------------------------------


def parameter_count(structure: train.Structure, input_dim: int = INPUT_DIM) -> int:
  sizes = (input_dim, *structure.hidden_sizes, CLASSES)
  return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def slot_bytes(structure: train.Structure, train_rows: int,
               input_dim: int = INPUT_DIM) -> int:
  """An upper bound of one member's share of its program's device memory, the data
  aside: float32 weights in (state, best-epoch weights) and out of the donated epoch
  program, its optimizer moments in and out, the gradients, updates and the frozen
  member's kept copy in flight; a batch's activations forward and back; an
  evaluation chunk's; a shuffled epoch's row order."""
  per_weight = 4 * (10 + 4 * MOMENTS[structure.optimizer])
  width = sum(structure.hidden_sizes) + CLASSES
  batch = min(structure.batch_size, train_rows)
  activations = 4 * batch * (2 * input_dim + 6 * width) + batch * input_dim
  evaluation = 4 * train.EVAL_CHUNK * (input_dim + 3 * width)
  order = 16 * train_rows if structure.shuffle else 0
  return (per_weight * parameter_count(structure, input_dim) + activations + evaluation
          + order + SLOT_OVERHEAD_BYTES)


def device_bytes() -> int:
  """What one device can allocate now ($JAXMLP_DEVICE_MEMORY where set)."""
  if os.environ.get(MEMORY_ENV):
    return int(os.environ[MEMORY_ENV])
  return min(devices.available_bytes(d) for d in jax.local_devices())


def _binding_limit() -> str:
  """Which host limit a CPU's memory was sized against, where it is not free memory."""
  if os.environ.get(MEMORY_ENV) or jax.local_devices()[0].platform != 'cpu':
    return ''
  limits = devices.host_limits()
  least = min(limits, key=limits.get)
  return '' if least == 'free memory' else f' (under {least})'


def size_text(n: int) -> str:
  """Bytes as a short text: 12.2 GB, 17.4 MB."""
  return f'{n / 1e9:.1f} GB' if n >= 1e8 else f'{n / 1e6:.1f} MB'


def fitting_slots(structure: train.Structure, data_bytes: int, train_rows: int,
                  available: int | None = None) -> int:
  """How many slots of `structure` one device holds beside its copy of the data."""
  available = device_bytes() if available is None else available
  return max(0, available - data_bytes) // slot_bytes(structure, train_rows)


def require_fit(structures: Iterable[train.Structure], slots: int, data_bytes: int,
                train_rows: int, *, flag: str = 'max_members_per_program',
                available: int | None = None) -> None:
  """Refuses, in one line, `slots` members a program (0: one a device) of any of
  `structures` that a device cannot hold beside the data; host-side only: nothing is
  allocated or compiled."""
  available = device_bytes() if available is None else available
  per_device = numbers.ceil_div(slots, len(jax.devices())) if slots else 1
  for structure in structures:
    fits = fitting_slots(structure, data_bytes, train_rows, available)
    if fits >= per_device:
      continue
    needed = per_device * slot_bytes(structure, train_rows) + data_bytes
    what = f'{per_device} members need' if per_device > 1 else 'one member needs'
    fix = (f'ask for fewer with --config.{flag}' if slots and per_device > 1 and fits else
           'use smaller layers, a smaller batch_size or fewer rows (--data_limit)')
    raise UserError(f'hidden_sizes {tuple(structure.hidden_sizes)} ({structure.optimizer},'
                    f' batch {structure.batch_size}): {what} {size_text(needed)} on a '
                    f'device (the data included), which has {size_text(available)} available'
                    f'{_binding_limit()}; {fix}')


def members_per_program(structure: train.Structure, requested: int, n_members: int,
                        data_bytes: int, train_rows: int) -> int:
  """How many members one program takes: `requested`; else what fits on the devices
  (on a CPU, at most CPU_MEMBERS_PER_DEVICE each); never more than the members need.
  Refuses (UserError) what does not fit."""
  n_devices, available = len(jax.devices()), device_bytes()
  require_fit([structure], min(requested, n_members), data_bytes, train_rows,
              available=available)
  if requested > 0:
    per_device = numbers.ceil_div(requested, n_devices)
  else:
    per_device = fitting_slots(structure, data_bytes, train_rows, available)
    if jax.local_devices()[0].platform == 'cpu':
      per_device = min(per_device, CPU_MEMBERS_PER_DEVICE)
  per_device = min(per_device, numbers.ceil_div(n_members, n_devices))
  return per_device * n_devices


def data_bytes_of(data) -> int:
  """The bytes of the split (host or device arrays) one device holds a copy of."""
  return sum(a.nbytes for a in data)


# -- programs -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlannedProgram:
  """One program of a group: its number, its members (indices into the group) and
  the slots the group's programs are cut to (which fixes layout and checkpoints)."""
  number: int
  members: tuple[int, ...]
  slots: int

  def layout(self, mesh: Mesh) -> tuple[Mesh, int]:
    """(the devices it runs on, members per device); padded to fill them."""
    return devices.program_layout(mesh, len(self.members), self.slots)


def slot_layout(mesh: Mesh, size: int) -> tuple[Mesh, int]:
  """A search's slot program of `size` slots: laid out as on a CPU anywhere (one
  host), since each has a shape of its own anyway."""
  return devices.program_layout(mesh, size, size, compact=True)


def cut(structure: train.Structure, done: Sequence[bool], requested: int,
        data_bytes: int, train_rows: int) -> list[PlannedProgram]:
  """The programs still to run for a group whose members `done` are finished.

  Members computed alone (train.Structure.alone: their numbers do not depend on their
  program) are what is left, packed into as few programs as the slots allow: a rerun
  after a kill cuts what is left as the killed run did (its checkpoints are found), and
  one whose memory changed cuts it anew, with the same numbers. Batched members' numbers
  depend on their program: the group is cut as if none had run, so that a rerun runs
  the same programs; members of a program of which some are finished (work added to a
  run: more seeds or values) run together, in extra programs numbered after.
  """
  n = len(done)
  slots = members_per_program(structure, requested, n, data_bytes, train_rows)
  if structure.alone(jax.local_devices()[0].platform):
    todo = [k for k in range(n) if not done[k]]
    return [PlannedProgram(j, tuple(todo[i:i + slots]), slots)
            for j, i in enumerate(range(0, len(todo), slots))]
  programs, leftover = [], []
  for number, start in enumerate(range(0, n, slots)):
    part = range(start, min(start + slots, n))
    todo = tuple(k for k in part if not done[k])
    if len(todo) == len(part):
      programs.append(PlannedProgram(number, todo, slots))
    else:
      leftover += todo
  first_extra = math.ceil(n / slots)
  programs += [PlannedProgram(first_extra + j, tuple(leftover[i:i + slots]), slots)
               for j, i in enumerate(range(0, len(leftover), slots))]
  return programs


def run(structure: train.Structure, tracking: train.Tracking,
        programs: list[PlannedProgram], hparams: dict[str, np.ndarray], seeds: np.ndarray,
        data: devices.DeviceData, epochs: int, mesh: Mesh, *,
        initial_params: Sequence[dict] | None = None, first_epoch: int = 0,
        on_epoch: Callable[[int, int, dict[str, np.ndarray]], None] | None = None,
        checkpoint_for: Callable[[PlannedProgram], checkpoint_lib.ProgramCheckpoint]
        | None = None, name_of: Callable[[PlannedProgram], str] | None = None,
        evolve_for: Callable[[PlannedProgram], Any] | None = None,
        ) -> Iterator[tuple[PlannedProgram, program_lib.GroupResult]]:
  """Runs `programs` in order, yielding each one's result as it ends. `hparams` and
  `seeds` are the group's, member axis first; `initial_params`, one pytree a member,
  replaces their initial weights (run_program); `on_epoch(done, total, metrics)` counts
  epochs over all programs; a stop names the program by `name_of`; `evolve_for`
  gives a program what changes its members between epochs (run_program's `evolve`)."""
  for position, planned in enumerate(programs):
    interrupt.raise_if_requested()
    rows = list(planned.members)
    starts = None
    if initial_params is not None:
      starts = jax.tree.map(lambda *xs: np.stack(xs), *(initial_params[k] for k in rows))
    report = None
    if on_epoch is not None:
      report = lambda epoch, metrics, before=position * epochs: on_epoch(
          before + epoch + 1, epochs * len(programs), metrics)
    evolve = None if evolve_for is None else evolve_for(planned)
    # An evolve may need a layout of its own (a replayed PBT member pads to its
    # population's block, so that its matmuls round as the population's did).
    layout = getattr(evolve, 'layout', None) or planned.layout(mesh)
    try:
      result = program_lib.run_program(
          structure, tracking, {k: np.asarray(v)[rows] for k, v in hparams.items()},
          np.asarray(seeds)[rows], data, epochs, layout, initial_params=starts,
          first_epoch=first_epoch, on_epoch=report,
          checkpoint=None if checkpoint_for is None else checkpoint_for(planned),
          evolve=evolve)
    except interrupt.Stopped as e:
      if name_of is not None:
        e.where = f'{name_of(planned)} {e.where}'.rstrip()
      raise
    yield planned, result


Outcomes = list[tuple[PlannedProgram, program_lib.GroupResult]]


def train_group(structure: train.Structure, hparams: dict[str, np.ndarray],
                seeds: np.ndarray, data: devices.DeviceData, epochs: int, mesh: Mesh, *,
                max_members: int = 0, tracking: train.Tracking = train.Tracking(),
                **run_kwargs) -> Outcomes:
  """Every member of a group, as the runner plans and runs them, without checkpoints
  or files (the tests', the benchmarks' and the tools' way in)."""
  programs = cut(structure, [False] * len(seeds), max_members, data_bytes_of(data),
                 len(data.x_train))
  return list(run(structure, tracking, programs, hparams, seeds, data, epochs, mesh,
                  **run_kwargs))


def by_member(outcomes: Outcomes) -> list[tuple[program_lib.GroupResult, int]]:
  """(result, row) of each member of the group, in the group's order."""
  rows = {k: (result, row) for planned, result in outcomes
          for row, k in enumerate(planned.members)}
  return [rows[k] for k in sorted(rows)]


def seconds(outcomes: Outcomes) -> tuple[float, float]:
  """(compile, fit) seconds of the programs, summed."""
  return (sum(float(r.compile_time_s[0]) for _, r in outcomes),
          sum(float(r.fit_time_s[0]) for _, r in outcomes))
