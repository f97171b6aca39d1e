"""What a PBT study writes beside its members, and reads back: `pbt_lineage.jsonl`
(one row per exploit) and `pbt.json` (the population, every member's schedule and
random streams per epoch, the winner, the compile count and the exploit's cost).

Both are written from the population's arrays (which the program's checkpoint holds),
after every generation and when the program ends, so a killed and resumed run writes
the same files as an uninterrupted one (the timings aside).
"""

import json
from pathlib import Path
from typing import Any, TypedDict

import ml_collections
import numpy as np

from jaxmlp.common import numbers
from jaxmlp.common.errors import UserError
from jaxmlp.core import objective as objective_lib
from jaxmlp.store import folders
from jaxmlp.search.pbt import _evolve
from jaxmlp.search.pbt import _rules
from jaxmlp.studies import study as study_lib

LINEAGE_FILE = 'pbt_lineage.jsonl'
PBT_FILE = 'pbt.json'


class DimensionEntry(TypedDict):
  field: str
  low: float
  high: float
  log: bool
  choices: list[Any]


class MemberEntry(TypedDict):
  member: int
  label: str
  seed: int
  initial: dict[str, float] | None
  schedule: dict[str, list[float | None]]
  streams: list[list[int]]
  history: dict[str, list[float | None]]


class _PBTFileRequired(TypedDict):
  complete: bool
  epochs_done: int
  epochs: int
  objective: str
  population: int
  interval: int
  dimensions: list[DimensionEntry]
  members: list[MemberEntry]


class PBTFile(_PBTFileRequired, total=False):
  """pbt.json's schema (its figures of cost, not read back, are let be)."""
  winner: int
  objectives: str   # several: what ranked; `objective` then the one that picks epochs
  members_per_device: int
  devices: int
  member_arithmetic: str


class LineageRow(TypedDict):
  """One exploit, a line of pbt_lineage.jsonl."""
  epoch: int
  generation: int
  target: int
  donor: int
  old: dict[str, float]
  new: dict[str, float]
  target_score: float | None
  donor_score: float | None


_REWRITE = 'rerun the PBT study that wrote it (the same command) to write it again'


def _point(dims: list[_rules.Dimension], values) -> dict[str, float]:
  return {d.field: float(v) for d, v in zip(dims, values)}


def lineage_rows(population: _evolve.Population) -> list[dict[str, Any]]:
  """One row per exploit so far, by generation, then target."""
  p, interval = population, population.config.pbt.interval
  rows = []
  for g, donors in enumerate(p.donor_GM):
    for target in np.flatnonzero(donors >= 0):
      donor = int(donors[target])
      rows.append(dict(epoch=(g + 1) * interval, generation=g + 1, target=int(target),
                       donor=donor, old=_point(p.dims, p.old_GMF[g, target]),
                       new=_point(p.dims, p.new_GMF[g, target]),
                       target_score=numbers.finite(p.score_GM[g, target]),
                       donor_score=numbers.finite(p.score_GM[g, donor])))
  return rows


def winner_of(population: _evolve.Population) -> int:
  """The member whose lineage reached the best epoch value of the objective (ties:
  the lower index), as the grid ranks a configuration by its best epoch."""
  config = population.config
  objective = objective_lib.Objective.of(study_lib.tracked_objective(config.objective))
  history = population.history[objective.name]
  if len(study_lib.objectives(config.objective)) > 1:
    return _pareto_winner(population, objective)
  best = [objective.best_value(list(history[k])) for k in range(population.n)]
  return objective.best_first(list(range(population.n)), lambda k: best[k])[0]


def _pareto_winner(population: _evolve.Population, tracked: objective_lib.Objective) -> int:
  """Of several objectives: the first member in NSGA-II's order (feasible first) of
  each member's values at the epoch its tracker kept, as Optuna's best trial here."""
  config, history = population.config, population.history
  values = {name: np.full(population.n, np.nan) for name in history}
  for k in range(population.n):
    at = tracked.best_epoch(list(history[tracked.name][k]))
    for name in history:
      values[name][k] = history[name][k, at - 1] if at else np.nan
  losses_MK, violation_M = _rules.pareto_scores(
      {name: v[:, None] for name, v in values.items()}, 1, population.members, config)
  return _rules.ranked(losses_MK, config.objective, violation_M)[0]


def write(study_dir: Path, population: _evolve.Population, done: int
          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
  """The lineage so far, and pbt.json (complete once `done` is every epoch); returns
  what it wrote (pbt.json's object, the lineage's rows)."""
  p, config = population, population.config
  rows = lineage_rows(p)
  folders.write_atomic(study_dir / LINEAGE_FILE, ''.join(
      json.dumps(row) + '\n' for row in rows))
  history = p.history or {}
  body = dict(
      complete=done >= p.epochs, epochs_done=done, epochs=p.epochs,
      objective=study_lib.tracked_objective(config.objective), population=p.n,
      interval=config.pbt.interval,
      **({'objectives': config.objective} if p.several else {}),
      member_arithmetic=config.member_arithmetic,
      quantile=config.pbt.quantile, resample=config.pbt.resample,
      factors=list(config.pbt.factors), search_seed=config.search_seed,
      dimensions=[dict(field=d.field, low=d.edges[0], high=d.edges[1], log=d.log,
                       choices=list(d.choices)) for d in p.dims],
      members=[dict(member=k, label=m.label, seed=m.seed,
                    initial=_point(p.dims, p.schedule_MEF[k, 0]) if done else None,
                    schedule={d.field: numbers.finite(p.schedule_MEF[k, :done, i].tolist())
                              for i, d in enumerate(p.dims)},
                    streams=[[int(a), int(b)] for a, b in zip(p.origin_ME[k, :done],
                                                             p.keygen_ME[k, :done])],
                    history={name: numbers.finite(v[k, :done].tolist())
                             for name, v in history.items()})
               for k, m in enumerate(p.members)],
      **_evolve.describe(p))
  if done >= p.epochs and p.history is not None:
    body['winner'] = winner_of(p)
  folders.write_json(study_dir / PBT_FILE, body)
  return body, rows


def read(study_dir: Path) -> dict[str, Any] | None:
  """pbt.json's object, or None where there is none; a damaged one is named (one
  line), as a damaged result.json is."""
  path = Path(study_dir) / PBT_FILE
  try:
    if not path.is_file():
      return None
  except (OSError, ValueError) as e:   # a name too long for a path; a NUL byte
    raise UserError(f'{str(study_dir)[:60]}... is no folder a PBT study wrote ({e})') from None
  return folders.load_json(path, PBTFile, _REWRITE)


def read_lineage(study_dir: Path) -> list[dict[str, Any]]:
  path = Path(study_dir) / LINEAGE_FILE
  if not path.is_file():
    return []
  return folders.load_json_lines(path, LineageRow, _REWRITE)


def winner_streams(pbt: dict[str, Any]) -> list[tuple[int, int, int]]:
  """(member, generation, that member's seed) per epoch of the winner's lineage: the
  random streams a replay switches between."""
  seeds = {m['member']: m['seed'] for m in pbt['members']}
  winner = pbt['members'][pbt['winner']]
  return [(a, g, seeds[a]) for a, g in winner['streams']]


def winner_schedule(pbt: dict[str, Any]) -> np.ndarray:
  """(epochs, F) float32: the hyperparameters each epoch of the winner's lineage used."""
  winner = pbt['members'][pbt['winner']]
  return np.array([winner['schedule'][d['field']] for d in pbt['dimensions']],
                  np.float32).T


def winner_member(config: ml_collections.ConfigDict, pbt: dict[str, Any]) -> study_lib.Member:
  """The configuration a final model retrains: the winner's lineage's starting point
  (its schedule then moves it), labelled by the member that won."""
  fields, dims = _rules.dimensions(config)
  start = dict(zip([d.field for d in dims], winner_schedule(pbt)[0].tolist()))
  return study_lib.Member(f'schedule_of_member={pbt["winner"]}', config.arm, 0,
                          _rules.member_values(fields, dims, start),
                          tuple(d.field for d in dims))
