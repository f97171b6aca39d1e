"""How a study's hypervolume grew while it ran: after each member finished (its
result.json written, members/ or trials/; final models aside), the hypervolume of the
front of what had finished, against one reference point. Seconds count from run.json,
written before anything trains (a resumed run's pause is counted in; where a rerun that
added work wrote it again, from the first finished member).

A configuration counts from its first finished seed (its mean over those so far);
an Optuna trial that was pruned or failed is never a point of the front.
"""

from pathlib import Path

import pandas as pd

from jaxmlp.core import pareto
from jaxmlp.report import pareto as pareto_report
from jaxmlp.store import folders
from jaxmlp.store import run_identity
from jaxmlp.studies import study as study_lib

FIGURE_FILE = 'hypervolume_growth.png'


def _finished(study_dir: Path) -> list[tuple[float, object]]:
  """(seconds since the run started, record) of every trained member, in that order."""
  out = []
  for root in ('members', 'trials'):
    if not (study_dir / root).is_dir():
      continue
    for directory in (study_dir / root).iterdir():
      record = folders.read_member(directory)
      if record is None or (record.trial is not None and record.trial.state != 'COMPLETE'):
        continue
      out.append(((directory / folders.RESULT_FILE).stat().st_mtime, record))
  # run.json is written before anything trains, and again where a rerun adds work:
  # then the first finished member's time is the earlier.
  start = min([(study_dir / run_identity.RUN_FILE).stat().st_mtime] + [t for t, _ in out])
  return sorted(((t - start, record) for t, record in out), key=lambda pair: pair[0])


def timeline(study_dir: Path, objectives, constraints=(), reference_M=None
             ) -> pd.DataFrame:
  """seconds, hypervolume, configurations, front: one row per finished member. The
  reference point (losses) is `reference_M`, else the report's for the final points."""
  finished = _finished(Path(study_dir))
  if not finished:
    return pd.DataFrame(columns=['seconds', 'hypervolume', 'configurations', 'front'])
  if reference_M is None:
    everything = pareto_report.ranked(_grouped([r for _, r in finished]), objectives,
                                      constraints)
    reference_M = pareto_report.reference_of({}, everything, objectives)
  rows = []
  for i, (seconds, _) in enumerate(finished):
    frame = pareto_report.ranked(_grouped([r for _, r in finished[:i + 1]]), objectives,
                                 constraints)
    feasible = pareto_report.feasible(frame)
    losses_NM = pareto_report.losses(frame, objectives)[feasible]
    rows.append(dict(seconds=seconds, hypervolume=pareto.hypervolume(losses_NM, reference_M),
                     configurations=len(frame),
                     front=int(((frame.pareto_rank == 0) & feasible).sum())))
  return pd.DataFrame(rows)


def _grouped(records) -> dict[str, list]:
  grouped: dict[str, list] = {}
  for r in records:   # an Optuna trial by its configuration, as the report groups them
    grouped.setdefault(r.trial.configuration if r.trial else r.label, []).append(r)
  return grouped


def seconds_to(frame: pd.DataFrame, share: float = 0.95) -> float:
  """When the hypervolume first reached `share` of its last value (NaN: never grew)."""
  final = frame.hypervolume.iloc[-1] if len(frame) else 0.0
  if not final > 0:
    return float('nan')
  return float(frame.seconds[frame.hypervolume >= share * final].iloc[0])


def section(study_dir: Path, config) -> list[str]:
  """The report's lines on the growth (after its "Pareto front" section): a figure
  and when it reached 95%, against the report's reference point."""
  objectives = study_lib.objectives(config.objective)
  constraints = study_lib.constraints(config.get('constraints', ''))
  finished = _finished(Path(study_dir))
  if len(finished) < 2:
    return []
  everything = pareto_report.ranked(_grouped([r for _, r in finished]), objectives,
                                    constraints)
  reference_M = pareto_report.reference_of(config, everything, objectives)
  if reference_M is None:
    return []
  frame = timeline(study_dir, objectives, constraints, reference_M)
  if not frame.hypervolume.iloc[-1] > 0:
    return []
  from jaxmlp.report import figures   # pylint: disable=import-outside-toplevel  (matplotlib)
  path = figures.growth(frame, Path(study_dir) / 'figures' / FIGURE_FILE)
  return [f'The hypervolume as members finished: 95% of its last value '
          f'({frame.hypervolume.iloc[-1]:.6g}) after {seconds_to(frame):.0f} s of '
          f'{frame.seconds.iloc[-1]:.0f} s.', '',
          f'![hypervolume growth]({path.relative_to(study_dir)})', '']
