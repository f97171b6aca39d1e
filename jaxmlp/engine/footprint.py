"""What a study will write to disk, estimated before anything runs, and refused in one
line where the disk cannot hold it: every member's weights (params.msgpack keeps the
initial, final and best-epoch weights) and record, its TensorBoard events, a program's
checkpoints, and the report's figures. The constants are measured sizes, rounded up.
"""

import dataclasses
import os
import shutil
from pathlib import Path

from jaxmlp.common.errors import UserError
from jaxmlp.core import train
from jaxmlp.engine import plan

WEIGHT_SETS = 3                                  # initial, final, best epoch
RECORD_BYTES, RECORD_BYTES_PER_EPOCH = 1_500, 250  # result.json (measured 1.6 kB at 4)
EVENTS_BYTES, EVENTS_BYTES_PER_EPOCH = 800, 300    # a member's TensorBoard run
FIGURE_BYTES = 80_000                            # a report figure (measured 18-68 kB)
CHECKPOINT_STEPS = 2                             # the last step, and the one being written


@dataclasses.dataclass(frozen=True)
class Footprint:
  """Bytes a study writes, by what writes them."""
  members: int
  weights: int
  records: int
  events: int
  checkpoints: int
  figures: int

  @property
  def total(self) -> int:
    return self.weights + self.records + self.events + self.checkpoints + self.figures


def estimate(members: list[tuple[train.Structure, int]], epochs: int, slots: int,
             figures: int, tensorboard: bool) -> Footprint:
  """What `members` ((structure, count) pairs) of `epochs` epochs write, programs of
  `slots` members checkpointing one at a time, and a report of `figures` figures."""
  count = sum(n for _, n in members)
  weights = sum(n * WEIGHT_SETS * 4 * plan.parameter_count(s) for s, n in members)
  largest = max((s for s, _ in members), key=plan.parameter_count)
  state = 4 * (2 + plan.MOMENTS[largest.optimizer]) * plan.parameter_count(largest)
  return Footprint(
      members=count, weights=weights,
      records=count * (RECORD_BYTES + RECORD_BYTES_PER_EPOCH * epochs),
      events=count * (EVENTS_BYTES + EVENTS_BYTES_PER_EPOCH * epochs) if tensorboard else 0,
      checkpoints=CHECKPOINT_STEPS * min(count, slots) * state,
      figures=figures * FIGURE_BYTES)


def _existing(path: Path) -> Path:
  while not path.exists() and path != path.parent:
    path = path.parent
  return path


def _size(folder: Path) -> int:
  """Bytes already in `folder` (a rerun's finished members need no more room)."""
  total = 0
  for root, _, files in os.walk(folder):
    for name in files:
      try:
        total += os.lstat(os.path.join(root, name)).st_size
      except OSError:
        pass
  return total


def _gb(n: int) -> str:
  return f'{n / 1e12:.1f} TB' if n >= 1e12 else plan.size_text(n)


def require_disk(footprint: Footprint, study_dir: Path) -> None:
  """Refuses, in one line with the estimate and the fix, a study whose files the disk
  under `study_dir` cannot hold (what a rerun finds there already counts as written)."""
  free = shutil.disk_usage(_existing(study_dir)).free
  needed = footprint.total - (_size(study_dir) if study_dir.is_dir() else 0)
  if needed <= free:
    return
  f = footprint
  parts = ', '.join(f'{what} {_gb(n)}' for what, n in (
      (f'weights of {f.members} members', f.weights), ('records', f.records),
      ('TensorBoard events', f.events), ('checkpoints', f.checkpoints),
      ('report figures', f.figures)) if n)
  raise UserError(f'this study would write about {_gb(needed)} to {study_dir} '
                  f'({parts}), and its disk has {_gb(free)} free: run fewer seeds or '
                  'values, use --tensorboard=false, or pass an --output_dir on a larger disk')
