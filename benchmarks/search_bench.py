"""Hyperparameter searches end to end: the engine's Optuna search against one trial at a
time and against Optuna driving Keras; best validation accuracy against wall time for
the Optuna search, Hyperband and the grid.

  python benchmarks/search_bench.py [--quick] [--json=PATH] [--plot=PATH] [...]

Everything is measured in one run, on the same data (the first --rows MNIST training
rows in file order, cut by Keras' validation_split=0.2: the last fifth validates;
the test set is the first --test_rows test rows, which only the grid's and Hyperband's
programs evaluate, once per member) and the same search problem: configs/finetune_optuna.py's
space (RMSprop(lr), HeNormal kernels, L2(alpha) on the hidden kernels, hidden sizes
(64|128, 256|512), alpha log-uniform [1e-7, 1e-1], lr log-uniform [1e-4, 1e-1], batch
256, no shuffle), objective val_accuracy (a trial's score: its best epoch's), seeds=1,
--epochs per trial, no final retraining, no report.

1. Trials per hour, with the same sampler (TPE seeded with --search_seed, as
   _study.sampler_of makes it), the same pruner (--pruner, as
   _study.pruner_of makes it), the same budget (--trials trials that complete or
   are pruned, as OptunaWorker.may_ask counts them) and the same epochs:
   engine K=..   jaxmlp's --search=optuna: an OptunaWorker with
                 config.optuna.slots=K (each --slots value; 0: what the devices hold, at
                 most a quarter of the trials), after runner.start(); the study in an
                 SQLite file in a temporary folder (--storage=memory: Optuna's in-memory
                 storage). The worker runs at most K trials
                 at once, in programs of K/S slots (S: the structures the space can
                 need, here the 4 hidden-size pairs), as many of a structure as its
                 trials fill, all of one structure sharing one executable.
   one at a time the same engine with optuna.slots=1: one trial running at a time,
                 in programs of one slot, one per structure, each compiled once and
                 refilled with the next trial of its structure without recompiling.
                 The engine's rows also count the slots their programs computed, busy
                 or empty, and the most trials running at once (wrappers that only
                 count).
   keras         (when `keras` imports) Optuna's sequential loop (what study.optimize
                 does with n_jobs=1: ask, run the objective, tell), one Keras model per
                 trial: Dense(h, relu, HeNormal, kernel_regularizer=l2(alpha)) hidden
                 layers, Dense(10, softmax, HeNormal), RMSprop(lr), sparse categorical
                 cross-entropy, fit(batch_size=256, shuffle=False, validation_split=0.2)
                 on the same rows; a callback reports val_accuracy each epoch and raises
                 optuna.TrialPruned when the pruner says so (not after the last epoch,
                 as the engine's search); keras.utils.set_random_seed(trial number);
                 keras.backend.clear_session() after each trial. The same parameter
                 names and distributions (_space.distributions), the same storage kind.
                 --trials_keras may run fewer trials (the rate is per trial; the table
                 says so).
   For each: wall seconds of the whole search (compiles included: jax's caches are
   cleared before each contender, so each compiles as in a fresh process), trials
   completed / pruned / failed, epochs trained, trials per hour, the best val_accuracy of
   a completed trial (Optuna's best_value), and the ratio of trials per hour against
   "one at a time" (the median of the per-repetition ratios).
2. Best validation accuracy against wall time, for the engine's Optuna search (the
   first --slots value's run of section 1: the same run, not another), Hyperband
   (hyperband_search.run over configs/finetune.py's grid: hidden 64x256, 64x512,
   128x256, 128x512 x alpha 1e-1, 1e-3, 1e-6 x lr 1e-1, 1e-2, 1e-3, with
   hyperband.max_epochs = --epochs, factor 3, one iteration) and the grid (every point
   of that grid, --epochs each, runner.run_grid). A point per finished model: the
   seconds since the search started (just before runner.start) at which its
   result.json was written (its modification time: an Optuna trial's record is written
   when the trial completes or is pruned, a grid or Hyperband member's when its
   program ends), and the best val_accuracy of any model finished by then (the best
   epoch of each, pruned trials included; a diverged model counts as nothing). For
   Keras and "one at a time" the same curves are kept (Keras: the time each trial
   ended) and drawn dashed. The table gives the best val_accuracy reached by 25%, 50%
   and 100% of the longest of the three searches' wall time; the PNG (--plot) draws
   the curves.

Each of --reps repetitions (default 1: a search is long) runs every contender once,
back to back, in reverse order on odd repetitions, so that load from other processes
on a shared machine hits them alike; times are medians over repetitions, ratios
medians of per-repetition ratios. The JSON (--json) holds the environment, every raw
time and curve, and the rendered Markdown; it is rewritten after every contender's
run, so a run cut short keeps what it measured.
"""

import contextlib
import dataclasses
import importlib.util
import io
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Run as a script or imported with benchmarks/ on the path: sibling modules import.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import optuna

from jaxmlp import pipeline
from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import devices
from jaxmlp.engine import runner
from jaxmlp.store import records
from jaxmlp.store import folders
from jaxmlp.search.hyperband import _search as hyperband_search
from jaxmlp.search.optuna import _space
from jaxmlp.search.optuna import _study
from jaxmlp.search.optuna import _worker
from jaxmlp.search import registry
from jaxmlp.studies import study as study_lib

from bench import environment, fill_preset, preset_parser, write_json  # pylint: disable=wrong-import-position
import search_bench_report  # pylint: disable=wrong-import-position

QUICK = dict(rows=2000, epochs=3, trials=8)
FULL = dict(rows=12000, epochs=10, trials=40)
STORAGES = ('sqlite', 'memory')
CONTENDERS = ('engine', 'single', 'keras', 'hyperband', 'grid')
STATES = optuna.trial.TrialState


# -- the search problem ------------------------------------------------------------------

def optuna_config(args, slots: int):
  """configs/finetune_optuna.py with the benchmark's budget: --epochs, --trials,
  --pruner, TPE seeded with --search_seed, seeds=1, `slots` slots, no final model."""
  config = registry.complete(study_lib.load_config('finetune_optuna'))
  with config.unlocked():
    config.update(epochs=args.epochs, seeds=1,
                  search_seed=args.search_seed, final_epochs=0, confusion_matrix=False,
                  early_stopping_patience=0, matmul_precision=args.matmul_precision)
    config.optuna.update(trials=args.trials, pruner=args.pruner, sampler='tpe', slots=slots)
  return config


def grid_config(args, search: str):
  """configs/finetune.py's 36-point grid (the discretization of the Optuna space),
  --epochs per member, seeds=1, no early stopping (as the Optuna search), no final
  model; for Hyperband, max_epochs = --epochs and factor 3."""
  config = registry.complete(study_lib.load_config('finetune'))
  with config.unlocked():
    config.update(epochs=args.epochs, seeds=1, search=search, early_stopping_patience=0,
                  search_seed=args.search_seed, final_epochs=0,
                  confusion_matrix=False, matmul_precision=args.matmul_precision)
    config.hyperband.update(max_epochs=args.epochs, factor=3, iterations=1)
  return config


def load_split(args) -> data_lib.Split:
  """The first --rows training rows, cut as Keras' validation_split=0.2 cuts them, and
  the first --test_rows test rows."""
  mnist = data_lib.load('idx', args.data_dir)
  head = data_lib.Mnist(mnist.train_images[:args.rows], mnist.train_labels[:args.rows],
                        mnist.test_images[:args.test_rows],
                        mnist.test_labels[:args.test_rows])
  return data_lib.split(head, 0.2)


# -- what each run measures --------------------------------------------------------------

def _best_epoch_value(record: records.MemberRecord) -> float | None:
  values = [v for v in record.history['val_accuracy'] if v is not None]
  return max(values) if values else None


def _curve(events: list[tuple[float, float | None]]) -> list[list[float]]:
  """[(seconds, best val_accuracy so far)], one point per finished model (in time order);
  a model with no finite value adds a point only once something has a value."""
  out, best = [], None
  for t, value in sorted(events, key=lambda e: e[0]):
    if value is not None and math.isfinite(value):
      best = value if best is None else max(best, value)
    if best is not None:
      out.append([round(t, 3), best])
  return out


def _records_with_times(folder: Path, t0_wall: float
                        ) -> list[tuple[float, records.MemberRecord]]:
  """Every finished model's record under `folder`, with the seconds since t0_wall at
  which its result.json was written (write_atomic renames a finished file into place,
  so the modification time is when the record was written)."""
  out = []
  if folder.is_dir():
    for d in sorted(folder.iterdir()):
      path = d / folders.RESULT_FILE
      if path.is_file():
        out.append((path.stat().st_mtime - t0_wall, folders.read_member(d)))
  return out


def _trial_counts(study: optuna.Study) -> dict:
  trials = study.get_trials(deepcopy=False)
  count = lambda state: sum(t.state == state for t in trials)
  complete = [t for t in trials if t.state == STATES.COMPLETE]
  return dict(complete=count(STATES.COMPLETE), pruned=count(STATES.PRUNED),
              failed=count(STATES.FAIL), asked=len(trials),
              best_value=max(t.value for t in complete) if complete else None,
              best_params=(max(complete, key=lambda t: t.value).params if complete else None))


def _open_study(config, folder: Path, storage: str) -> optuna.Study:
  """The study as jaxmlp opens it (SQLite in the study folder), or in memory with the
  same sampler, pruner and direction."""
  if storage == 'sqlite':
    return _study.open_study(config, folder, None, 0)
  _study.quiet()
  return optuna.create_study(study_name=config.name, sampler=_study.sampler_of(config, 0),
                             pruner=_study.pruner_of(config), direction='maximize')


def run_engine(args, split, folder: Path, slots: int, single: bool) -> dict:
  """jaxmlp's --search=optuna with config.optuna.slots=slots; single: one trial at a
  time, in programs of exactly one slot."""
  config = optuna_config(args, 1 if single else slots)
  _space.validate_space(config, len(split.x_train))
  jax.clear_caches()   # every contender compiles its programs, as in a fresh process
  t0_wall, t0 = time.time(), time.perf_counter()
  settings, data = runner.start(config, split, folder, progress=False)
  # As optuna_search.run (one worker, nothing left to wait for), in either storage.
  study = _open_study(config, settings.study_dir, args.storage)
  worker = _worker.OptunaWorker(config, settings, data, study, 0)
  worker.run()
  wall = time.perf_counter() - t0
  usage = dataclasses.asdict(worker.usage)
  sizes = usage.pop('sizes')
  programs_built = worker.programs_built
  records = _records_with_times(settings.study_dir / 'trials', t0_wall)
  return dict(wall_s=wall, **_trial_counts(study), programs_built=programs_built,
              slots=sorted(sizes), **usage,
              epochs_trained=sum(r.epochs_trained for _, r in records),
              curve=_curve([(t, _best_epoch_value(r)) for t, r in records]))


def run_grid_search(args, split, folder: Path, search: str) -> dict:
  """hyperband_search.run, or runner.run_grid, over finetune's grid; the lines the
  runner prints per program are kept in the JSON."""
  config = grid_config(args, search)
  pipeline.check_study(config, len(split.x_train))
  jax.clear_caches()
  log = io.StringIO()
  t0_wall, t0 = time.time(), time.perf_counter()
  settings, data = runner.start(config, split, folder, progress=False)
  with contextlib.redirect_stdout(log):
    if search == 'hyperband':
      hyperband_search.run(config, settings, data)
    else:
      runner.run_grid(config, settings, data)
  wall = time.perf_counter() - t0
  records = _records_with_times(settings.study_dir / ('trials' if search == 'hyperband'
                                                      else 'members'), t0_wall)
  values = [_best_epoch_value(r) for _, r in records]
  finite = [v for v in values if v is not None]
  return dict(wall_s=wall, models=len(records),
              epochs_trained=sum(r.epochs_trained for _, r in records),
              programs=len({r.run.program for _, r in records}),
              best_value=max(finite) if finite else None,
              curve=_curve([(t, v) for (t, _), v in zip(records, values)]),
              log=log.getvalue().splitlines())


# -- Keras ------------------------------------------------------------------------------

def keras_module():
  """(keras or None, note)."""
  if importlib.util.find_spec('keras') is None:
    return None, 'keras not installed'
  if 'KERAS_BACKEND' not in os.environ and importlib.util.find_spec('tensorflow') is None:
    os.environ['KERAS_BACKEND'] = 'jax'   # Keras 3 defaults to TensorFlow
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  try:
    import keras  # pylint: disable=g-import-not-at-top
    backend = getattr(keras.backend, 'backend', lambda: '?')()
    return keras, f'keras {keras.__version__} ({backend} backend)'
  except Exception as e:  # pylint: disable=broad-except
    return None, f'keras unusable: {type(e).__name__}: {e}'[:200]


def run_keras(args, keras, mnist_rows, folder: Path) -> dict:
  """Optuna's sequential loop over Keras models (see the module's docstring)."""
  x_u8, y = mnist_rows
  config = optuna_config(args, 1)
  fields, swept = _space.fields_of(config)
  distributions = _space.distributions(fields, swept)
  budget = args.trials_keras
  t0_wall, t0 = time.time(), time.perf_counter()
  study = _open_study(config, folder / config.name, args.storage)
  x = np.asarray(x_u8, np.float32) / 255.0
  events, epochs_trained = [], 0

  class Report(keras.callbacks.Callback):
    """trial.report(val_accuracy) every epoch; TrialPruned when the pruner says so."""

    def __init__(self, trial):
      super().__init__()
      self.trial, self.values = trial, []

    def on_epoch_end(self, epoch, logs=None):
      nonlocal epochs_trained
      epochs_trained += 1
      value = float(logs['val_accuracy'])
      self.values.append(value)
      self.trial.report(value, step=epoch)
      if epoch + 1 < args.epochs and self.trial.should_prune():
        raise optuna.TrialPruned()

  def counted() -> int:
    return len(study.get_trials(deepcopy=False, states=(STATES.COMPLETE, STATES.PRUNED)))

  asked = 0
  while counted() < budget and asked < 3 * budget:   # failed trials are asked again
    asked += 1
    trial = study.ask(distributions)
    values = _space.values_of(fields, trial.params)
    keras.utils.set_random_seed(trial.number)
    l2 = float(values['l2'])
    model = keras.Sequential(
        [keras.Input(shape=(784,))] +
        [keras.layers.Dense(h, activation='relu', kernel_initializer='he_normal',
                            kernel_regularizer=keras.regularizers.L2(l2))
         for h in values['hidden_sizes']] +
        [keras.layers.Dense(10, activation='softmax', kernel_initializer='he_normal')])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=float(
                      values['learning_rate'])),
                  loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    report = Report(trial)
    try:
      model.fit(x, y, batch_size=256, epochs=args.epochs, shuffle=False,
                validation_split=0.2, verbose=0, callbacks=[report])
      finite = [v for v in report.values if math.isfinite(v)]
      if finite:
        study.tell(trial, max(finite))
      else:
        study.tell(trial, state=STATES.FAIL)
    except optuna.TrialPruned:
      study.tell(trial, state=STATES.PRUNED)
    finite = [v for v in report.values if math.isfinite(v)]
    events.append((time.time() - t0_wall, max(finite) if finite else None))
    keras.backend.clear_session()
  wall = time.perf_counter() - t0
  return dict(wall_s=wall, **_trial_counts(study), epochs_trained=epochs_trained,
              slots=[1], curve=_curve(events))


# -- repetitions ---------------------------------------------------------------------------

def _contenders(args, keras) -> list[str]:
  wanted = args.contenders.split(',')
  names = []
  if 'engine' in wanted:
    names += [f'engine_k{k}' for k in args.slot_list]
  names += [n for n in ('single', 'keras', 'hyperband', 'grid') if n in wanted]
  if keras is None and 'keras' in names:
    names.remove('keras')
  return names


def run_once(name: str, args, split, keras, folder: Path) -> dict:
  if name.startswith('engine_k'):
    return run_engine(args, split, folder, int(name[len('engine_k'):]), single=False)
  if name == 'single':
    return run_engine(args, split, folder, 1, single=True)
  if name == 'keras':
    rows = (np.concatenate([split.x_train, split.x_val]),
            np.concatenate([split.y_train, split.y_val]))
    return run_keras(args, keras, rows, folder)
  return run_grid_search(args, split, folder, name)


# -- the command line ----------------------------------------------------------------------

def parse_args(argv=None):
  parser = preset_parser(__doc__, QUICK, FULL, 'a small problem, to check that everything '
                         'runs (~2 min, 2 cores)', 'search_bench.json')
  parser.add_argument('--plot', default=None,
                      help='the PNG of section 2 (default: the JSON path with .png)')
  parser.add_argument('--rows', type=int, help='MNIST training rows (the last 20%% validate)')
  parser.add_argument('--test_rows', type=int,
                      help='test rows the grid and Hyperband programs evaluate '
                      '(default: as many as the validation rows)')
  parser.add_argument('--epochs', type=int, help='epochs per trial (Hyperband: max_epochs)')
  parser.add_argument('--trials', type=int, help='trials per Optuna search')
  parser.add_argument('--trials_keras', type=int,
                      help='trials of the Keras search (default: --trials); the rate is per '
                      'trial either way')
  parser.add_argument('--slots', default='8',
                      help="comma-separated config.optuna.slots values, one engine contender "
                      "each (0: what the devices hold); the first is section 2's "
                      '(default: %(default)s)')
  parser.add_argument('--pruner', default='median', choices=_study.PRUNERS,
                      help='the Optuna pruner of every Optuna search (default: %(default)s)')
  parser.add_argument('--search_seed', type=int, default=1,
                      help='TPE\'s and Hyperband\'s seed (default: %(default)s)')
  parser.add_argument('--storage', default='sqlite', choices=STORAGES,
                      help='Optuna storage: an SQLite file in a temporary folder, as jaxmlp\'s '
                      'default, or in memory (default: %(default)s)')
  parser.add_argument('--reps', type=int, default=1,
                      help='repetitions of every contender (default: %(default)s)')
  parser.add_argument('--contenders', default=','.join(CONTENDERS),
                      help='which to run, of %(default)s')
  parser.add_argument('--data_dir', default=None,
                      help='MNIST IDX folder (default: $MNIST_DIR or the cache)')
  parser.add_argument('--cpu_devices', type=int, default=0,
                      help='as jaxmlp.launch: JAX devices a CPU is split into (0: one per core)')
  parser.add_argument('--matmul_precision', default='float32',
                      choices=study_lib.MATMUL_PRECISIONS, help='as jaxmlp.launch')
  parser.add_argument('--work_dir', default=None,
                      help='where the searches write (default: a temporary folder, removed)')
  args = parser.parse_args(argv)
  fill_preset(args, QUICK, FULL)
  if args.test_rows is None:
    args.test_rows = args.rows - int(args.rows * 0.8)
  if args.trials_keras is None:
    args.trials_keras = args.trials
  if not 10 <= args.rows <= 60000:
    parser.error('--rows must be from 10 to 60000')
  if min(args.epochs, args.trials, args.trials_keras, args.reps, args.test_rows) < 1:
    parser.error('--epochs, --trials, --trials_keras, --reps and --test_rows must be >= 1')
  try:
    args.slot_list = [int(k) for k in args.slots.split(',')]
    if min(args.slot_list) < 0:
      raise ValueError
  except ValueError:
    parser.error(f'--slots={args.slots}: give whole numbers >= 0, e.g. 8 or 8,0')
  unknown = set(args.contenders.split(',')) - set(CONTENDERS)
  if unknown:
    parser.error(f'--contenders: unknown {sorted(unknown)}; choose from {", ".join(CONTENDERS)}')
  if args.plot is None:
    args.plot = str(Path(args.json).with_suffix('.png'))
  return args


def main(argv=None):
  args = parse_args(argv)
  devices.use_cpu_cores(args.cpu_devices)
  jax.config.update('jax_default_matmul_precision', args.matmul_precision)
  begin = time.perf_counter()
  split = load_split(args)
  keras, keras_note = (keras_module() if 'keras' in args.contenders.split(',')
                       else (None, 'not asked for'))
  names = _contenders(args, keras)
  out = dict(environment=environment(), optuna=optuna.__version__, quick=args.quick,
             reps=args.reps, args={k: v for k, v in vars(args).items() if k != 'slot_list'},
             train_rows=len(split.x_train), val_rows=len(split.x_val),
             test_rows=len(split.x_test), keras_note=keras_note,
             runs={name: [] for name in names})
  print(f"[search_bench] {out['environment']['device']} x{out['environment']['device_count']}"
        f", jax {jax.__version__}, optuna {optuna.__version__}; {keras_note}; "
        f"json: {args.json}", flush=True)
  work = Path(args.work_dir or tempfile.mkdtemp(prefix='jaxmlp-search-bench-'))
  try:
    for rep in range(args.reps):
      order = names if rep % 2 == 0 else names[::-1]
      for name in order:
        print(f'[search_bench] repetition {rep + 1}/{args.reps}: '
              f'{search_bench_report.label_of(name)}', flush=True)
        folder = work / f'{name}-rep{rep}'
        result = run_once(name, args, split, keras, folder)
        result.update(rep=rep, order=order.index(name))
        out['runs'][name].append(result)
        models = result.get('models', result.get('complete', 0) + result.get('pruned', 0)
                            + result.get('failed', 0))
        print(f"[search_bench]   {result['wall_s']:.1f} s, {models} models, "
              f"{result['epochs_trained']} epochs, best val_accuracy "
              f"{search_bench_report.fmt(result['best_value'])}", flush=True)
        search_bench_report.summarize(out)
        out['section2'] = search_bench_report.section2(out)
        write_json(args.json, out)
  finally:
    if args.work_dir is None:
      shutil.rmtree(work, ignore_errors=True)
  out['total_s'] = time.perf_counter() - begin
  out['environment']['load_average_at_end'] = round(os.getloadavg()[0], 2)
  out['plot'] = search_bench_report.plot(out, args.plot)
  out['markdown'] = search_bench_report.render(out)
  write_json(args.json, out)
  print()
  print(out['markdown'])


if __name__ == '__main__':
  main()
