"""run.json: what a results folder holds, and whether a rerun may use it.

The run's identity is its whole config (study.py) with its search's own section, less
the fields that only change what the report shows or how programs are cut
(study.FREE_FIELDS, a search's free settings). A rerun with the same identity
resumes; one that only adds work (as its search judges: more seeds, more values on a
grid's sweep axis, more Optuna trials) adds it; any other difference is refused,
naming the field. A run.json of a release before sections (flat search settings,
pbt_population) reads as the sections it means; one before member_arithmetic as
'batched', what it ran.
"""

import dataclasses
import json
from collections.abc import Callable
import time
from pathlib import Path
from typing import Any, TypedDict

import jax
import ml_collections

from jaxmlp.common import hosts
from jaxmlp.store import folders
from jaxmlp.studies import study as study_lib
from jaxmlp.common.errors import UserError

RUN_FILE = 'run.json'


def _tuples(x):
  """JSON's lists back to the config's tuples."""
  if isinstance(x, list):
    return tuple(_tuples(v) for v in x)
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  return x


@dataclasses.dataclass(frozen=True)
class Rules:
  """What the search that runs a study says of its identity (search.registry builds
  them from its settings): which section is its own, which of its settings may
  change, their defaults, the flat names they had, and what only adds work."""
  section: str = ''                              # its own config section
  sections: frozenset[str] = frozenset()         # every search's section
  free: frozenset[str] = frozenset()             # dotted settings that may change
  defaults: dict[str, Any] = dataclasses.field(default_factory=dict)   # dotted
  renamed: dict[str, str] = dataclasses.field(default_factory=dict)    # flat -> dotted
  adds_work: Callable[[str, Any, Any], bool] = lambda field, old, new: False


def identity(config: ml_collections.ConfigDict, rules: Rules = Rules()) -> dict[str, Any]:
  fields = json.loads(config.to_json())
  out = {k: v for k, v in fields.items() if k not in study_lib.FREE_FIELDS
         and (k == rules.section or k not in rules.sections)}
  if rules.section in out:
    out[rules.section] = {k: v for k, v in out[rules.section].items()
                          if f'{rules.section}.{k}' not in rules.free}
  return _tuples(out)


# Releases before member_arithmetic vmapped a program's members: what they trained is
# what 'batched' trains (on a CPU 'auto' now means 'alone', which rounds differently).
_BEFORE_ARITHMETIC = 'batched'


def upgraded(stored: dict[str, Any], rules: Rules) -> dict[str, Any]:
  """A stored identity as this release writes it: flat search settings of releases
  before sections go to their section (the run's own) or are left out (another
  search's, or a free one); a run of a release before member_arithmetic ran 'batched'."""
  out = {} if 'member_arithmetic' in stored or not stored else {
      'member_arithmetic': _BEFORE_ARITHMETIC}
  for k, v in stored.items():
    new = rules.renamed.get(k)
    if new is None:
      out[k] = v
      continue
    section, _, name = new.partition('.')
    if section == rules.section and new not in rules.free:
      out.setdefault(section, {})[name] = v
  return out


def _flat(fields: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in fields.items():
    if isinstance(v, dict) and v:
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def differences(old: dict[str, Any], new: dict[str, Any], rules: Rules = Rules()
                ) -> tuple[list[str], bool]:
  """(the fields that differ and do not only add work, whether anything is added)."""
  old_flat, new_flat = _flat(old), _flat(new)
  same_search = old.get('search') == new.get('search')
  defaults = {**_tuples(json.loads(json.dumps(study_lib.baseline()))),
              **_tuples(rules.defaults)}
  refused, added = [], False
  for field in sorted(set(old_flat) | set(new_flat)):
    a, b = old_flat.get(field), new_flat.get(field)
    if a == b:
      continue
    if field not in old_flat and field in defaults and b == defaults[field]:
      continue   # a field added by a later release, left at its default
    if same_search and rules.adds_work(field, a, b):
      added = True
    else:
      refused.append(field)
  return refused, added


def _show(value) -> str:
  return 'unset' if value is None else study_lib.format_value(value)


class RunFile(TypedDict, total=False):
  """run.json's schema: the run's identity, and where and with what it ran."""
  config: dict[str, Any]
  devices: list[str]
  cpu_threads: int   # XLA:CPU's thread pool, which the last bits depend on
  versions: dict[str, str]
  started: str


def claim(study_dir: Path, config: ml_collections.ConfigDict,
          rules: Rules | None = None, cpu_threads: int | None = None) -> None:
  """Writes run.json for a new folder, or checks a rerun against it (process 0 reads;
  every process gets its verdict)."""
  rules = rules or Rules()
  mine = identity(config, rules)

  def check():
    path = study_dir / RUN_FILE
    if path.is_file():
      stored = read(study_dir)
      theirs = upgraded(_tuples(stored.get('config') or {}), rules)
      refused, added = differences(theirs, mine, rules)
      if refused:
        field = refused[0]
        there, here = _flat(theirs).get(field), _flat(mine).get(field)
        more = f' and {len(refused) - 1} more' if len(refused) > 1 else ''
        raise UserError(
            f'{study_dir} holds results of a different run ({field}: {_show(there)} there, '
            f'{_show(here)} now{more}): rerun with the same settings to resume, pass '
            'another --output_dir, or delete that folder to start over')
      there = stored.get('cpu_threads')
      if there and cpu_threads and there != cpu_threads:
        raise UserError(
            f'{study_dir} was trained with a pool of {there} XLA:CPU threads and this run '
            f'has {cpu_threads}, which rounds otherwise: rerun with --cpu_threads={there} to '
            'resume it with the same numbers, pass another --output_dir, or delete that '
            'folder to start over')
      if not added:
        return
    folders.write_json(path, dict(
        config=mine, devices=[str(d) for d in jax.devices()],
        **({} if cpu_threads is None else dict(cpu_threads=cpu_threads)),
        versions={m: __import__(m).__version__ for m in ('jax', 'flax', 'optax')},
        started=time.strftime('%Y-%m-%d %H:%M:%S')))

  hosts.from_primary(check)


def read(study_dir: Path) -> dict[str, Any]:
  """run.json's content; a damaged one is named with what to do (it is written
  atomically, so only the disk or a hand edit damages it)."""
  return folders.load_json(
      study_dir / RUN_FILE, RunFile, f'restore it from a copy, or delete {study_dir} to start over '
      '(without run.json its results cannot be matched to a run)')
