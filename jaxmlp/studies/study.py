"""Studies as data: find a study's config, expand it into members, group them.

A study config is a ConfigDict (see `make_config`). A member field whose value is a
tuple is a sweep axis (for `hidden_sizes`, a tuple of tuples); `arms` holds named
override sets that are not a cartesian product (e.g. RMSprop vs SGD + N(10)).
Members = arms x sweep axes x seeds.
"""

import dataclasses
import importlib.util
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxmlp.core import costs
from jaxmlp.core import model as model_lib
from jaxmlp.core import objective as objective_lib
from jaxmlp.core import optim
from jaxmlp.core import train
from jaxmlp.common.errors import UserError

# Numeric hyperparameters: traced arrays, one compiled program serves all values.
HPARAM_FIELDS = ('learning_rate', 'rho', 'beta1', 'beta2', 'epsilon', 'l1', 'l2',
                 'dropout_rate', 'init_mean', 'init_stddev')
# What one member trains with; any of them may be a sweep axis.
MEMBER_FIELDS = HPARAM_FIELDS + ('hidden_sizes', 'kernel_init', 'optimizer', 'batch_size',
                                 'shuffle', 'epochs', 'early_stopping_monitor',
                                 'early_stopping_patience')
# One value for the whole run; they change what trains or how it is measured.
RUN_FIELDS = ('validation_split', 'seeds', 'arm', 'objective', 'constraints', 'search',
              'search_seed', 'final_epochs', 'final_front_size', 'final_batch_size',
              'final_shuffle', 'matmul_precision',
              'member_arithmetic', 'data_source', 'data_limit', 'data_checksums')
# May change between reruns of one run: what the report shows, how programs are cut.
# (A search's own such settings: its Setting(free=True).)
FREE_FIELDS = ('name', 'reference', 'final_reference', 'confusion_matrix',
               'max_members_per_program', 'hypervolume_reference')
# Set in a config file only: structured values with no command-line syntax.
FILE_ONLY_FIELDS = ('arms', 'reference', 'final_reference')
OBJECTIVES = ('val_accuracy', 'val_loss', 'val_f1')   # per epoch: one picks a member's epoch
MATMUL_PRECISIONS = ('float32', 'tensorfloat32', 'bfloat16')
MEMBER_ARITHMETICS = ('auto', 'alone', 'batched')
DATA_SOURCES = ('idx', 'tfds')
RESULT_KEYS = ('test_accuracy', 'test_loss', 'fit_time_s', 'weight_updates', 'note')


def objectives(objective: str | Sequence[str]) -> tuple[objective_lib.Objective, ...]:
  """The study's objectives: one name, or several as '(val_accuracy, parameter_count)'
  or a sequence of names (each a per-epoch metric or a network's cost, core.costs)."""
  return objective_lib.objectives_of(objective,
                                     (*OBJECTIVES, *costs.COSTS, *costs.LATENCIES))


def constraints(value: str | Sequence[str]) -> tuple[objective_lib.Constraint, ...]:
  """The study's bounds, '(parameter_count <= 100000, val_accuracy >= 0.97)', each on a
  per-epoch metric or a cost; '' for none."""
  return objective_lib.constraints_of(value,
                                      (*OBJECTIVES, *costs.COSTS, *costs.LATENCIES))


def tracked_objective(objective: str) -> str:
  """The metric that picks the epoch standing for each member (the tracker's, the
  best-epoch's and every single-objective ranking's): the objective itself, or the
  first per-epoch metric of several."""
  if objective in OBJECTIVES:
    return objective
  return next(o.name for o in objectives(objective) if o.name in OBJECTIVES)


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
                                     # best epoch (mean over seeds); its weights are kept;
                                     # several, '(val_accuracy, parameter_count)', rank
                                     # by Pareto dominance (core/pareto.py)
      constraints='',                # '(parameter_count <= 100000,)': feasible first
      hypervolume_reference=(),      # the report's hypervolume reference point, one
                                     # value per objective (): 10% past the worst
      early_stopping_monitor='val_loss',
      early_stopping_patience=0,     # Keras EarlyStopping; 0: never stop early
      search='grid',                 # which search runs the study (search/registry.py);
                                     # its settings are its own section, config.SEARCH.*
      search_seed=1,                 # which configurations a search draws, reproducibly
      final_epochs=0,                # > 0: retrain the best configuration this long,
      final_batch_size=32,           # at Keras' default batch size,
      final_shuffle=True,            # shuffled, as the original's last fit
      final_front_size=5,            # several objectives: retrain at most this many of
                                     # the front, spread by crowding distance
      final_reference={},            # the original's numbers for its final model
      confusion_matrix=False,        # report the best model's confusion matrix
      matmul_precision='float32',    # float32 reproduces Keras; the others trade it for speed
      member_arithmetic='auto',      # alone: a member's numbers do not depend on how
                                     # programs are packed; batched: faster on GPU/TPU;
                                     # auto: alone on a CPU, batched elsewhere
      data_source='idx',             # idx: the original files in Keras' row order; tfds
      data_limit=0,                  # > 0: the first N rows of each split (smoke runs)
      data_checksums=True,           # False: another IDX dataset (e.g. Fashion-MNIST)
  )


def make_config(**overrides) -> ml_collections.ConfigDict:
  """The baseline with a study's changes; unknown fields are refused (typos).

  Not type-safe: any member field may hold one value or a tuple of values (an axis).
  A dict is a search's section (pbt=dict(population=8)): the search registry checks
  its name and settings and fills its defaults (registry.complete).
  """
  fields = baseline()
  unknown = {k for k, v in overrides.items() if k not in fields and not isinstance(v, dict)}
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
  try:
    if study.endswith('.py') and Path(study).is_file():
      return Path(study)
  except (OSError, ValueError) as e:   # a name too long for a path; a NUL byte
    raise UserError(f'--study={study[:60]}... is no study name and no readable config '
                    f"file ({e}): choose one of {', '.join(studies)}") from None
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
  if not isinstance(config, ml_collections.ConfigDict) or not set(baseline()) <= set(config):
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
        shuffle=bool(v['shuffle']), arithmetic=v.get('member_arithmetic', 'auto'))

  @property
  def tracking(self) -> train.Tracking:
    v = self.values
    return train.Tracking(tracked_objective(v['objective']), v['early_stopping_monitor'],
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


def label_value(value) -> str:
  """A value as a member's label (its folder, its summary row) shows it: as
  format_value, but a float whose short form would read back as another float32 (what
  trains) is written out to the shortest text that reads back as its own float32, so
  two configurations that train differently never share a label."""
  if isinstance(value, float):
    short = f'{value:g}'
    if np.float32(float(short)) == np.float32(value):
      return short
    return np.format_float_positional(np.float32(value), unique=True, trim='-')
  return format_value(value)


def expand(config: ml_collections.ConfigDict, seeds: int | None = None) -> list[Member]:
  """arms x sweep axes x seeds (config.seeds unless given), in config order."""
  seeds = config.seeds if seeds is None else seeds
  base = config.to_dict()
  arms = base.pop('arms') or {'': {}}
  if config.arm:
    if list(arms) == ['']:
      raise UserError(f'--config.arm={config.arm} is impossible: study {config.name} has no '
                      'arms; drop --config.arm')
    if config.arm not in arms:
      raise UserError(f"unknown arm {config.arm!r}: --config.arm must be one of "
                      f"{', '.join(arms)}")
    arms = {config.arm: arms[config.arm]}
  members, combos = [], {}
  for arm, overrides in arms.items():
    fields = {**base, **overrides}
    swept = tuple(f for f, v in fields.items() if is_sweep(f, v))
    for combo in itertools.product(*(fields[f] for f in swept)):
      values = {**fields, **dict(zip(swept, combo))}
      label = ','.join(([arm] if arm else []) +
                       [f'{f}={label_value(v)}' for f, v in zip(swept, combo)]
                       ) or config.name
      shown = ', '.join(f'{f}={v!r}' for f, v in zip(swept, combo))
      if label in combos:   # one folder and summary row would hold both
        raise UserError(f'{label} names two configurations ({combos[label]}; {shown}): '
                        'their values train as the same float32 numbers; give values that '
                        'differ in float32')
      combos[label] = shown
      members += [Member(label, arm, seed, values, swept) for seed in range(seeds)]
  return members


def final_member(member: Member, config: ml_collections.ConfigDict, seed: int = 0
                 ) -> Member:
  """`member` as the final model retrains it (the original's last fit): final_epochs
  epochs at final_batch_size, final_shuffle."""
  values = dict(member.values, batch_size=config.final_batch_size,
                shuffle=config.final_shuffle, epochs=config.final_epochs)
  return dataclasses.replace(member, values=values, seed=seed)


def training_rows(config, dataset_rows: int = 60_000) -> int:
  """The rows the members train on; 0 where validation_split or data_limit is no
  number that means rows (checks.check_run names that field)."""
  try:
    rows = int(dataset_rows * (1 - config.validation_split))
    return min(rows, config.data_limit) if config.data_limit else rows
  except (TypeError, ValueError, OverflowError):
    return 0


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
