"""Deterministic faults for tests: `JAXMLP_FAULT=POINT:N[:SIGNAL]` sends this process
SIGNAL (default KILL, as `kill -9` does) when it passes POINT for the Nth time.

Points, in a run's order: `data` (the data is loaded), `compile` (a program is
compiled), `epoch` (an epoch's history is recorded and its checkpoint decided), `save`
(a checkpoint's write has started and goes on in the background), `program` (a
program's members are written), `trial` (a search told a trial's result), `report`
(the report is being written: its figures are drawn, report.md not yet).
Tests stop a run at an exact place this way instead of polling a live process and
killing it at whatever moment the poll happens to see.
"""

import os
import signal

ENV = 'JAXMLP_FAULT'
POINTS = ('data', 'compile', 'epoch', 'save', 'program', 'trial', 'report')
_passed: dict[str, int] = {}


def _spec() -> tuple[str, int, signal.Signals] | None:
  value = os.environ.get(ENV, '')
  if not value:
    return None
  point, count, *name = value.split(':')
  if point not in POINTS:
    raise ValueError(f'{ENV}={value}: the point must be one of {", ".join(POINTS)}')
  return point, int(count), signal.Signals[f'SIG{name[0] if name else "KILL"}']


def passed(point: str) -> None:
  """Marks `point` passed once more; sends the fault's signal at its count."""
  spec = _spec()
  if spec is None or spec[0] != point:
    return
  _passed[point] = _passed.get(point, 0) + 1
  if _passed[point] == spec[1]:
    os.kill(os.getpid(), spec[2])
