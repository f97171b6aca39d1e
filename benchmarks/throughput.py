"""Training throughput of the engine against this machine's matmul rate, in one run.

  python benchmarks/throughput.py [--members=1,3] [--epochs=5] [--json=out.json]

Counts 6 x parameters x samples FLOPs per training epoch (forward 2, backward 4) and
divides by the median seconds per epoch, for the training pass alone and for the engine's
whole epoch program (which adds the validation pass, so its ratio is lower); the
reference rate is jax multiplying 2048x2048 float32 matrices on the same device,
measured before and after each row.
"""

import argparse
import functools
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import data, engine, study, train


def matmul_rate(n: int = 2048, repeats: int = 20) -> float:
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  matmul(a).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * n**3 / statistics.median(times)


def epoch_seconds(structure, members: int, split, epochs: int) -> tuple[float, float]:
  """Median seconds per epoch for `members` members: training alone, and the engine's
  whole epoch program (training + validation pass)."""
  mesh, block = engine.program_layout(
      engine.member_mesh(), members, engine.members_per_program(structure, members, members, 0))
  device_data = engine.put_data(split, mesh)
  size = block * mesh.size
  init, start, tracked_epoch, _ = engine._programs(structure, train.Tracking(), mesh, block)
  train_epoch = engine.sharded(
      functools.partial(train.train_epoch, structure=structure), (0, None, None, 0, None),
      mesh, block, donate_argnums=0)
  sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(engine.MEMBER_AXIS))
  put = lambda x: jax.device_put(engine.pad_members(np.asarray(x), size), sharded)
  hp = {k: put(np.full(members, v, np.float32)) for k, v in study.baseline().items()
        if k in study.HPARAM_FIELDS}
  state = init(put(np.arange(members, dtype=np.uint32)), hp)
  state, tracker = start(state, state.params)
  def fit(state, epoch):
    nonlocal tracker
    state, tracker, metrics = tracked_epoch(state, tracker, hp, epoch, device_data)
    return state, metrics

  programs = {
      'train': lambda state, epoch: train_epoch(state, device_data.x_train,
                                                device_data.y_train, hp, epoch),
      'fit': fit,
  }
  medians = []
  for program in programs.values():
    times = []
    for epoch in range(epochs + 1):  # the first call compiles and warms up
      start = time.perf_counter()
      state, metrics = program(state, jnp.int32(epoch))
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
    medians.append(statistics.median(times[1:]))
  return tuple(medians)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--members', default='1,3')
  parser.add_argument('--epochs', type=int, default=5)
  parser.add_argument('--json', default=None)
  args = parser.parse_args()
  engine.use_cpu_cores()

  split = data.split(data.load())
  structure = train.Structure()  # the baseline: 784-128-256-10, Adam, batch 256
  sizes = (784, *structure.hidden_sizes, 10)
  params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
  rows = []
  for members in map(int, args.members.split(',')):
    before = matmul_rate()
    train_s, fit_s = epoch_seconds(structure, members, split, args.epochs)
    rate = statistics.mean([before, matmul_rate()])
    flops = 6 * params * len(split.x_train) * members
    rows.append(dict(members=members, train_epoch_s=train_s, fit_epoch_s=fit_s,
                     matmul_gflops=rate / 1e9, train_ratio=flops / train_s / rate,
                     fit_ratio=flops / fit_s / rate))
  print(f'device {jax.devices()[0].device_kind} x{len(jax.devices())}, jax {jax.__version__}, '
        f'python {platform.python_version()}, {time.strftime("%Y-%m-%d")}; baseline MLP, '
        f'Adam, batch {structure.batch_size}, {params} parameters')
  print('| members | training s/epoch | ratio to matmul | with validation s/epoch | ratio '
        '| 2048^2 matmul GFLOP/s |')
  print('|---|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['members']} | {r['train_epoch_s']:.3f} | {r['train_ratio']:.2f} | "
          f"{r['fit_epoch_s']:.3f} | {r['fit_ratio']:.2f} | {r['matmul_gflops']:.1f} |")
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(dict(device=str(jax.devices()[0]), jax=jax.__version__, rows=rows), f,
                indent=1)


if __name__ == '__main__':
  main()
