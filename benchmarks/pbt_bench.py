"""Population-based training against PB2, the grid, Hyperband and Optuna on the finetune
task: best validation accuracy reached by wall time, the retrained test accuracy, and
what an exploit costs against an epoch.

  python benchmarks/pbt_bench.py [--rows=10000] [--epochs=20] [--population=16] \\
      [--json=PATH] [--work_dir=DIR]
  python benchmarks/pbt_bench.py --searches=pbt,pb2 --population=4   # PB2 against PBT

Each search runs as a user runs it (`python -m jaxmlp.launch`, one process each, one
after another, the persistent compilation cache off so each compiles as new), on the same
data (the first --rows rows of each split: --data_limit) and about the same budget of
member-epochs (the table gives what each trained):
  pbt       configs/finetune_pbt.py: --population members x --epochs epochs, exploit
            every --interval epochs; space lr log-uniform [1e-4, 1e-1], L2 [1e-7, 1e-1].
  pb2       configs/finetune_pb2.py: the same population, space, exploit and budget; a
            copy's new values from PB2's GP-UCB bandit instead of PBT's perturbation.
  grid      configs/finetune.py on the same structure (128x256): L2 {1e-1, 1e-3, 1e-6} x
            lr {1e-1, 1e-2, 1e-3}, 9 points x (population x epochs / 9) epochs.
  hyperband the same 9 points, keras_tuner's Hyperband with max_epochs = that length.
  optuna    configs/finetune_optuna.py on 128x256 (TPE, median pruner), --epochs a
            trial, as many trials as PBT has members x 1.5 (pruning ends some early).
Every search then retrains its best (PBT: the winner's schedule) --final_epochs epochs at
batch 32, shuffled, and tests it. The best validation accuracy by time: a point per
model written (its result.json's modification time since the process started), for PBT
a point per epoch (pbt.json's epoch and exploit times after the program's start), each
the best best-epoch value seen by then. Exploit vs epoch: pbt.json's medians.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SEARCHES = ('pbt', 'pb2', 'grid', 'hyperband', 'optuna')
POPULATIONS = ('pbt', 'pb2')   # searches that evolve one population (pbt.json)


def command(search: str, args, out: Path) -> list[str]:
  common = [f'--output_dir={out}', f'--data_limit={args.rows}', '--progress=false',
            '--tensorboard=false', '--compilation_cache=off', '--seeds=1',
            f'--config.final_epochs={args.final_epochs}', '--checkpoint_every=0']
  budget = args.population * args.epochs
  if search in POPULATIONS:
    return [f'--study=finetune_{search}', f'--config.epochs={args.epochs}',
            f'--config.{search}.population={args.population}',
            f'--config.{search}.interval={args.interval}', *common]
  if search in ('grid', 'hyperband'):
    epochs = budget // 9
    extra = ([f'--config.epochs={epochs}'] if search == 'grid' else
             [f'--config.hyperband.max_epochs={epochs}', f'--config.epochs={epochs}'])
    return ['--study=finetune', f'--search={search}', '--config.hidden_sizes=128x256',
            *extra, *common]
  return ['--study=finetune_optuna', '--config.hidden_sizes=128x256',
          f'--config.epochs={args.epochs}',
          f'--config.optuna.trials={int(args.population * 1.5)}', *common]


def _best(history: dict, name='val_accuracy') -> float:
  values = [v for v in history.get(name, []) if v is not None]
  return max(values, default=float('nan'))


def _curve(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
  out, best = [], -1.0
  for t, v in sorted(points):
    if np.isfinite(v) and v > best:
      best = v
      out.append((round(float(t), 1), round(float(v), 4)))
  return out


def measure(search: str, study_dir: Path, started: float) -> dict:
  folder = 'members' if search in (*POPULATIONS, 'grid') else 'trials'
  records = [(p.stat().st_mtime - started, json.loads(p.read_text()))
             for p in (study_dir / folder).glob('*/result.json')]
  epochs = sum(r['epochs_trained'] for _, r in records)
  points = [(t, _best(r['history'])) for t, r in records]
  out = dict(member_epochs=epochs, models=len(records))
  if search in POPULATIONS:
    pbt = json.loads((study_dir / 'pbt.json').read_text())
    end = min(t for t, _ in records) - records[0][1]['fit_time_s']   # the program's start
    steps = np.array(pbt.get('epoch_s') or [], float)
    if not steps.size:   # the median per epoch, and each generation's exploit
      steps = np.full(pbt['epochs'], pbt['epoch_s_median'])
    at = end + np.cumsum(steps)
    for g, cost in enumerate(pbt['exploit_s']):
      at[(g + 1) * pbt['interval']:] += cost
    history = np.array([[np.nan if v is None else v for v in m['history']['val_accuracy']]
                        for m in pbt['members']], float)
    points = [(at[e], float(np.nanmax(history[:, :e + 1]))) for e in range(pbt['epochs'])]
    out.update(epoch_s=pbt['epoch_s_median'], exploit_s=pbt['exploit_s_median'],
               compiles_while_evolving=pbt['compiles_while_evolving'],
               exploits=len((study_dir / 'pbt_lineage.jsonl').read_text().splitlines()))
  final = [json.loads(p.read_text()) for p in (study_dir / 'final').glob('*/result.json')]
  curve = _curve(points)
  out.update(curve=curve, best_val_accuracy=max(v for _, v in points),
             best_at_s=curve[-1][0] if curve else None,
             final_test_accuracy=final[0]['test_accuracy'] if final else None,
             final=final[0]['label'] if final else None)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rows', type=int, default=10000)
  parser.add_argument('--epochs', type=int, default=20)
  parser.add_argument('--population', type=int, default=16)
  parser.add_argument('--interval', type=int, default=4)
  parser.add_argument('--final_epochs', type=int, default=20)
  parser.add_argument('--searches', default=','.join(SEARCHES))
  parser.add_argument('--work_dir', default='/tmp/pbt_bench')
  parser.add_argument('--json', default=None)
  args = parser.parse_args(argv)
  work, results = Path(args.work_dir), {}
  for search in args.searches.split(','):
    out = work / search
    argv = [sys.executable, '-m', 'jaxmlp.launch', *command(search, args, out)]
    started = time.time()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
      raise SystemExit(f'{search} failed:\n{done.stderr[-3000:]}')
    wall = time.time() - started
    study = next(p for p in out.iterdir() if p.is_dir())
    results[search] = dict(measure(search, study, started), wall_s=round(wall, 1),
                           command=' '.join(argv[3:]))
    r = results[search]
    print(f'{search:10s} {wall:7.1f} s  {r["member_epochs"]:4d} member-epochs  best val '
          f'{r["best_val_accuracy"]:.4f} at {r["best_at_s"]} s  retrained test '
          f'{r["final_test_accuracy"]}  curve {r["curve"]}', flush=True)
  for search in POPULATIONS:
    if search in results:
      r = results[search]
      print(f'{search}: exploit {1e3 * r["exploit_s"]:.1f} ms vs epoch {r["epoch_s"]:.2f} s '
            f'({r["exploit_s"] / r["epoch_s"]:.2%}); {r["exploits"]} exploits, '
            f'{r["compiles_while_evolving"]} compilations while evolving')
  if args.json:
    Path(args.json).write_text(json.dumps(dict(args=vars(args), results=results), indent=1))


if __name__ == '__main__':
  main()
