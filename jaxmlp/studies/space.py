"""Search spaces: a member field may hold a distribution for --search=optuna.

  from jaxmlp.studies import space
  make_config(learning_rate=space.log_uniform(1e-4, 1e-1),
              hidden_sizes=(space.categorical(64, 128), space.categorical(256, 512)))

A distribution is a plain dict (so a config stays JSON and a run's identity can hold
it): {'distribution': 'float', 'low', 'high', 'log'}, {'distribution': 'int', 'low',
'high', 'log'} or {'distribution': 'categorical', 'choices'}. `hidden_sizes` may be a
tuple whose layers are distributions (each layer its own parameter) or a categorical
of whole networks. Under --search=optuna a tuple (a grid's sweep axis) is sampled as a
categorical; the grid and Hyperband searches refuse distributions.
"""

from __future__ import annotations

from typing import Any

from jaxmlp.common.errors import UserError

KEY = 'distribution'


def uniform(low: float, high: float) -> dict[str, Any]:
  return {KEY: 'float', 'low': float(low), 'high': float(high), 'log': False}


def log_uniform(low: float, high: float) -> dict[str, Any]:
  return {KEY: 'float', 'low': float(low), 'high': float(high), 'log': True}


def integer(low: int, high: int, log: bool = False) -> dict[str, Any]:
  return {KEY: 'int', 'low': int(low), 'high': int(high), 'log': bool(log)}


def categorical(*choices) -> dict[str, Any]:
  return {KEY: 'categorical', 'choices': tuple(choices)}


def is_distribution(value) -> bool:
  return isinstance(value, dict) and KEY in value


def has_distribution(field: str, value) -> bool:
  """Whether a field's value is, or (hidden_sizes) holds, a distribution."""
  if is_distribution(value):
    return True
  return field == 'hidden_sizes' and isinstance(value, tuple) and any(
      is_distribution(v) for v in value)


def check(field: str, value: dict[str, Any]) -> None:
  """Refuses a distribution that cannot be sampled, naming the field."""
  kind = value.get(KEY)
  where = f'--config.{field}'
  if kind in ('float', 'int'):
    low, high = value.get('low'), value.get('high')
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and low < high):
      raise UserError(f'{where}: a {kind} distribution needs low < high, got {low}, {high}')
    if value.get('log') and low <= 0:
      raise UserError(f'{where}: a log distribution needs low > 0, got {low}')
  elif kind == 'categorical':
    if not value.get('choices'):
      raise UserError(f'{where}: a categorical distribution needs at least one choice')
  else:
    raise UserError(f"{where}: unknown distribution {kind!r}: use float, int or "
                    'categorical (jaxmlp.space)')


def _encode(choice):
  """Optuna stores str, int, float and bool choices; a network is '128x256'."""
  return 'x'.join(map(str, choice)) if isinstance(choice, (tuple, list)) else choice


def _decode(field: str, choice):
  if field == 'hidden_sizes' and isinstance(choice, str):
    return tuple(int(w) for w in choice.split('x'))
  return choice


def _optuna(value: dict[str, Any]) -> optuna.distributions.BaseDistribution:
  # Imported here: optuna takes a second to import and only --search=optuna needs it.
  import optuna  # pylint: disable=g-import-not-at-top
  if value[KEY] == 'float':
    return optuna.distributions.FloatDistribution(value['low'], value['high'],
                                                  log=value['log'])
  if value[KEY] == 'int':
    return optuna.distributions.IntDistribution(value['low'], value['high'],
                                                log=value['log'])
  return optuna.distributions.CategoricalDistribution(
      tuple(_encode(c) for c in value['choices']))


def distributions(fields: dict[str, Any], swept: tuple[str, ...]
                  ) -> dict[str, optuna.distributions.BaseDistribution]:
  """Optuna's parameters for a configuration's fields: every distribution, every
  layer of a hidden_sizes that holds them, and every sweep axis (as a categorical)."""
  import optuna  # pylint: disable=g-import-not-at-top
  out = {}
  for field, value in fields.items():
    if is_distribution(value):
      check(field, value)
      out[field] = _optuna(value)
    elif field == 'hidden_sizes' and has_distribution(field, value):
      for i, layer in enumerate(value):
        if is_distribution(layer):
          check(f'hidden_sizes[{i}]', layer)
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
