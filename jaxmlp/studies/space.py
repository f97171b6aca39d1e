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
