"""Studies as data: find a study's config, expand it into members, check it, group it.

A study config is a ConfigDict (see `make_config`). A field whose value is a tuple
is a sweep axis (for `hidden_sizes`, a tuple of tuples); `arms` holds named
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

from jaxmlp import model as model_lib
from jaxmlp import optim
from jaxmlp import train
from jaxmlp.errors import UserError

# Numeric hyperparameters: traced arrays, one compiled program serves all values.
HPARAM_FIELDS = ('learning_rate', 'rho', 'beta1', 'beta2', 'epsilon', 'l1', 'l2',
                 'dropout_rate', 'init_mean', 'init_stddev')
# Fields that change a program's shapes or structure.
STRUCTURE_FIELDS = ('hidden_sizes', 'kernel_init', 'optimizer', 'batch_size', 'shuffle')
REPORT_FIELDS = ('name', 'arms', 'arm', 'reference', 'max_members_per_program',
                 'objective', 'confusion_matrix', 'early_stopping_monitor',
                 'early_stopping_patience', 'hyperband_max_epochs', 'hyperband_factor',
                 'hyperband_iterations', 'search_seed', 'final_epochs', 'final_reference')
# Fields that change only what the report shows, not what trains.
PRESENTATION_FIELDS = ('reference', 'final_reference', 'confusion_matrix')
OBJECTIVES = ('val_accuracy', 'val_loss', 'val_f1')
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
      arms={},
      arm='',                        # '' runs every arm; a name runs only that one
      reference=(),                  # the original's reported results, see reference_for
      max_members_per_program=0,     # 0: as many as fit in device memory
      objective='val_accuracy',      # or val_loss, val_f1: ranks configurations by the
                                     # best epoch (mean over seeds); its weights are kept
      early_stopping_monitor='val_loss',
      early_stopping_patience=0,     # Keras EarlyStopping; 0: never stop early
      hyperband_max_epochs=50,       # --search=hyperband: keras_tuner's max_epochs,
      hyperband_factor=3,            # factor
      hyperband_iterations=1,        # and hyperband_iterations
      search_seed=0,                 # which configurations Hyperband draws, reproducibly
      final_epochs=0,                # > 0: retrain the best configuration this long
      final_reference={},            # the original's numbers for its final model
      confusion_matrix=False,        # report the best model's confusion matrix
  )


def make_config(**overrides) -> ml_collections.ConfigDict:
  """The baseline with a study's changes; unknown fields are refused (typos)."""
  fields = baseline()
  unknown = set(overrides) - set(fields)
  if unknown:
    raise ValueError(f'unknown config fields {sorted(unknown)}')
  fields.update(overrides)
  fields['arms'] = {name: dict(arm) for name, arm in fields['arms'].items()}
  return ml_collections.ConfigDict(fields)


def configs_dir() -> Path:
  """Installed, configs/ ships as jaxmlp/configs; in a source checkout it is ../configs."""
  here = Path(__file__).resolve().parent
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
  spec.loader.exec_module(module)
  return module.get_config()


def is_sweep(field: str, value) -> bool:
  if field == 'hidden_sizes':
    return isinstance(value, tuple) and bool(value) and isinstance(value[0], tuple)
  return isinstance(value, tuple) and field not in REPORT_FIELDS


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
    return {f: float(self.values[f]) for f in HPARAM_FIELDS}


def _format(value) -> str:
  if isinstance(value, tuple):
    return 'x'.join(map(str, value))
  return f'{value:g}' if isinstance(value, float) else str(value)


def expand(config: ml_collections.ConfigDict, seeds: int) -> list[Member]:
  """arms x sweep axes x seeds, in config order."""
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
                       [f'{f}={_format(v)}' for f, v in zip(swept, combo)]) or config.name
      members += [Member(label, arm, seed, values, swept) for seed in range(seeds)]
  return members


def training_rows(config, dataset_rows: int = 60_000) -> int:
  return int(dataset_rows * (1 - config.validation_split))


def validate(members: list[Member], n_train: int) -> None:
  """Refuses impossible values before anything compiles, naming the flag to fix."""
  for m in members:
    v = m.values
    problems = []
    def need(ok, field, rule):
      if not ok:
        problems.append(f'--config.{field}={_format(v[field])} is impossible'
                        f' ({m.label}): {rule}')
    bs = v['batch_size']
    need(isinstance(bs, int) and 1 <= bs <= n_train, 'batch_size',
         f'the batch size must be a whole number from 1 to {n_train} (the training rows)')
    need(v['optimizer'] in optim.OPTIMIZERS, 'optimizer',
         f"choose one of {', '.join(optim.OPTIMIZERS)}")
    need(v['kernel_init'] in model_lib.KERNEL_INITS, 'kernel_init',
         f"choose one of {', '.join(model_lib.KERNEL_INITS)}")
    hidden = v['hidden_sizes']
    need(isinstance(hidden, tuple) and all(isinstance(h, int) and h > 0 for h in hidden),
         'hidden_sizes', "give positive layer widths, e.g. --config.hidden_sizes='(128, 256)'")
    need(math.isfinite(v['learning_rate']) and v['learning_rate'] >= 0, 'learning_rate',
         'the learning rate must be a finite number >= 0')
    for field in ('l1', 'l2'):
      need(math.isfinite(v[field]) and v[field] >= 0, field,
           'a penalty alpha must be a finite number >= 0')
    need(0 <= v['dropout_rate'] < 1, 'dropout_rate', 'the dropout rate must be in [0, 1)')
    for field in ('rho', 'beta1', 'beta2'):
      need(0 <= v[field] < 1, field, f'{field} must be in [0, 1)')
    need(v['epsilon'] > 0, 'epsilon', 'epsilon must be > 0')
    need(v['init_stddev'] >= 0, 'init_stddev', 'a standard deviation must be >= 0')
    need(isinstance(v['epochs'], int) and v['epochs'] >= 1, 'epochs',
         'train at least 1 epoch (--epochs=N)')
    need(v['objective'] in OBJECTIVES, 'objective', f"choose one of {', '.join(OBJECTIVES)}")
    need(v['early_stopping_monitor'] in OBJECTIVES, 'early_stopping_monitor',
         f"choose one of {', '.join(OBJECTIVES)}")
    need(isinstance(v['early_stopping_patience'], int) and v['early_stopping_patience'] >= 0,
         'early_stopping_patience', 'patience is a whole number of epochs >= 0 (0: off)')
    for field, low in (('hyperband_max_epochs', 1), ('hyperband_factor', 2),
                       ('hyperband_iterations', 1), ('final_epochs', 0)):
      need(isinstance(v[field], int) and v[field] >= low, field,
           f'{field} must be a whole number >= {low}')
    need(0 < v['validation_split'] < 1, 'validation_split',
         'the validation fraction must be in (0, 1)')
    if problems:
      raise UserError(problems[0])


def group(members: list[Member]) -> dict[tuple[train.Structure, train.Tracking],
                                          list[Member]]:
  """Members sharing shapes and structure train in one compiled program."""
  groups: dict[tuple[train.Structure, train.Tracking], list[Member]] = {}
  for m in members:
    groups.setdefault((m.structure, m.tracking), []).append(m)
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
    return a is not None and math.isclose(a, b, rel_tol=1e-9)
  return a == b
