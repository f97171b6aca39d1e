"""A network's inference latency on this machine's default device: the objectives
`latency_ms` (one example) and `batch_latency_ms` (a batch of 1,024), in
milliseconds, the median of timed calls of the jitted forward pass.

Unlike the parameter count they depend on the machine, its load and XLA, so each
structure is measured once per study and kept in the study folder's latency.json:
every ranking of the study (a search's decisions, the report, jaxmlp.read_pareto
afterwards, a resumed run) reads the same numbers. A study ranks by latency only
where its config names it.
"""

import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxmlp.core import costs
from jaxmlp.core import model as model_lib

FILE = 'latency.json'
BATCHES = {'latency_ms': 1, 'batch_latency_ms': 1024}
WARMUP, REPEATS = 5, 50

_measured: dict[str, dict[str, float]] = {}   # '128x256' -> name -> ms
_file: Path | None = None


def key_of(hidden_sizes: Sequence[int]) -> str:
  return 'x'.join(map(str, hidden_sizes))


def use_study(study_dir: Path) -> None:
  """Reads (and from now on writes) the study's latency.json: what it holds is not
  measured again."""
  global _file
  _file = Path(study_dir) / FILE
  _measured.clear()
  if _file.is_file():
    try:
      _measured.update(json.loads(_file.read_text())['structures'])
    except (ValueError, KeyError, TypeError):
      pass   # damaged: measured again and rewritten


def measure(hidden_sizes: Sequence[int], batch: int, repeats: int = REPEATS) -> float:
  """Milliseconds of one jitted forward pass of `batch` examples (median of
  `repeats` calls, each waited for, after WARMUP)."""
  module = model_lib.MLP(tuple(hidden_sizes))
  x_BD = jnp.zeros((batch, costs.INPUT_DIM), jnp.float32)
  params = module.init(jax.random.key(0), x_BD[:1])
  forward = jax.jit(module.apply)
  for _ in range(WARMUP):
    forward(params, x_BD).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    forward(params, x_BD).block_until_ready()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def of(name: str, hidden_sizes: Sequence[int]) -> float:
  """The latency `name` (one of BATCHES) of this network: the study's, or measured now
  (both batches) and written to the study's latency.json."""
  key = key_of(hidden_sizes)
  if key not in _measured:
    _measured[key] = {n: measure(hidden_sizes, batch) for n, batch in BATCHES.items()}
    _save()
  return _measured[key][name]


def _save() -> None:
  if _file is None:
    return
  _file.parent.mkdir(parents=True, exist_ok=True)
  body = dict(device=str(jax.devices()[0]), repeats=REPEATS, batches=BATCHES,
              structures=_measured)
  temporary = _file.with_suffix('.tmp')
  temporary.write_text(json.dumps(body, indent=1))
  os.replace(temporary, _file)
