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
  """Whole numbers from low to high; bounds that are not whole numbers are refused
  (truncating int(1.5, 3) to 1 would train below the range asked for)."""
  for bound in (low, high):
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or (
        isinstance(bound, float) and not bound.is_integer()):
      raise ValueError(f'an integer range needs whole-number bounds, got {low}, {high}')
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


def _bound(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and abs(value) < _LARGEST)


# Bounds beyond this overflow a float's arithmetic (high - low, a sample's log).
_LARGEST = 1e300


def check(field: str, value: dict[str, Any]) -> None:
  """Refuses a distribution that cannot be sampled (a dict typed or written by hand as
  well as one of this module's), naming the field."""
  kind = value.get(KEY)
  where = f'--config.{field}'
  if kind in ('float', 'int'):
    low, high = value.get('low'), value.get('high')
    if not (_bound(low) and _bound(high) and low < high):
      raise UserError(f'{where}: a {kind} distribution needs finite numbers low < high '
                      f'(at most {_LARGEST:g} in size), got {low}, {high}')
    if not isinstance(value.get('log'), bool):
      raise UserError(f"{where}: a {kind} distribution needs 'log': True or False "
                      '(jaxmlp.space.uniform, log_uniform or integer make one)')
    if kind == 'int' and not all(float(b).is_integer() for b in (low, high)):
      raise UserError(f'{where}: an integer range needs whole-number bounds, got {low}, {high}')
    if value['log'] and low <= 0:
      raise UserError(f'{where}: a log distribution needs low > 0, got {low}')
  elif kind == 'categorical':
    if not (isinstance(value.get('choices'), (tuple, list)) and value['choices']):
      raise UserError(f'{where}: a categorical distribution needs a tuple of choices, at '
                      'least one')
  else:
    raise UserError(f"{where}: unknown distribution {kind!r}: use float, int or "
                    'categorical (jaxmlp.space)')
