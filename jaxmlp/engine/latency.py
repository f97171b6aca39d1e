"""A network's inference latency on this machine's default device: the objectives
`latency_ms` (one example) and `batch_latency_ms` (a batch of 1,024), in
milliseconds, the median of timed calls of the jitted forward pass.

Unlike the parameter count they depend on the machine, its load and XLA, so each
structure is measured once per study and kept in the study folder's latency.json:
every ranking of the study (a search's decisions, the report, jaxmlp.read_pareto
afterwards, a resumed run, another Optuna worker) reads the same numbers: a worker
reads the file again before it measures, and where two measured one network at once,
the first written stands. A study ranks by latency only where its config names it,
and only in one process (pipeline refuses it under jax.distributed: each host would
time its own device).
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
  _measured.update(_stored())


def _stored() -> dict[str, dict[str, float]]:
  """The study's latency.json as it is now ({} where there is none, or it is damaged:
  then measured again and rewritten)."""
  if _file is None or not _file.is_file():
    return {}
  try:
    structures = json.loads(_file.read_text())['structures']
    return structures if isinstance(structures, dict) else {}
  except (ValueError, KeyError, TypeError, OSError):
    return {}


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
  if key not in _measured:   # another worker of the study may have measured it
    _measured.update({k: v for k, v in _stored().items() if k not in _measured})
  if key not in _measured:
    _measured[key] = _measure_and_save(key, hidden_sizes)
  return _measured[key][name]


def _measure_and_save(key: str, hidden_sizes: Sequence[int]) -> dict[str, float]:
  """Both latencies, written into latency.json beside what other workers wrote; a
  worker that wrote this network's first wins, so a study has one number for it."""
  measured = {n: measure(hidden_sizes, batch) for n, batch in BATCHES.items()}
  if _file is None:
    return measured
  structures = _stored()
  measured = structures.setdefault(key, measured)
  _measured.update({k: v for k, v in structures.items() if k not in _measured})
  _file.parent.mkdir(parents=True, exist_ok=True)
  body = dict(device=str(jax.devices()[0]), repeats=REPEATS, batches=BATCHES,
              structures=structures)
  temporary = _file.with_name(f'.{FILE}.{os.getpid()}.tmp')   # one per worker
  temporary.write_text(json.dumps(body, indent=1))
  os.replace(temporary, _file)
  return measured


def device() -> str | None:
  """The device the study's latencies were measured on (latency.json), if any."""
  if _file is None or not _file.is_file():
    return None
  try:
    return json.loads(_file.read_text()).get('device')
  except (ValueError, OSError, AttributeError):
    return None
