"""keras_tuner's `hp.Choice` as HyperbandOracle draws it: the values' standardization
(engine/hyperparameters), a seeded draw (`random_sample`, `hp_utils.prob_to_index`)
and the hash of a trial's values that detects a configuration drawn twice.

* Sampling. A new configuration draws one value per hyperparameter, in the space's
  order, each from `random.Random(seed_state).random()` (then `seed_state += 1`),
  mapped to `values[floor(p * n)]`. A draw whose values were already tried (hashed
  when their trial was created) is a collision; after 21 collisions in a row
  (`_max_collisions = 20`) the oracle cannot create a random trial and, run
  sequentially, returns STOPPED: the search ends (a bracket whose first round is
  short is never promoted). Choice values are standardized as keras_tuner does:
  one type per hyperparameter; str stays str, int and bool become int (keras_tuner
  tests `isinstance(v, int)`, so True/False become 1/0); float stays float.
* Seed. keras_tuner uses `seed or random.randint(1, 10000)`, so a seed of 0 or None
  there is a random seed. Here the seed must be given explicitly and be >= 1.
"""

import hashlib
import math
import random
from typing import Any, Mapping, Sequence

MAX_COLLISIONS = 20   # keras_tuner's Oracle._max_collisions


def choice_values(name: str, values: Sequence[Any]) -> list[Any]:
  """keras_tuner's Choice checks and standardization of its values."""
  values = list(values)
  if not values:
    raise ValueError(f'{name}: `values` must be provided for `Choice`.')
  types = {type(v) for v in values}
  if len(types) > 1:
    raise TypeError(f'{name}: a Choice can contain only one type of value, found '
                    f'{values} with types {types}.')
  if isinstance(values[0], str):
    return [str(v) for v in values]
  if isinstance(values[0], int):   # six.integer_types, bool included
    return [int(v) for v in values]
  if not isinstance(values[0], (bool, float)):
    raise TypeError(f'{name}: a Choice can contain only int, float, str or bool, '
                    f'found {values} with type {type(values[0])}.')
  return values


def random_sample(values: list[Any], seed: int) -> Any:
  """HyperParameter.random_sample(seed) then Choice.prob_to_value."""
  prob = float(random.Random(seed).random())
  index = int(math.floor(prob / (1 / len(values))))   # hp_utils.prob_to_index
  if index == len(values):
    index -= 1
  return values[index]


def values_hash(values: Mapping[str, Any]) -> str:
  """HyperbandOracle._compute_values_hash (tuner/trial_id stays in)."""
  values = dict(values)
  for key in ('tuner/epochs', 'tuner/initial_epoch', 'tuner/bracket', 'tuner/round'):
    values.pop(key, None)
  s = ''.join(f'{str(k)}={str(values[k])}' for k in sorted(values))
  return hashlib.sha256(s.encode('utf-8')).hexdigest()[:32]


def draw_untried(space: list[tuple[str, list[Any]]], seed_state: int,
                 tried: set[str]) -> tuple[dict[str, Any] | None, int]:
  """Oracle._random_values: values whose hash is not in `tried` (None after too many
  collisions in a row), and the seed state after the draws."""
  collisions = 0
  while True:
    values = {}
    for name, choices in space:
      values[name] = random_sample(choices, seed_state)
      seed_state += 1
    if values_hash(values) in tried:
      collisions += 1
      if collisions > MAX_COLLISIONS:
        return None, seed_state
      continue
    return values, seed_state
