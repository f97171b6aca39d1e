"""Several processes (one per host), one output folder: only process 0 touches it.

Every process runs the same programs; process 0 alone reads and writes the output
folder, and the others receive what it read. With one process these are plain calls.
"""

import json
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxmlp.common.errors import UserError


def is_primary() -> bool:
  return jax.process_index() == 0


def _broadcast(x: np.ndarray) -> np.ndarray:
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.broadcast_one_to_all(x))


def from_primary(read: Callable[[], Any]) -> Any:
  """`read()` run on process 0 only; every process gets its result (JSON-able), or
  the UserError it raised."""
  if jax.process_count() == 1:
    return read()
  answer = None
  if is_primary():
    try:
      answer = {'value': read()}
    except UserError as e:
      answer = {'error': str(e)}
  payload = np.frombuffer(json.dumps(answer).encode(), np.uint8) if is_primary() else None
  size = int(_broadcast(np.array([0 if payload is None else payload.size], np.int64))[0])
  payload = _broadcast(payload if payload is not None else np.zeros(size, np.uint8))
  answer = json.loads(payload.tobytes().decode())
  if 'error' in answer:
    raise UserError(answer['error'])
  return answer['value']


def tree_from_primary(tree_on_primary, template):
  """A pytree of arrays that process 0 holds (e.g. read from disk); the others pass a
  `template` of the same shapes and dtypes."""
  if jax.process_count() == 1:
    return tree_on_primary
  return jax.tree.map(_broadcast, tree_on_primary if is_primary() else template)


def any_process(flag: bool) -> bool:
  """True on every process if it is True on any (decisions taken between epochs)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))
