"""Multi-objective searches on configs/finetune_pareto.py: the hypervolume of
(val_accuracy, parameter_count) each search's front reaches, against wall time.

  python benchmarks/pareto_bench.py [--epochs=4] [--rows=0] [--json=PATH] [--work_dir=DIR]
  python benchmarks/pareto_bench.py --quick        # 1,200 rows, 2 epochs: a smoke run
                                                   # (reference accuracy 0.3)

Each search runs as a user runs it (`python -m jaxmlp.launch --study=finetune_pareto`,
one process each, one after another, the persistent compilation cache off so each
compiles as new), on the same data (full MNIST unless --rows) and the same space: 25
networks (both hidden widths in 16, 64, 128, 256, 512) x L2 {1e-3, 1e-6} x RMSprop lr
{1e-2, 1e-3}, 100 configurations, one seed, --epochs epochs at most each:
  grid              every configuration, --epochs each (100 x --epochs member-epochs).
  hyperband         keras_tuner's Hyperband over the same 100 points, max_epochs
                    --epochs, factor 3, promotions by Pareto rank, --iterations
                    iterations (at a few epochs one iteration is a handful of trials).
  nsga2, tpe        Optuna's NSGA-II / multi-objective TPE in the engine's slots, 100
                    trials, no pruning.
  nsga2+sh, tpe+sh  the same with successive halving by Pareto rank inside the program
                    (rungs at epochs 1, 3, 9: the best third of a rung goes on).
  nsga2 one-by-one  Optuna's NSGA-II as its users run it: one trial at a time, a
                    program of one slot (jaxmlp training one member per trial).
  pbt               multi-objective PBT: --population members (default 100: the
                    grid's member-epochs) of the original's 128x256
                    (PBT explores hyperparameters inside one network: its front in
                    parameter_count is one point), L2 and lr over the same values,
                    exploit every epoch.
Every run gets --config.hypervolume_reference=REFERENCE (val_accuracy
--reference_accuracy, default 0.9; parameters 700,000: the largest network has
669,706), so every hypervolume, in its report and here, is against that one point. Over time: report/growth.py's timeline (after each
finished member, the front of what has finished, from its result.json's time since
run.json was written). The table: wall time, member-epochs trained, the front (size,
points), the last hypervolume and the seconds to 95% of it, and the best hypervolume of
any search with the seconds each needed to reach 95% of that.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_PARAMETERS = 700_000
OBJECTIVES = '(val_accuracy, parameter_count)'
CONTENDERS = {
    'grid': ['--search=grid'],
    'hyperband': ['--search=hyperband'],
    'nsga2': ['--search=optuna', '--config.optuna.sampler=nsga2',
              '--config.optuna.pruner=none'],
    'nsga2+sh': ['--search=optuna', '--config.optuna.sampler=nsga2',
                 '--config.optuna.pruner=successive_halving'],
    'tpe': ['--search=optuna', '--config.optuna.sampler=tpe', '--config.optuna.pruner=none'],
    'tpe+sh': ['--search=optuna', '--config.optuna.sampler=tpe',
               '--config.optuna.pruner=successive_halving'],
    'nsga2 one-by-one': ['--search=optuna', '--config.optuna.sampler=nsga2',
                         '--config.optuna.pruner=none', '--config.optuna.slots=1'],
    'pbt': ['--search=pbt', '--config.hidden_sizes=128x256', '--config.pbt.interval=1'],
}


def _command(name: str, args, out: Path) -> list[str]:
  extra = list(CONTENDERS[name])
  if name == 'hyperband':
    extra += [f'--config.hyperband.max_epochs={args.epochs}',
              f'--config.hyperband.iterations={args.iterations}']
  if name == 'pbt':
    extra.append(f'--config.pbt.population={args.population}')
  return [sys.executable, '-m', 'jaxmlp.launch', '--study=finetune_pareto', '--seeds=1',
          f'--epochs={args.epochs}', f'--data_limit={args.rows}', '--progress=false',
          '--tensorboard=false', '--config.final_epochs=0',
          f'--config.hypervolume_reference=({args.reference_accuracy}, '
          f'{REFERENCE_PARAMETERS})',
          f'--output_dir={out}', *extra]


def _measure(name: str, args, work: Path) -> dict:
  from jaxmlp.report import growth   # pylint: disable=import-outside-toplevel
  from jaxmlp.report import pareto as pareto_report   # pylint: disable=import-outside-toplevel
  from jaxmlp.studies import study   # pylint: disable=import-outside-toplevel
  out = work / name.replace(' ', '_').replace('+', '_')
  started = time.perf_counter()
  done = subprocess.run(_command(name, args, out), capture_output=True, text=True)
  seconds = time.perf_counter() - started
  if done.returncode:
    raise SystemExit(f'{name} failed:\n{done.stderr[-2000:]}')
  folder = out / 'finetune_pareto'
  objectives = study.objectives(OBJECTIVES)
  reference = np.array([o.loss(v) for o, v in zip(
      objectives, (args.reference_accuracy, REFERENCE_PARAMETERS))])
  grown = growth.timeline(folder, objectives, (), reference)
  front = pd.read_csv(folder / pareto_report.FRONT_FILE)
  front = front[front.pareto_rank == 0].sort_values('parameter_count')
  epochs = 0
  for result in folder.glob('*/*/result.json'):
    epochs += json.loads(result.read_text())['epochs_trained']
  return dict(
      name=name, seconds=seconds, member_epochs=epochs,
      hypervolume=float(grown.hypervolume.iloc[-1]) if len(grown) else 0.0,
      seconds_to_95=growth.seconds_to(grown),
      timeline=grown[['seconds', 'hypervolume']].values.tolist(),
      front=[dict(configuration=r.label, val_accuracy=r.val_accuracy,
                  parameter_count=int(r.parameter_count)) for r in front.itertuples()])


def rungs_of(folder: Path) -> dict[int, dict[str, int]]:
  """An Optuna run's rung decisions (trials reached, continued, pruned per rung)."""
  import optuna   # pylint: disable=import-outside-toplevel
  from jaxmlp.search.optuna import _pareto_rungs   # pylint: disable=import-outside-toplevel
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  study = optuna.load_study(study_name='finetune_pareto',
                            storage=f'sqlite:///{folder / "optuna.db"}')
  return _pareto_rungs.decisions(study.get_trials(deepcopy=False))


def _at(timeline, seconds: float) -> float:
  """The hypervolume a timeline had reached by `seconds`."""
  reached = [volume for t, volume in timeline if t <= seconds]
  return reached[-1] if reached else 0.0


def pruning(results: list[dict], work: Path) -> str:
  """Each sampler with pruning by Pareto rank against without: the rungs' decisions,
  and both hypervolumes at the pruned run's wall time."""
  by_name = {r['name']: r for r in results}
  lines = ['| sampler | rung decisions (reached/pruned) | pruned run: s, hypervolume | '
           'unpruned at that time | unpruned at its end (s) |', '|---|---|---|---|---|']
  for name in ('nsga2', 'tpe'):
    if name not in by_name or f'{name}+sh' not in by_name:
      continue
    pruned, plain = by_name[f'{name}+sh'], by_name[name]
    rungs = rungs_of(work / f'{name}_sh' / 'finetune_pareto')
    shown = ', '.join(f'epoch {3 ** k}: {c["reached"]}/{c["pruned"]}' for k, c in rungs.items())
    end = pruned['timeline'][-1][0]
    lines.append(f'| {name} | {shown} | {end:.0f}, {pruned["hypervolume"]:.4g} | '
                 f'{_at(plain["timeline"], end):.4g} | {plain["hypervolume"]:.4g} '
                 f'({plain["timeline"][-1][0]:.0f}) |')
  return '\n'.join(lines)


def _reach(timeline, target: float) -> float:
  for seconds, volume in timeline:
    if volume >= target:
      return seconds
  return float('nan')


def table(results: list[dict]) -> str:
  best = max(r['hypervolume'] for r in results)
  lines = ['| search | wall s | member-epochs | front | hypervolume | s to 95% of its own | '
           f's to 95% of the best ({best:.4g}) |', '|---|---|---|---|---|---|---|']
  for r in results:
    lines.append(f'| {r["name"]} | {r["seconds"]:.0f} | {r["member_epochs"]} | '
                 f'{len(r["front"])} | {r["hypervolume"]:.4g} | {r["seconds_to_95"]:.0f} | '
                 f'{_reach(r["timeline"], 0.95 * best):.0f} |')
  return '\n'.join(lines)


def fronts(results: list[dict]) -> str:
  lines = []
  for r in results:
    points = '; '.join(f'{p["configuration"]} ({p["val_accuracy"]:.4f}, '
                       f'{p["parameter_count"]:,})' for p in r['front'])
    lines.append(f'- {r["name"]}: {points}')
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--epochs', type=int, default=4)
  parser.add_argument('--iterations', type=int, default=20, help="Hyperband's")
  parser.add_argument('--reference_accuracy', type=float, default=0.9)
  parser.add_argument('--rows', type=int, default=0, help='--data_limit (0: full MNIST)')
  parser.add_argument('--population', type=int, default=100)
  parser.add_argument('--searches', default=','.join(CONTENDERS))
  parser.add_argument('--quick', action='store_true', help='1,200 rows, 2 epochs')
  parser.add_argument('--json', default=None)
  parser.add_argument('--work_dir', default=None)
  parser.add_argument('--tables_from', default=None,
                      help="print the tables of a finished run's --json (with its --work_dir)")
  args = parser.parse_args(argv)
  if args.tables_from:
    results = json.loads(Path(args.tables_from).read_text())['results']
    print(table(results), pruning(results, Path(args.work_dir)), fronts(results),
          sep='\n\n')
    return
  if args.quick:
    args.rows, args.epochs, args.population, args.iterations = 1200, 2, 8, 2
    args.reference_accuracy = 0.3
  import tempfile   # pylint: disable=import-outside-toplevel
  work = Path(args.work_dir or tempfile.mkdtemp(prefix='pareto_bench_'))
  results = []
  for name in args.searches.split(','):
    results.append(_measure(name, args, work))
    print(f'{name}: {results[-1]["seconds"]:.0f} s, hypervolume '
          f'{results[-1]["hypervolume"]:.4g}', flush=True)
    if args.json:
      Path(args.json).write_text(json.dumps(dict(args=vars(args), results=results), indent=1))
  print(table(results), pruning(results, work), fronts(results), sep='\n\n')


if __name__ == '__main__':
  main()
