"""Studies as data: find a study's config, expand it into members, check it, group it.

A study config is a ConfigDict (see `make_config`). A member field whose value is a
tuple is a sweep axis (for `hidden_sizes`, a tuple of tuples); `arms` holds named
override sets that are not a cartesian product (e.g. RMSprop vs SGD + N(10)).
Members = arms x sweep axes x seeds.
"""

import dataclasses
import importlib.util
import itertools
import math
from pathlib import Path
from typing import Any

import ml_collections

from jaxmlp.core import model as model_lib
from jaxmlp.core import optim
from jaxmlp.studies import space
from jaxmlp.core import train
from jaxmlp.errors import UserError

# Numeric hyperparameters: traced arrays, one compiled program serves all values.
HPARAM_FIELDS = ('learning_rate', 'rho', 'beta1', 'beta2', 'epsilon', 'l1', 'l2',
                 'dropout_rate', 'init_mean', 'init_stddev')
# What one member trains with; any of them may be a sweep axis.
MEMBER_FIELDS = HPARAM_FIELDS + ('hidden_sizes', 'kernel_init', 'optimizer', 'batch_size',
                                 'shuffle', 'epochs', 'early_stopping_monitor',
                                 'early_stopping_patience')
# One value for the whole run; they change what trains or how it is measured.
RUN_FIELDS = ('validation_split', 'seeds', 'arm', 'objective', 'search',
              'hyperband_max_epochs', 'hyperband_factor', 'hyperband_iterations',
              'optuna_trials', 'optuna_sampler', 'optuna_pruner',
              'search_seed', 'final_epochs', 'final_batch_size', 'final_shuffle',
              'matmul_precision', 'data_source', 'data_limit', 'data_checksums')
# May change between reruns of one run: what the report shows, how programs are cut,
# how long a search may take.
FREE_FIELDS = ('name', 'reference', 'final_reference', 'confusion_matrix',
               'max_members_per_program', 'optuna_slots', 'optuna_timeout')
# Set in a config file only: structured values with no command-line syntax.
FILE_ONLY_FIELDS = ('arms', 'reference', 'final_reference')
OBJECTIVES = ('val_accuracy', 'val_loss', 'val_f1')
SEARCHES = ('grid', 'hyperband', 'optuna')
MATMUL_PRECISIONS = ('float32', 'tensorfloat32', 'bfloat16')
DATA_SOURCES = ('idx', 'tfds')
RESULT_KEYS = ('test_accuracy', 'test_loss', 'fit_time_s', 'weight_updates', 'note')


def baseline() -> dict[str, Any]:
  """SPEC section 2: the original's network and training protocol."""
  return dict(
      name='baseline',
      hidden_sizes=(128, 256),
      kernel_init='glorot_uniform',  # or 'normal' (init_mean, init_stddev), 'he_normal'
      init_mean=0.0,
      init_stddev=0.05,              # Keras RandomNormal's default stddev
      dropout_rate=0.0,
      optimizer='adam',
      learning_rate=0.001,
      rho=0.9,                       # Keras RMSprop default
      beta1=0.9,
      beta2=0.999,
      epsilon=1e-7,                  # Keras' epsilon for Adam and RMSprop
      l1=0.0,
      l2=0.0,
      batch_size=256,
      shuffle=False,
      epochs=100,
      validation_split=0.2,
      seeds=3,                       # seeds 0..seeds-1 of every configuration
      arms={},
      arm='',                        # '' runs every arm; a name runs only that one
      reference=(),                  # the original's reported results, see reference_for
      max_members_per_program=0,     # 0: as many as fit in device memory
      objective='val_accuracy',      # or val_loss, val_f1: ranks configurations by the
                                     # best epoch (mean over seeds); its weights are kept
      early_stopping_monitor='val_loss',
      early_stopping_patience=0,     # Keras EarlyStopping; 0: never stop early
      search='grid',                 # grid: every configuration; hyperband: keras_tuner's
      hyperband_max_epochs=50,       # Hyperband with its max_epochs,
      hyperband_factor=3,            # factor
      hyperband_iterations=1,        # and hyperband_iterations; optuna: Optuna's
      optuna_trials=100,             # sampler and pruner, over this many trials
      optuna_timeout=0,              # or until this many seconds have passed (0: no limit),
      optuna_sampler='tpe',          # tpe, random, cmaes, qmc
      optuna_pruner='median',        # none, median, successive_halving, hyperband
      optuna_slots=0,                # trials' executions per program (0: what fits)
      search_seed=1,                 # which configurations a search draws, reproducibly
      final_epochs=0,                # > 0: retrain the best configuration this long,
      final_batch_size=32,           # at Keras' default batch size,
      final_shuffle=True,            # shuffled, as the original's last fit
      final_reference={},            # the original's numbers for its final model
      confusion_matrix=False,        # report the best model's confusion matrix
      matmul_precision='float32',    # float32 reproduces Keras; the others trade it for speed
      data_source='idx',             # idx: the original files in Keras' row order; tfds
      data_limit=0,                  # > 0: the first N rows of each split (smoke runs)
      data_checksums=True,           # False: another IDX dataset (e.g. Fashion-MNIST)
  )


def make_config(**overrides) -> ml_collections.ConfigDict:
  """The baseline with a study's changes; unknown fields are refused (typos).

  Not type-safe: any member field may hold one value or a tuple of values (an axis).
  """
  fields = baseline()
  unknown = set(overrides) - set(fields)
  if unknown:
    raise ValueError(f'unknown config fields {sorted(unknown)}')
  fields.update(overrides)
  fields['arms'] = {name: dict(arm) for name, arm in fields['arms'].items()}
  return ml_collections.ConfigDict(fields, type_safe=False)


def configs_dir() -> Path:
  """Installed, configs/ ships as jaxmlp/configs; in a source checkout it is ../configs."""
  here = Path(__file__).resolve().parents[1]  # the jaxmlp package
  for candidate in (here / 'configs', here.parent / 'configs'):
    if candidate.is_dir():
      return candidate
  raise UserError(f'the study configs are missing beside {here}: reinstall with pip install .')


def available_studies() -> dict[str, Path]:
  return {p.stem: p for p in sorted(configs_dir().glob('*.py')) if not p.stem.startswith('_')}


def config_path(study: str) -> Path:
  """A study name from configs/, or the path of a user's own config file."""
  studies = available_studies()
  if study in studies:
    return studies[study]
  if study.endswith('.py') and Path(study).is_file():
    return Path(study)
  raise UserError(f"unknown study {study!r}: choose one of {', '.join(studies)} "
                  '(or pass the path of a config .py file)')


def load_config(study: str) -> ml_collections.ConfigDict:
  path = config_path(study)
  spec = importlib.util.spec_from_file_location(f'jaxmlp_study_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    config = module.get_config()
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f'{path} could not be loaded ({type(e).__name__}: {e}): a study file '
                    'defines get_config() returning jaxmlp.studies.study.make_config(...)') from e
  if not isinstance(config, ml_collections.ConfigDict) or set(config) != set(baseline()):
    raise UserError(f'{path}: get_config() must return jaxmlp.studies.study.make_config(...)')
  return config


def is_sweep(field: str, value) -> bool:
  if field not in MEMBER_FIELDS or not isinstance(value, tuple):
    return False
  if field == 'hidden_sizes':
    return bool(value) and isinstance(value[0], tuple)
  return True


def axis_values(field: str, value) -> tuple:
  """A field's values as a tuple, whether it is a sweep axis or one value."""
  return value if is_sweep(field, value) else (value,)


def hparams_of(values: dict[str, Any]) -> dict[str, float]:
  """A member's traced hyperparameters, as float64 host numbers, with the constants
  Keras forms from them in float64 (1 - beta: optim.complements; dropout's keep
  probability and scale: model.dropout_constants)."""
  hparams = {f: float(values[f]) for f in HPARAM_FIELDS}
  return {**hparams, **optim.complements(hparams),
          **model_lib.dropout_constants(hparams['dropout_rate'])}


@dataclasses.dataclass(frozen=True)
class Member:
  """One training run: a configuration of the study and a seed."""
  label: str                 # the configuration, without the seed
  arm: str
  seed: int
  values: dict[str, Any]     # every field, resolved to one value
  swept: tuple[str, ...]     # the fields that vary in this study

  @property
  def structure(self) -> train.Structure:
    v = self.values
    return train.Structure(
        hidden_sizes=tuple(v['hidden_sizes']), kernel_init=v['kernel_init'],
        use_dropout=v['dropout_rate'] > 0, optimizer=v['optimizer'],
        use_l1=v['l1'] > 0, use_l2=v['l2'] > 0, batch_size=int(v['batch_size']),
        shuffle=bool(v['shuffle']))

  @property
  def tracking(self) -> train.Tracking:
    v = self.values
    return train.Tracking(v['objective'], v['early_stopping_monitor'],
                          int(v['early_stopping_patience']))

  @property
  def hparams(self) -> dict[str, float]:
    return hparams_of(self.values)

  @property
  def epochs(self) -> int:
    return int(self.values['epochs'])


def format_value(value) -> str:
  if isinstance(value, tuple):
    return 'x'.join(map(str, value))
  return f'{value:g}' if isinstance(value, float) else str(value)


def expand(config: ml_collections.ConfigDict, seeds: int | None = None) -> list[Member]:
  """arms x sweep axes x seeds (config.seeds unless given), in config order."""
  seeds = config.seeds if seeds is None else seeds
  base = config.to_dict()
  arms = base.pop('arms') or {'': {}}
  if config.arm:
    if config.arm not in arms:
      raise UserError(f"unknown arm {config.arm!r}: --config.arm must be one of "
                      f"{', '.join(arms)}")
    arms = {config.arm: arms[config.arm]}
  members = []
  for arm, overrides in arms.items():
    fields = {**base, **overrides}
    swept = tuple(f for f, v in fields.items() if is_sweep(f, v))
    for combo in itertools.product(*(fields[f] for f in swept)):
      values = {**fields, **dict(zip(swept, combo))}
      label = ','.join(([arm] if arm else []) +
                       [f'{f}={format_value(v)}' for f, v in zip(swept, combo)]
                       ) or config.name
      members += [Member(label, arm, seed, values, swept) for seed in range(seeds)]
  return members


def training_rows(config, dataset_rows: int = 60_000) -> int:
  rows = int(dataset_rows * (1 - config.validation_split))
  return min(rows, config.data_limit) if config.data_limit else rows


def _whole(value, low: int) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_run(config: ml_collections.ConfigDict) -> None:
  """The run-wide fields, before anything loads or compiles."""
  problems = []

  def need(ok, field, rule):
    if not ok:
      problems.append(f'--config.{field}={format_value(config[field])} is impossible: {rule}')

  need(_whole(config.seeds, 1), 'seeds', 'run at least 1 seed (--seeds=N)')
  need(config.objective in OBJECTIVES, 'objective', f"choose one of {', '.join(OBJECTIVES)}")
  need(config.search in SEARCHES, 'search', f"choose one of {', '.join(SEARCHES)}")
  for field, low in (('hyperband_max_epochs', 1), ('hyperband_factor', 2),
                     ('hyperband_iterations', 1), ('search_seed', 1), ('final_epochs', 0),
                     ('final_batch_size', 1), ('data_limit', 0), ('optuna_trials', 1),
                     ('optuna_timeout', 0), ('optuna_slots', 0)):
    need(_whole(config[field], low), field, f'{field} must be a whole number >= {low}')
  need(_number(config.validation_split) and 0 < config.validation_split < 1,
       'validation_split', 'the validation fraction must be in (0, 1)')
  need(config.matmul_precision in MATMUL_PRECISIONS, 'matmul_precision',
       f"choose one of {', '.join(MATMUL_PRECISIONS)}")
  need(config.data_source in DATA_SOURCES, 'data_source',
       f"choose one of {', '.join(DATA_SOURCES)}")
  for field in ('final_shuffle', 'data_checksums', 'confusion_matrix'):
    need(isinstance(config[field], bool), field, 'give True or False')
  if problems:
    raise UserError(problems[0])


def validate(members: list[Member], n_train: int) -> None:
  """Refuses impossible values before anything compiles, naming the flag to fix."""
  for m in members:
    v = m.values
    problems = []
    for field in MEMBER_FIELDS:
      if space.has_distribution(field, v[field]):
        raise UserError(f'--config.{field} holds a distribution ({m.label}): it needs '
                        '--search=optuna (the grid and Hyperband take values or tuples)')

    def need(ok, field, rule):
      if not ok:
        problems.append(f'--config.{field}={format_value(v[field])} is impossible'
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
    for field in HPARAM_FIELDS:
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
    need(v['early_stopping_monitor'] in OBJECTIVES, 'early_stopping_monitor',
         f"choose one of {', '.join(OBJECTIVES)}")
    need(_whole(v['early_stopping_patience'], 0), 'early_stopping_patience',
         'patience is a whole number of epochs >= 0 (0: off)')
    if problems:
      raise UserError(problems[0])


GroupKey = tuple[train.Structure, train.Tracking, int]


def group(members: list[Member]) -> dict[GroupKey, list[Member]]:
  """Members sharing shapes, structure, bookkeeping and length train in one program."""
  groups: dict[GroupKey, list[Member]] = {}
  for m in members:
    groups.setdefault((m.structure, m.tracking, m.epochs), []).append(m)
  return groups


def reference_for(config: ml_collections.ConfigDict, member: Member) -> dict[str, Any]:
  """The original's reported numbers for this member's configuration, if any.

  A reference row names the arm and swept values it belongs to; the rest of its
  keys are results (RESULT_KEYS).
  """
  for row in config.reference:
    keys = {k: v for k, v in row.items() if k not in RESULT_KEYS}
    if all(_same(member.arm if k == 'arm' else member.values.get(k), v)
           for k, v in keys.items()):
      return {k: v for k, v in row.items() if k in RESULT_KEYS}
  return {}


def _same(a, b) -> bool:
  if isinstance(a, float) or isinstance(b, float):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
  return a == b
