"""A study folder's results as pandas DataFrames: one row per member, or per epoch.

  read_results(STUDY_DIR)   # members/, trials/ and final/: config, test and best-val
  read_history(STUDY_DIR)   # one row per member and epoch: every metric of its history
  read_pareto(STUDY_DIR, '(val_accuracy, parameter_count)')   # configurations, ranked

Every row comes from a result.json through folders.read_member (MemberRecord), so the
frames hold exactly what the records hold, and the columns of its own that the search
that ran it adds (Search.frame_columns: a Hyperband trial's bracket and round).
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from jaxmlp.common.errors import UserError
from jaxmlp.engine import latency
from jaxmlp.store import records
from jaxmlp.store import folders
from jaxmlp.store import run_identity
from jaxmlp.report import pareto as pareto_report
from jaxmlp.search import registry
from jaxmlp.studies import study as study_lib

# The folders that hold member folders, and the role their rows get.
ROLES = {'members': 'member', 'trials': 'trial', 'final': 'final'}


def _search_columns(study_dir: Path):
  """The columns of its own that the search which ran the study adds to a row
  (Search.frame_columns); none for a folder without run.json."""
  search = 'grid'
  if (study_dir / run_identity.RUN_FILE).is_file():
    search = (run_identity.read(study_dir).get('config') or {}).get('search', 'grid')
  if search not in registry.SEARCHES:
    return lambda role, record: {}
  return registry.search_named(search).frame_columns(study_dir)


def _study_members(study_dir: Path) -> list[tuple[str, str, records.MemberRecord]]:
  """(role, member folder name, record) of every finished member, folder by folder."""
  study_dir = Path(study_dir)
  roots = [study_dir / name for name in ROLES if (study_dir / name).is_dir()]
  if not roots and not (study_dir / run_identity.RUN_FILE).is_file():
    raise UserError(f'{study_dir} is not a study folder: it holds no '
                    f'{run_identity.RUN_FILE} and no '
                    f'{", ".join(f"{name}/" for name in ROLES)} folder')
  found = []
  for folder in roots:
    for directory in sorted(p for p in folder.iterdir() if p.is_dir()):
      record = folders.read_member(directory)
      if record is not None:   # an unfinished member has no result.json yet
        found.append((ROLES[folder.name], directory.name, record))
  return found


def _identity(role: str, folder: str, record: records.MemberRecord,
              search_columns: Callable[[str, records.MemberRecord], dict[str, Any]]
              ) -> dict[str, Any]:
  """The columns that say which member a row is (the search's own among them)."""
  row = dict(role=role, folder=folder, label=record.label, arm=record.arm,
             seed=record.seed)
  row.update(search_columns(role, record))
  if record.trial is not None:
    row.update(trial=record.trial.trial)
  return row


def _config_value(value: Any) -> Any:
  """Layer sizes as one string ('128x256'), so a column holds one value per row."""
  if isinstance(value, (list, tuple)):
    return 'x'.join(str(v) for v in value)
  return value


def _best_val(record: records.MemberRecord) -> dict[str, Any]:
  """Each validation metric at the best epoch (None where there is none)."""
  names = [name for name in record.history if name.startswith('val_')]
  at = record.best_epoch
  return {f'best_{name}': (record.history[name][at - 1] if at else None)
          for name in names}


def _result_row(role: str, folder: str, record: records.MemberRecord,
                search_columns) -> dict[str, Any]:
  row = _identity(role, folder, record, search_columns)
  row['swept'] = ','.join(record.swept)
  row.update({name: _config_value(value) for name, value in record.config.items()})
  if record.run is not None:
    run = record.run
    row.update(test_loss=run.test_loss, test_accuracy=run.test_accuracy,
               test_f1=run.test_f1)
  row.update(_best_val(record))
  row.update(epochs_trained=record.epochs_trained, best_epoch=record.best_epoch,
             diverged=record.diverged)
  if record.run is not None:
    run = record.run
    row.update(initial_epoch=run.initial_epoch, fit_time_s=run.fit_time_s,
               compile_time_s=run.compile_time_s,
               members_per_program=run.members_per_program, program=run.program,
               weight_updates=run.weight_updates)
  if record.trial is not None:
    trial = record.trial
    row.update(configuration=trial.configuration, state=trial.state, value=trial.value,
               worker=trial.worker)
  return row


def read_results(study_dir: str | Path) -> pd.DataFrame:
  """One row per finished member of members/, trials/ and final/ (column `role`).

  Columns: which member (role, folder, label, arm, seed; the search's own, e.g.
  trial_id, bracket, round for a Hyperband trial; trial for an Optuna trial), every
  config field of the member (hidden_sizes as '128x256'), test loss/accuracy/F1, each
  validation metric at the best epoch (best_val_*), epochs_trained, best_epoch, diverged, fit and compile time,
  and an Optuna trial's state and value. A value a record lacks is missing (NaN/None).
  A study run with several objectives adds each objective's value and its
  configuration's pareto_rank and crowding_distance (read_pareto's; none for final/).
  """
  study_dir = Path(study_dir)
  latency.use_study(study_dir)   # a latency objective: the numbers the study measured
  search_columns = _search_columns(study_dir)
  members = _study_members(study_dir)
  frame = pd.DataFrame([_result_row(role, folder, record, search_columns)
                        for role, folder, record in members])
  objectives, constraints = _several_objectives(study_dir)
  if objectives and len(frame):
    for o in objectives:   # each member's own value (a cost, or its best epoch's metric)
      frame[o.name] = [pareto_report.objective_value(record, o.name)
                       for _, _, record in members]
    ranks = pareto_report.ranked(_by_configuration(members), objectives, constraints)
    ranks = ranks.set_index('label')[['pareto_rank', 'crowding_distance']
                                     + (['violation'] if constraints else [])]
    keys = pd.Series([_configuration_of(role, record) for role, _, record in members],
                     index=frame.index)
    for column in ranks.columns:
      frame[column] = keys.map(ranks[column])
  return frame


def _several_objectives(study_dir: Path):
  """The objectives and constraints of a study run with several (run.json), else
  (None, ())."""
  if not (study_dir / run_identity.RUN_FILE).is_file():
    return None, ()
  config = run_identity.read(study_dir).get('config') or {}
  objective = config.get('objective')
  if not isinstance(objective, str) or objective in study_lib.OBJECTIVES:
    return None, ()
  try:
    return (study_lib.objectives(objective),
            study_lib.constraints(config.get('constraints') or ''))
  except UserError:
    return None, ()


def read_history(study_dir: str | Path) -> pd.DataFrame:
  """One row per finished member and epoch (1-based, counted from the member's own
  start), with read_results' identifying columns and each metric of its history."""
  search_columns = _search_columns(Path(study_dir))
  rows = []
  for role, folder, record in _study_members(Path(study_dir)):
    identity = _identity(role, folder, record, search_columns)
    for epoch in range(record.epochs_trained):
      rows.append({**identity, 'epoch': epoch + 1,
                   **{name: values[epoch] for name, values in record.history.items()}})
  return pd.DataFrame(rows)


def read_pareto(study_dir: str | Path, objective: str | Sequence[str],
                constraints: str | Sequence[str] = '') -> pd.DataFrame:
  """One row per configuration the study trained (final models aside), ranked by
  several objectives (`(val_accuracy, parameter_count)`; each may end in :min or :max).

  Columns: label, seeds, each objective's mean over seeds (and NAME_std), pareto_rank
  (0: the front, by non-dominated sorting of the means), crowding_distance (within
  its front); rows in NSGA-II's order, best first. A validation metric is taken at
  the epoch the tracker kept; a configuration with a diverged seed has a NaN mean,
  the worst value. Ranks and distances are core.pareto's, which are Optuna's.
  `constraints` ('(parameter_count <= 100000,)') add each bounded name's mean,
  violation and feasible, and rank feasible configurations first (Deb's rules).
  """
  objectives = study_lib.objectives(objective)
  bounds = study_lib.constraints(constraints)
  latency.use_study(Path(study_dir))
  groups = _by_configuration(_study_members(Path(study_dir)))
  if not groups:
    raise UserError(f'{study_dir} holds no finished member yet: nothing to rank')
  return pareto_report.ranked(groups, objectives, bounds)


def _configuration_of(role: str, record: records.MemberRecord) -> str | None:
  """Which configuration a member stands for in a Pareto ranking (the report's rule):
  its label; an Optuna trial's configuration, where it completed; none for a final
  model or a pruned or failed trial."""
  if role == 'final':
    return None
  if record.trial is not None:
    return record.trial.configuration if record.trial.state == 'COMPLETE' else None
  return record.label


def _by_configuration(members) -> dict[str, list[records.MemberRecord]]:
  """The records each configuration's Pareto ranking is by (_configuration_of)."""
  groups: dict[str, list[records.MemberRecord]] = {}
  for role, _, record in members:
    key = _configuration_of(role, record)
    if key is not None:
      groups.setdefault(key, []).append(record)
  return groups
