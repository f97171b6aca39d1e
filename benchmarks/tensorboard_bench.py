"""What live TensorBoard logging costs an epoch, measured in one run.

  MNIST_DIR=../shared/mnist python benchmarks/tensorboard_bench.py [--members=3,18,36]

For K members (the baseline's network, K seeds, one program, as the runner plans it)
it trains `--epochs` epochs on the first `--rows` training rows, logging every epoch to
a TensorBoard folder as a study does (runner -> report.tensorboard.GroupRuns), and
prints per K: the epoch's wall time, the time spent writing and flushing the epoch's
events (the writer's own clock, Board.seconds), their ratio, and the time of opening
the K runs (their HParams sessions) at the first epoch. A smaller `--rows` makes the
epoch shorter and the ratio an upper bound of a real study's.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.store import folders
from jaxmlp.report import tensorboard
from jaxmlp.studies import study as study_lib


def measure(members: int, epochs: int, split, mesh) -> dict[str, float]:
  config = study_lib.load_config('baseline')
  with config.unlocked():
    config.seeds, config.epochs = members, epochs
  group = study_lib.expand(config)
  (structure, tracking, _), = study_lib.group(group)
  hparams = {f: np.array([m.hparams[f] for m in group]) for f in group[0].hparams}
  seeds = np.array([m.seed for m in group])
  data = devices.put_data(split, mesh)
  with tempfile.TemporaryDirectory() as folder:
    study_dir = Path(folder)
    board = tensorboard.Board.for_study(study_dir, config, enabled=True)
    opened_after = board.seconds
    dirs = [folders.member_dir(study_dir / 'members', m) for m in group]
    programs = plan.cut(structure, [False] * members, 0, plan.data_bytes_of(data),
                        len(data.x_train))
    runs = tensorboard.GroupRuns(board, group, dirs, [p.members for p in programs],
                                 epochs, 0)
    opening, writing = [], []

    def on_epoch(done, total, metrics):
      del total
      before = board.seconds
      runs.epoch(done, metrics)
      # A program's first epoch opens its members' runs (their sessions) too.
      (opening if (done - 1) % epochs == 0 else writing).append(board.seconds - before)

    outcomes = list(plan.run(structure, tracking, programs, hparams, seeds, data, epochs,
                             mesh, on_epoch=on_epoch))
    runs.close()
  _, fit_s = plan.seconds(outcomes)
  return dict(members=members, programs=len(programs), epoch_s=fit_s / epochs,
              log_s=sum(writing) / (epochs - 1), open_s=sum(opening) + opened_after)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--members', default='3,18,36')
  parser.add_argument('--epochs', type=int, default=4)
  parser.add_argument('--rows', type=int, default=12000)
  args = parser.parse_args()
  config = study_lib.load_config('baseline')
  with config.unlocked():
    config.data_limit = args.rows
  split = data_lib.load_split(config, None)
  mesh = devices.member_mesh()
  if args.epochs < 2:
    parser.error('--epochs must be at least 2: the first epoch also opens the runs')
  print(f'| members | programs | epoch (s) | logging per epoch (ms) | logging / epoch | '
        f'opening the runs (ms) |  ({args.rows} training rows, {args.epochs} epochs)')
  print('|---|---|---|---|---|---|')
  for k in [int(k) for k in args.members.split(',')]:
    row = measure(k, args.epochs, split, mesh)
    print(f'| {k} | {row["programs"]} | {row["epoch_s"]:.2f} | {row["log_s"] * 1e3:.2f} | '
          f'{row["log_s"] / row["epoch_s"]:.2e} | {row["open_s"] * 1e3:.1f} |', flush=True)


if __name__ == '__main__':
  main()
