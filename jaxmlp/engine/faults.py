"""Deterministic faults for tests: `JAXMLP_FAULT=POINT:N[:SIGNAL]` sends this process
SIGNAL (default KILL, as `kill -9` does) when it passes POINT for the Nth time.

Points: `epoch` (an epoch's history is recorded and its checkpoint decided),
`program` (a program's members are written), `trial` (a search told a trial's result).
Tests stop a run at an exact place this way instead of polling a live process and
killing it at whatever moment the poll happens to see.
"""

import os
import signal

ENV = 'JAXMLP_FAULT'
POINTS = ('epoch', 'program', 'trial')
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
