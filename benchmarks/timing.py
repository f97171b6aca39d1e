"""How bench.py times: interleaved repetitions, medians, paired ratios, and this
machine's floors (the matmul rate, the memory bandwidth of a working set, the cost of
dispatching a jitted call from Python).
"""

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxmlp.core import train


def parameter_count(structure: train.Structure, input_dim: int = 784) -> int:
  sizes = (input_dim, *structure.hidden_sizes, 10)
  return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def adam_update_bytes(params: int) -> int:
  """Bytes one Adam update at batch 1 must move between memory and the cores.

  At batch 1 the matmuls are matrix-vector products: every weight is touched once
  or twice for a handful of FLOPs, so an update is bound by memory traffic, not
  arithmetic. Four float32 arrays of `params` values are each read once and
  written once per update:
    - the parameters w: read by the forward pass, written by the update;
    - the gradient g: written by the backward pass, read by the optimizer;
    - Adam's first moment m: read and written by the update;
    - Adam's second moment v: read and written by the update.
  4 arrays x 2 (read + write) x 4 bytes = 32 bytes per parameter. This is a floor:
  it ignores the backward pass reading w a second time, the activations (about
  1,200 floats, negligible) and the input row; a kernel fusing the backward pass
  into the update could skip materializing g (24 bytes per parameter), but neither
  XLA nor the naive loop does that.
  """
  return 4 * 2 * 4 * params


def median_time(fn, repeats: int) -> float:
  """Median seconds of `repeats` calls of fn, after one call that compiles."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def interleave(contenders: dict[str, Callable[[], float]], reps: int, *,
               warm_up: bool = True) -> dict[str, list[float]]:
  """Times every contender once per repetition, back to back.

  Each contender returns the seconds of one repetition. Interleaving makes any
  change in the machine's load (other processes on shared cores) hit every
  contender alike, so per-repetition ratios between them stay fair.
  """
  if warm_up:
    for fn in contenders.values():
      fn()  # compiles
  times = {name: [] for name in contenders}
  for _ in range(reps):
    for name, fn in contenders.items():
      times[name].append(fn())
  return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
  """The median of per-repetition ratios: robust to load that drifts between repetitions."""
  return statistics.median(a / b for a, b in zip(numerator, denominator))


def matmul_timer(n: int = 2048, calls: int = 3) -> Callable[[], float]:
  """Seconds of one jitted n x n float32 matmul (median of `calls`)."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  return lambda: median_time(lambda: matmul(a).block_until_ready(), calls)


def axpy_timer(working_set_bytes: int, iters: int = 200, calls: int = 3):
  """Seconds per sweep of y <- 0.5 y + x over arrays whose total size is the working set.

  The loop runs inside one jitted program, so dispatch is paid once per `iters`
  sweeps; each sweep reads x and y and writes y: returns (timer, bytes per sweep).
  """
  n = max(1, working_set_bytes // 8)  # x and y: 8 bytes per index
  x = jnp.ones(n, jnp.float32)
  y = jnp.zeros(n, jnp.float32)
  loop = jax.jit(lambda x, y: jax.lax.fori_loop(0, iters, lambda _, y: 0.5 * y + x, y))
  timer = lambda: median_time(lambda: loop(x, y).block_until_ready(), calls) / iters
  return timer, 12 * n


def dispatch_seconds(repeats: int = 200) -> float:
  """One call of a jitted no-op on a tiny array: the per-call cost a Python loop pays."""
  noop = jax.jit(lambda x: x + 1)
  x = jnp.zeros(4, jnp.float32)
  return median_time(lambda: noop(x).block_until_ready(), repeats)
