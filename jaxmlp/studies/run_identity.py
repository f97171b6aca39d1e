"""run.json: what a results folder holds, and whether a rerun may use it.

The run's identity is its whole config (study.py), less the fields that only change
what the report shows or how programs are cut (study.FREE_FIELDS). A rerun with the
same identity resumes; one that only adds work (more seeds, more values on a grid's
sweep axis, every arm after one, more Optuna trials) adds it; any other difference is
refused, naming the field.
"""

import json
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections

from jaxmlp.engine import hosts
from jaxmlp.report import results
from jaxmlp.studies import study as study_lib
from jaxmlp.errors import UserError

RUN_FILE = 'run.json'


def _tuples(x):
  """JSON's lists back to the config's tuples."""
  if isinstance(x, list):
    return tuple(_tuples(v) for v in x)
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  return x


def identity(config: ml_collections.ConfigDict) -> dict[str, Any]:
  fields = json.loads(config.to_json())
  return _tuples({k: v for k, v in fields.items() if k not in study_lib.FREE_FIELDS})


def _flat(fields: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in fields.items():
    if isinstance(v, dict) and v:
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def _adds_work(field: str, old, new, search: str | None) -> bool:
  """Whether `new` keeps everything `old` trained and only adds to it."""
  name = field.rsplit('.', 1)[-1]
  if search == 'optuna':
    return field == 'optuna_trials' and new >= old   # the study goes on
  if search != 'grid':
    return False
  if field == 'seeds':
    return new >= old
  if field == 'arm':
    return new == ''
  if field.startswith('arms.') and old is None:
    return True  # a new arm
  if name in study_lib.MEMBER_FIELDS and old is not None and new is not None:
    return set(study_lib.axis_values(name, old)) <= set(study_lib.axis_values(name, new))
  return False


def differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], bool]:
  """(the fields that differ and do not only add work, whether anything is added)."""
  old_flat, new_flat = _flat(old), _flat(new)
  search = old.get('search') if old.get('search') == new.get('search') else None
  defaults = _tuples(json.loads(json.dumps(study_lib.baseline())))
  refused, added = [], False
  for field in sorted(set(old_flat) | set(new_flat)):
    a, b = old_flat.get(field), new_flat.get(field)
    if a == b:
      continue
    if field not in old_flat and field in defaults and b == defaults[field]:
      continue   # a field added by a later release, left at its default
    if _adds_work(field, a, b, search):
      added = True
    else:
      refused.append(field)
  return refused, added


def _show(value) -> str:
  return 'unset' if value is None else study_lib.format_value(value)


def claim(study_dir: Path, config: ml_collections.ConfigDict) -> None:
  """Writes run.json for a new folder, or checks a rerun against it (process 0 reads;
  every process gets its verdict)."""
  mine = identity(config)

  def check():
    path = study_dir / RUN_FILE
    if path.is_file():
      stored = read(study_dir)
      theirs = _tuples(stored.get('config') or {})
      refused, added = differences(theirs, mine)
      if refused:
        field = refused[0]
        there, here = _flat(theirs).get(field), _flat(mine).get(field)
        more = f' and {len(refused) - 1} more' if len(refused) > 1 else ''
        raise UserError(
            f'{study_dir} holds results of a different run ({field}: {_show(there)} there, '
            f'{_show(here)} now{more}): rerun with the same settings to resume, pass '
            'another --output_dir, or delete that folder to start over')
      if not added:
        return
    results.write_json(path, dict(
        config=mine, devices=[str(d) for d in jax.devices()],
        versions={m: __import__(m).__version__ for m in ('jax', 'flax', 'optax')},
        started=time.strftime('%Y-%m-%d %H:%M:%S')))

  hosts.from_primary(check)


def read(study_dir: Path) -> dict[str, Any]:
  """run.json's content; a damaged one is named with what to do (it is written
  atomically, so only the disk or a hand edit damages it)."""
  path = study_dir / RUN_FILE
  try:
    stored = json.loads(path.read_text())
    if not isinstance(stored, dict):
      raise ValueError('it holds no JSON object')
    return stored
  except (OSError, ValueError) as e:
    why = ' '.join(f'{type(e).__name__}: {e}'.split())[:200]
    raise UserError(f'{path} is damaged ({why}): restore it from a copy, or delete '
                    f'{study_dir} to start over (without run.json its results cannot be '
                    'matched to a run)') from None
