"""What pinning XLA:CPU's thread pool costs (--cpu_threads against the default).

  python benchmarks/threads_bench.py [--threads=4,8,16] [--rounds=2] [--reps=3]

A member's last bits depend on the size of XLA:CPU's Eigen pool (README, "What is
guaranteed"): XLA's own is one thread per core, --cpu_threads pins another. A pool
larger than the cores gives a small machine the numbers of a bigger one, at a price
this measures. The pool is fixed when JAX starts, so each size runs in its own
process: K=4 baseline members on this machine's CPU devices (one per core), one
planned epoch at batch 256 on the 48,000 rows (plan.train_group, as a study runs
them), and one training epoch at batch 1 on 1,000 rows. The processes take turns, in
--rounds rounds; a size's ratio is the median over rounds of its time over the
default's time in the same round.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = r'''
import dataclasses, json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from jaxmlp.engine import devices
devices.use_cpu_cores(0, int(sys.argv[2]))
from jaxmlp.data import mnist as data_lib
import contenders
reps = int(sys.argv[3])
split = data_lib.split(data_lib.load('idx', None))
group, _ = contenders.group_timer(4, devices.put_data(split, devices.member_mesh()))
one = contenders.chunked_engine_epoch(
    dataclasses.replace(contenders.STRUCTURE, batch_size=1), split.x_train[:1000],
    split.y_train[:1000], contenders.learning_rates(4))
out = {}
for name, timer in (('batch 256', group), ('batch 1', one)):
  timer()   # compiles
  out[name] = statistics.median(timer() for _ in range(reps))
print(json.dumps(dict(threads=devices.cpu_threads(), seconds=out)))
'''


def child(threads: int, reps: int) -> dict:
  env = {k: v for k, v in os.environ.items() if k not in ('PJRT_NPROC', 'NPROC')}
  run = subprocess.run([sys.executable, '-c', CHILD, str(Path(__file__).resolve().parent),
                        str(threads), str(reps)], env=env, capture_output=True, text=True,
                       check=True)
  return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--threads', default='4,8,16', help='pool sizes against the default')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--reps', type=int, default=3)
  parser.add_argument('--json', default=None)
  args = parser.parse_args(argv)
  sizes = [0, *map(int, args.threads.split(','))]   # 0: the default
  runs = {size: [] for size in sizes}
  for r in range(args.rounds):
    for size in sizes:
      print(f'[threads] round {r + 1}: --cpu_threads={size}', flush=True)
      runs[size].append(child(size, args.reps))
  default = runs[0]
  rows = ['| pool (threads) | batch 256: epoch s | ratio | batch 1: epoch s | ratio |',
          '|---|---|---|---|---|']
  table = []
  for size in sizes:
    row = dict(threads=runs[size][0]['threads'])
    for name in ('batch 256', 'batch 1'):
      mine = [run['seconds'][name] for run in runs[size]]
      row[name] = dict(seconds=statistics.median(mine), ratio=statistics.median(
          m / d['seconds'][name] for m, d in zip(mine, default)))
    table.append(row)
    rows.append(f"| {row['threads']}{' (default)' if size == 0 else ''} | "
                f"{row['batch 256']['seconds']:.3f} | {row['batch 256']['ratio']:.2f}x | "
                f"{row['batch 1']['seconds']:.3f} | {row['batch 1']['ratio']:.2f}x |")
  print('\n'.join(rows))
  if args.json:
    Path(args.json).write_text(json.dumps(dict(table=table, runs=runs), indent=1))


if __name__ == '__main__':
  main()
