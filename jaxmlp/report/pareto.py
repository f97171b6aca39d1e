"""Configurations ranked by several objectives: the table (jaxmlp.read_pareto), the
study folder's pareto_front.csv and the report's "Pareto front" section.

A configuration's value of an objective is its mean over seeds: a validation metric
at the epoch the tracker kept, or its network's cost (core.costs). A diverged seed
makes the mean NaN, the worst value. Ranks and crowding distances are core.pareto's.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from jaxmlp.core import costs
from jaxmlp.core import objective as objective_lib
from jaxmlp.core import pareto
from jaxmlp.store import folders
from jaxmlp.store.records import MemberRecord
from jaxmlp.studies import study as study_lib

FRONT_FILE = 'pareto_front.csv'
FIGURE_FILE = 'pareto_front.png'
# The hypervolume's reference point: past the worst mean of each objective by this
# share of its range (1 where every configuration has the same value), so the worst
# configurations still add volume.
REFERENCE_MARGIN = 0.1


def objective_value(record: MemberRecord, name: str) -> float:
  """A member's value of objective `name`: a validation metric at the epoch the tracker
  kept (NaN where none was kept: diverged), or its network's cost."""
  if name in costs.COSTS:
    return float(costs.of(name, record.config['hidden_sizes']))
  at = record.best_epoch
  value = record.history[name][at - 1] if at else None
  return np.nan if value is None else float(value)


def ranked(grouped: dict[str, list[MemberRecord]],
           objectives: tuple[objective_lib.Objective, ...]) -> pd.DataFrame:
  """One row per configuration: label, seeds, each objective's mean (and NAME_std),
  pareto_rank (0: the front), crowding_distance (in its front); NSGA-II's order."""
  rows = []
  for label, members in grouped.items():
    row = dict(label=label, seeds=len(members))
    for o in objectives:
      values = np.array([objective_value(m, o.name) for m in members])
      row[o.name] = float(values.mean())
      row[f'{o.name}_std'] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
    rows.append(row)
  frame = pd.DataFrame(rows)
  losses_NM = losses(frame, objectives)
  frame['pareto_rank'] = pareto.nondominated_ranks(losses_NM)
  frame['crowding_distance'] = pareto.crowding_by_front(losses_NM, frame['pareto_rank'])
  return frame.iloc[pareto.best_first(losses_NM)].reset_index(drop=True)


def losses(frame: pd.DataFrame, objectives) -> np.ndarray:
  """The frame's objective means as losses (maximized ones negated)."""
  return np.stack([o.loss(frame[o.name].to_numpy(np.float64)) for o in objectives], axis=1)


def reference_point(losses_NM: np.ndarray) -> np.ndarray:
  """Past the worst finite loss of each objective by REFERENCE_MARGIN of its range."""
  finite = np.where(np.isfinite(losses_NM), losses_NM, np.nan)
  worst, best = np.nanmax(finite, axis=0), np.nanmin(finite, axis=0)
  spread = np.where(worst > best, worst - best, 1.0)
  return worst + REFERENCE_MARGIN * spread


def section(grouped: dict[str, list[MemberRecord]], config, study_dir: Path) -> list[str]:
  """The report's "Pareto front": the front's table, its hypervolume, and
  pareto_front.csv (every configuration, ranked) in the study folder."""
  objectives = study_lib.objectives(config.objective)
  frame = ranked(grouped, objectives)
  folders.write_atomic(study_dir / FRONT_FILE, frame.to_csv(index=False).encode())
  losses_NM = losses(frame, objectives)
  front = frame[frame.pareto_rank == 0].sort_values(   # the first objective's best first
      objectives[0].name, ascending=objectives[0].minimize, kind='stable')
  names = [o.name for o in objectives]
  lines = ['## Pareto front', '',
           f'{len(front)} of {len(frame)} configurations are on the front of '
           + ', '.join(f'{o.name} ({"min" if o.minimize else "max"})' for o in objectives)
           + ' (means over seeds; every configuration ranked in '
           f'{FRONT_FILE} and jaxmlp.read_pareto).', '']
  if np.isfinite(losses_NM).all(axis=1).any():
    reference = reference_point(losses_NM)
    shown = [f'{name} {o.loss(value):.6g}'   # a loss's negation is the value again
             for name, value, o in zip(names, reference, objectives)]
    lines += [f'Hypervolume {pareto.hypervolume(losses_NM, reference):.6g}, against the '
              f'reference point ({", ".join(shown)}): past the worst value of each '
              f'objective by {REFERENCE_MARGIN:.0%} of its range.', '']
  from jaxmlp.report import figures   # pylint: disable=import-outside-toplevel  (matplotlib)
  marked = (config.final_reference or {}).get('configuration')
  figure = figures.pareto_front(frame, names, f'{config.name}: every configuration, its '
                                'Pareto front joined', study_dir / 'figures' / FIGURE_FILE,
                                marked=marked)
  lines += [f'![Pareto front]({figure.relative_to(study_dir)})', '']
  if marked and marked in set(frame.label):
    rank = int(frame.pareto_rank[frame.label == marked].iloc[0])
    lines += [f"The original's choice, {marked}, is "
              + ('on the front.' if rank == 0 else f'of rank {rank}: dominated.'), '']
  lines += ['| configuration | ' + ' | '.join(names) + ' | crowding distance |',
            '|---|' + '---|' * (len(names) + 1)]
  for row in front.to_dict('records'):
    cells = [_cell(row[name], row[f'{name}_std']) for name in names]
    lines.append(f'| {row["label"]} | ' + ' | '.join(cells)
                 + f' | {row["crowding_distance"]:.4g} |')
  return lines + ['']


def _cell(mean: float, std: float) -> str:
  """A cost (the same for every seed) as a whole number; a metric as mean ± std."""
  if float(mean).is_integer() and not std:   # std: NaN (one seed) or 0
    return f'{int(mean):,}'
  return f'{mean:.4f}' + ('' if np.isnan(std) else f' ± {std:.4f}')
