"""Checks of a study before anything loads or compiles: impossible values get one line
naming the flag to fix (the command line exits 2 on it)."""

import math

import ml_collections

from jaxmlp.core import model as model_lib
from jaxmlp.core import optim
from jaxmlp.common.errors import UserError
from jaxmlp.studies import space
from jaxmlp.studies import study


def _whole(value, low: int) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value) -> str:
  """A value as the user typed it: 1.0 stays 1.0 where a whole number is wanted."""
  return repr(value) if isinstance(value, float) else study.format_value(value)


def check_run(config: ml_collections.ConfigDict) -> None:
  """The run-wide fields, before anything loads or compiles."""
  problems = []

  def need(ok, field, rule):
    if not ok:
      problems.append(f'--config.{field}={_shown(config[field])} is impossible: {rule}')

  name = config.name
  need(isinstance(name, str) and name not in ('', '.', '..') and '/' not in name
       and '\\' not in name and '\0' not in name, 'name',
       "a study's name is one folder name inside --output_dir: not empty, not . or .., "
       'no / or \\')
  need(_whole(config.seeds, 1), 'seeds', 'run at least 1 seed (--seeds=N)')
  _check_objectives(config, problems)
  if not problems:
    _check_constraints(config, problems)
  # The search's name and its own settings are the registry's and the search's to check.
  for field, low in (('search_seed', 1), ('final_epochs', 0), ('final_batch_size', 1),
                     ('final_front_size', 1), ('data_limit', 0)):
    need(_whole(config[field], low), field, f'{field} must be a whole number >= {low}')
  need(_number(config.validation_split) and 0 < config.validation_split < 1,
       'validation_split', 'the validation fraction must be in (0, 1)')
  if not problems:
    need(study.training_rows(config, 60_000) < 60_000, 'validation_split',
         'it leaves no validation rows of the 60000: give a fraction of at least 1/60000')
  need(_whole(config.max_members_per_program, 0), 'max_members_per_program',
       'a whole number of members >= 0 (0: as many as fit)')
  need(config.matmul_precision in study.MATMUL_PRECISIONS, 'matmul_precision',
       f"choose one of {', '.join(study.MATMUL_PRECISIONS)}")
  need(config.member_arithmetic in study.MEMBER_ARITHMETICS, 'member_arithmetic',
       f"choose one of {', '.join(study.MEMBER_ARITHMETICS)}")
  need(config.data_source in study.DATA_SOURCES, 'data_source',
       f"choose one of {', '.join(study.DATA_SOURCES)}")
  for field in ('final_shuffle', 'data_checksums', 'confusion_matrix'):
    need(isinstance(config[field], bool), field, 'give True or False')
  if problems:
    raise UserError(problems[0])


def check_members(members: list[study.Member], n_train: int) -> None:
  """Refuses impossible values before anything compiles, naming the flag to fix. A
  configuration is checked once, whatever its seeds (a label names one)."""
  checked = set()
  for m in members:
    if m.label in checked:
      continue
    checked.add(m.label)
    v = m.values
    problems = []
    for field in study.MEMBER_FIELDS:
      if space.has_distribution(field, v[field]):
        raise UserError(f'--config.{field} holds a distribution ({m.label}): it needs '
                        '--search=optuna (the grid and Hyperband take values or tuples)')

    def need(ok, field, rule):
      if not ok:
        problems.append(f'--config.{field}={_shown(v[field])} is impossible'
                        f' ({m.label}): {rule}')

    bs = v['batch_size']
    need(_whole(bs, 1) and bs <= n_train, 'batch_size',
         f'the batch size must be a whole number from 1 to {n_train} (the training rows)')
    need(v['optimizer'] in optim.OPTIMIZERS, 'optimizer',
         f"choose one of {', '.join(optim.OPTIMIZERS)}")
    need(v['kernel_init'] in model_lib.KERNEL_INITS, 'kernel_init',
         f"choose one of {', '.join(model_lib.KERNEL_INITS)}")
    hidden = v['hidden_sizes']
    need(isinstance(hidden, tuple) and bool(hidden) and all(_whole(h, 1) for h in hidden),
         'hidden_sizes', "give positive layer widths, e.g. --config.hidden_sizes='(128, 256)'")
    for field in study.HPARAM_FIELDS:
      need(_number(v[field]) and math.isfinite(v[field]), field, 'give a finite number')
    if problems:
      raise UserError(problems[0])
    need(v['learning_rate'] >= 0, 'learning_rate', 'the learning rate must be >= 0')
    for field in ('l1', 'l2'):
      need(v[field] >= 0, field, 'a penalty alpha must be >= 0')
    need(0 <= v['dropout_rate'] < 1, 'dropout_rate', 'the dropout rate must be in [0, 1)')
    for field in ('rho', 'beta1', 'beta2'):
      need(0 <= v[field] < 1, field, f'{field} must be in [0, 1)')
    need(v['epsilon'] > 0, 'epsilon', 'epsilon must be > 0')
    need(v['init_stddev'] >= 0, 'init_stddev', 'a standard deviation must be >= 0')
    need(isinstance(v['shuffle'], bool), 'shuffle', 'give True or False')
    need(_whole(v['epochs'], 1), 'epochs', 'train at least 1 epoch (--epochs=N)')
    need(v['early_stopping_monitor'] in study.OBJECTIVES, 'early_stopping_monitor',
         f"choose one of {', '.join(study.OBJECTIVES)}")
    need(_whole(v['early_stopping_patience'], 0), 'early_stopping_patience',
         'patience is a whole number of epochs >= 0 (0: off)')
    if problems:
      raise UserError(problems[0])


MULTI_OBJECTIVE_SEARCHES = ('grid', 'hyperband', 'optuna', 'pbt')


def _check_objectives(config: ml_collections.ConfigDict, problems: list[str]) -> None:
  """One per-epoch metric, or several objectives (with the grid, so far)."""
  objective = config.objective
  if isinstance(objective, str) and objective in study.OBJECTIVES:
    return
  if not isinstance(objective, str) or not any(c in objective for c in '(,['):
    problems.append(f'--config.objective={_shown(objective)} is impossible: choose one of '
                    f"{', '.join(study.OBJECTIVES)}, or several as '(val_accuracy, "
                    "parameter_count)'")
    return
  try:
    names = [o.name for o in study.objectives(objective)]
  except UserError as e:
    problems.append(str(e))
    return
  if not any(name in study.OBJECTIVES for name in names):
    problems.append(f'--config.objective={objective}: name a validation metric too '
                    f"({', '.join(study.OBJECTIVES)}): it picks the epoch that stands for "
                    'each member')
  elif config.get('search', 'grid') not in MULTI_OBJECTIVE_SEARCHES:
    problems.append(f'--config.objective={objective}: --search={config.search} ranks by '
                    'one objective so far; several objectives run with --search='
                    + ' or '.join(MULTI_OBJECTIVE_SEARCHES))
  reference = config.get('hypervolume_reference', ())
  if reference == () or reference == []:
    return
  if not (isinstance(reference, (tuple, list)) and len(reference) == len(names) and
          all(_number(v) and math.isfinite(v) for v in reference)):
    problems.append(f'--config.hypervolume_reference={_shown(reference)} is impossible: give '
                    f'one finite number per objective, {len(names)} ({", ".join(names)}), '
                    "e.g. '(0.9, 700000)'")


def _check_constraints(config: ml_collections.ConfigDict, problems: list[str]) -> None:
  """Bounds on known names, on a study of several objectives (feasibility ranks
  before Pareto dominance, and one objective has no Pareto ranking to put it in)."""
  text = config.get('constraints', '')
  if not (isinstance(text, str) or (isinstance(text, (tuple, list)) and
                                    all(isinstance(t, str) for t in text))):
    problems.append(f'--config.constraints={text!r} is impossible: give bounds as '
                    "'(parameter_count <= 100000,)'")
    return
  try:
    bounds = study.constraints(text)
  except UserError as e:
    problems.append(str(e))
    return
  if bounds and len(study.objectives(config.objective)) == 1:
    problems.append(f'--config.constraints={text}: constraints rank with several objectives: '
                    f"give --config.objective='({config.objective}, parameter_count)' or "
                    'drop the constraints')
