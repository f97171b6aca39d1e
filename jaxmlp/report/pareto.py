"""Configurations ranked by several objectives: the table (jaxmlp.read_pareto), the
study folder's pareto_front.csv and the report's "Pareto front" section.

A configuration's value of an objective is its mean over seeds: a validation metric
at the epoch the tracker kept, or its network's cost (core.costs). A diverged seed
makes the mean NaN, the worst value. Ranks and crowding distances are core.pareto's.
"""

from pathlib import Path

import jax
import numpy as np
import pandas as pd

from jaxmlp.core import costs
from jaxmlp.core import objective as objective_lib
from jaxmlp.core import pareto
from jaxmlp.engine import latency
from jaxmlp.store import folders
from jaxmlp.store import run_identity
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
  kept (NaN where none was kept: diverged), its network's cost, or its latency."""
  if name in costs.COSTS:
    return float(costs.of(name, record.config['hidden_sizes']))
  if name in costs.LATENCIES:   # measured once per structure, kept in latency.json
    return latency.of(name, record.config['hidden_sizes'])
  at = record.best_epoch
  value = record.history[name][at - 1] if at else None
  return np.nan if value is None else float(value)


def ranked(grouped: dict[str, list[MemberRecord]],
           objectives: tuple[objective_lib.Objective, ...],
           constraints: tuple[objective_lib.Constraint, ...] = ()) -> pd.DataFrame:
  """One row per configuration: label, seeds, each objective's and bounded name's mean
  (and NAME_std), pareto_rank (0: the front), crowding_distance (in its front); with
  constraints, violation (their total, 0 where all hold) and feasible. NSGA-II's
  order, feasible configurations first (Deb's rules)."""
  names = list(dict.fromkeys([o.name for o in objectives] + [c.name for c in constraints]))
  rows = []
  for label, members in grouped.items():
    row = dict(label=label, seeds=len(members))
    for name in names:
      values = np.array([objective_value(m, name) for m in members])
      row[name] = float(values.mean())
      row[f'{name}_std'] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
    rows.append(row)
  frame = pd.DataFrame(rows)
  losses_NM = losses(frame, objectives)
  violation_N = None
  if constraints:
    violation_N = violation(frame, constraints)
    frame['violation'] = violation_N
    frame['feasible'] = violation_N <= 0
  frame['pareto_rank'] = pareto.nondominated_ranks(losses_NM, violation_N)
  frame['crowding_distance'] = pareto.crowding_by_front(losses_NM, frame['pareto_rank'])
  return frame.iloc[pareto.best_first(losses_NM, violation_N)].reset_index(drop=True)


def violation(frame: pd.DataFrame, constraints) -> np.ndarray:
  """Each row's total violation of `constraints` (core.pareto.violation's sum)."""
  return pareto.violation(np.stack(
      [c.violation(frame[c.name].to_numpy(np.float64)) for c in constraints], axis=1))


def losses(frame: pd.DataFrame, objectives) -> np.ndarray:
  """The frame's objective means as losses (maximized ones negated); a configuration
  with a mean that is not finite (a diverged seed) is the worst in every objective."""
  return pareto.failed_as_worst(np.stack(
      [o.loss(frame[o.name].to_numpy(np.float64)) for o in objectives], axis=1))


def reference_point(losses_NM: np.ndarray) -> np.ndarray:
  """Past the worst finite loss of each objective by REFERENCE_MARGIN of its range."""
  finite = np.where(np.isfinite(losses_NM), losses_NM, np.nan)
  worst, best = np.nanmax(finite, axis=0), np.nanmin(finite, axis=0)
  spread = np.where(worst > best, worst - best, 1.0)
  return worst + REFERENCE_MARGIN * spread


def reference_of(config, frame: pd.DataFrame, objectives) -> np.ndarray | None:
  """The hypervolume's reference point as losses: --config.hypervolume_reference (in
  each objective's own units), else REFERENCE_MARGIN past the worst feasible finite
  means; None where no configuration has a finite, feasible point."""
  losses_NM = losses(frame, objectives)[feasible(frame)]
  if config.get('hypervolume_reference'):
    return np.array([o.loss(float(v)) for o, v in zip(objectives,
                                                       config.hypervolume_reference)])
  if not np.isfinite(losses_NM).all(axis=1).any():
    return None
  return reference_point(losses_NM)


def feasible(frame: pd.DataFrame) -> np.ndarray:
  """Which rows of a ranked frame meet its constraints (all, where it has none)."""
  return (frame['feasible'].to_numpy(bool) if 'feasible' in frame
          else np.ones(len(frame), dtype=bool))


def hypervolume_line(config, frame: pd.DataFrame, objectives) -> str | None:
  """The front's hypervolume against the reference point, as the report says it."""
  reference = reference_of(config, frame, objectives)
  if reference is None:
    return None
  volume = pareto.hypervolume(losses(frame, objectives)[feasible(frame)], reference)
  shown = ', '.join(f'{o.name} {o.loss(value):.6g}'   # a loss's negation is the value
                    for value, o in zip(reference, objectives))
  how = ('--config.hypervolume_reference' if config.get('hypervolume_reference') else
         f'past the worst value of each objective by {REFERENCE_MARGIN:.0%} of its range')
  return f'Hypervolume {volume:.6g}, against the reference point ({shown}): {how}.'


def infeasible_line(frame: pd.DataFrame, constraints) -> str | None:
  """Where no configuration satisfies the constraints: says so, and names the one
  that violates them least (rank 0). None where one does, or there are none."""
  if not constraints or frame['feasible'].any() or not len(frame):
    return None
  least = frame.iloc[0]
  values = ', '.join(f'{c.name} {least[c.name]:.6g}' for c in constraints)
  return (f'No configuration satisfies {", ".join(map(str, constraints))}: the one that '
          f'violates them least is {least.label} ({values}; violation {least.violation:.6g}).')


def section(grouped: dict[str, list[MemberRecord]], config, study_dir: Path) -> list[str]:
  """The report's "Pareto front": the front's table, its hypervolume, and
  pareto_front.csv (every configuration, ranked) in the study folder."""
  objectives = study_lib.objectives(config.objective)
  constraints = study_lib.constraints(config.get('constraints', ''))
  frame = ranked(grouped, objectives, constraints)
  folders.write_atomic(study_dir / FRONT_FILE, frame.to_csv(index=False).encode())
  front = frame[(frame.pareto_rank == 0) & feasible(frame)].sort_values(
      objectives[0].name, ascending=objectives[0].minimize, kind='stable')  # 1st's best first
  names = [o.name for o in objectives]
  bounded = (' that satisfy ' + ', '.join(map(str, constraints))) if constraints else ''
  lines = ['## Pareto front', '',
           f'{len(front)} of {len(frame)} configurations{bounded} are on the front of '
           + ', '.join(f'{o.name} ({"min" if o.minimize else "max"})' for o in objectives)
           + ' (means over seeds; every configuration ranked in '
           f'{FRONT_FILE} and jaxmlp.read_pareto).', '']
  infeasible = infeasible_line(frame, constraints)
  if infeasible:
    lines += [f'**{infeasible}**', '']
  volume = hypervolume_line(config, frame, objectives)
  if volume:
    lines += [volume, '']
  if any(name in costs.LATENCIES for name in names + [c.name for c in constraints]):
    lines += [f'Latencies: the median of {latency.REPEATS} timed calls of the jitted forward '
              f'pass ({", ".join(f"{n}: batch {b}" for n, b in latency.BATCHES.items())}) '
              f'on {latency.device() or jax.devices()[0]}, once per network '
              f'({latency.FILE}); they depend on '
              'the machine and its load.', '']
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


def verdict(study_dir: Path) -> str | None:
  """The command's last word on a study with constraints that none of its
  configurations satisfies (run.json's constraints, pareto_front.csv), else None."""
  path = Path(study_dir) / FRONT_FILE
  if not path.is_file() or not (Path(study_dir) / run_identity.RUN_FILE).is_file():
    return None
  text = (run_identity.read(Path(study_dir)).get('config') or {}).get('constraints') or ''
  constraints = study_lib.constraints(text)
  return infeasible_line(pd.read_csv(path), constraints) if constraints else None


def _cell(mean: float, std: float) -> str:
  """A cost (the same for every seed) as a whole number; a metric as mean ± std."""
  if float(mean).is_integer() and (np.isnan(std) or std == 0):   # NaN: one seed
    return f'{int(mean):,}'
  return f'{mean:.4f}' + ('' if np.isnan(std) else f' ± {std:.4f}')
