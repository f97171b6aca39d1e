"""An Optuna study's search space, from the config: Optuna's distributions for its
fields, the configuration a trial's parameters pick, a representative point, the checks
at the space's edges before anything trains, and how many compiled structures it can
need."""

import itertools
import math
from typing import Any

import ml_collections
import optuna

from jaxmlp.common.errors import UserError
from jaxmlp.studies import checks
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib


def _extremes(value) -> list:
  """The values a distribution can take at its edges (every choice of a categorical)."""
  if space.is_distribution(value):
    if value[space.KEY] == 'categorical':
      return list(value['choices'])
    return [value['low'], value['high']]
  return [value]


def representative(config: ml_collections.ConfigDict) -> study_lib.Member:
  """A point of the space: every distribution at its first edge, every axis at its
  first value."""
  fields, swept = fields_of(config)
  plain = {f: (_extremes(v)[0] if space.is_distribution(v) else
               study_lib.axis_values(f, v)[0]) for f, v in fields.items()}
  if isinstance(plain['hidden_sizes'], tuple):
    plain['hidden_sizes'] = tuple(_extremes(h)[0] for h in plain['hidden_sizes'])
  return study_lib.Member(config.name, '', 0, plain, ())


def validate_space(config: ml_collections.ConfigDict, rows: int) -> None:
  """Refuses what this search cannot run, before anything trains: every field at the
  edges of its distribution (e.g. a batch size above the rows)."""
  if config.arms and not config.arm:
    raise UserError('--search=optuna searches one arm: pass --config.arm=NAME')
  fields, swept = fields_of(config)
  if not distributions(fields, swept):
    raise UserError('--search=optuna needs a search space: give a field a distribution '
                    "(e.g. --config.learning_rate='loguniform(1e-4, 1e-1)') or a tuple")
  plain = representative(config).values
  for field, value in fields.items():
    if field not in study_lib.MEMBER_FIELDS:
      continue
    candidates = (study_lib.axis_values(field, value) if field in swept else
                  _extremes(value) if space.is_distribution(value) else [value])
    for candidate in candidates:
      if field == 'hidden_sizes' and isinstance(candidate, tuple):
        candidate = tuple(_extremes(h)[0] for h in candidate)
      values = dict(plain, **{field: candidate})
      checks.check_members([study_lib.Member(field, '', 0, values, ())], rows)


def fields_of(config: ml_collections.ConfigDict) -> tuple[dict[str, Any], tuple[str, ...]]:
  """The one arm's fields (distributions and sweep axes unresolved), and its axes."""
  fields = config.to_dict()
  arms = fields.pop('arms') or {}
  fields.update(arms.get(config.arm, {}))
  swept = tuple(f for f, v in fields.items() if study_lib.is_sweep(f, v))
  return fields, swept


def configuration_of(fields: dict[str, Any], params: dict[str, Any],
              label: str | None = None) -> study_lib.Member:
  """The configuration a trial's parameters pick (seed 0), labelled by its values
  (`label` instead, where given)."""
  values = values_of(fields, params)
  swept = tuple(sorted({name.split('[')[0] for name in params}))
  label = label or ','.join(f'{f}={study_lib.format_value(values[f])}' for f in swept)
  return study_lib.Member(label, '', 0, values, swept)


def structure_count(fields: dict[str, Any],
                    distributions: dict[str, optuna.distributions.BaseDistribution],
                    many: int = 1 << 12) -> int:
  """How many compiled structures the space's trials can need (`many` where the space
  has too many to count, e.g. a wide int range of widths or batch sizes). Only the
  parameters that change the structure on their own are combined; a float changes it
  only by being zero or not, so its edges tell."""
  def key(params):
    member = configuration_of(fields, params, 'count')
    return member.structure, member.tracking

  def values(dist):
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
      return list(dist.choices)
    if isinstance(dist, optuna.distributions.IntDistribution):
      span = range(dist.low, dist.high + 1, dist.step)
      return list(span) if len(span) <= 64 else None
    return [dist.low, dist.high]

  first = {n: (values(d) or [d.low])[0] for n, d in distributions.items()}
  axes = []
  for name, dist in distributions.items():
    candidates = values(dist)
    probe = candidates if candidates is not None else [dist.low, dist.high]
    if len({key(dict(first, **{name: v})) for v in probe}) == 1:
      continue   # a traced hyperparameter, or the epochs: one program serves them all
    if candidates is None:
      return many
    axes.append([(name, v) for v in candidates])
  if math.prod(len(a) for a in axes) > many:
    return many
  return len({key(dict(first, **dict(combo))) for combo in itertools.product(*axes)})


def _encode(choice):
  """Optuna stores str, int, float and bool choices; a network is '128x256'."""
  return 'x'.join(map(str, choice)) if isinstance(choice, (tuple, list)) else choice


def _decode(field: str, choice):
  if field == 'hidden_sizes' and isinstance(choice, str):
    return tuple(int(w) for w in choice.split('x'))
  return choice


def _optuna(value: dict[str, Any]) -> optuna.distributions.BaseDistribution:
  if value[space.KEY] == 'float':
    return optuna.distributions.FloatDistribution(value['low'], value['high'],
                                                  log=value['log'])
  if value[space.KEY] == 'int':
    return optuna.distributions.IntDistribution(value['low'], value['high'],
                                                log=value['log'])
  return optuna.distributions.CategoricalDistribution(
      tuple(_encode(c) for c in value['choices']))


def distributions(fields: dict[str, Any], swept: tuple[str, ...]
                  ) -> dict[str, optuna.distributions.BaseDistribution]:
  """Optuna's parameters for a configuration's fields: every distribution, every
  layer of a hidden_sizes that holds them, and every sweep axis (as a categorical)."""
  out = {}
  for field, value in fields.items():
    if space.is_distribution(value):
      space.check(field, value)
      out[field] = _optuna(value)
    elif field == 'hidden_sizes' and space.has_distribution(field, value):
      for i, layer in enumerate(value):
        if space.is_distribution(layer):
          space.check(f'hidden_sizes[{i}]', layer)
          out[f'hidden_sizes[{i}]'] = _optuna(layer)
        else:
          out[f'hidden_sizes[{i}]'] = optuna.distributions.CategoricalDistribution((layer,))
    elif field in swept:
      out[field] = optuna.distributions.CategoricalDistribution(
          tuple(_encode(v) for v in value))
  return out


def values_of(fields: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
  """The fields a trial trains with: its sampled parameters in place of the space."""
  values = dict(fields)
  layers = {}
  for name, value in params.items():
    if name.startswith('hidden_sizes['):
      layers[int(name[len('hidden_sizes['):-1])] = int(value)
    else:
      values[name] = _decode(name, value)
  if layers:
    values['hidden_sizes'] = tuple(layers[i] for i in sorted(layers))
  return values
