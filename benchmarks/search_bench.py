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
   optuna_study.sampler_of makes it), the same pruner (--pruner, as
   optuna_study.pruner_of makes it), the same budget (--trials trials that complete or
   are pruned, as Search.may_ask counts them) and the same epochs:
   engine K=..   jaxmlp's --search=optuna: optuna_search.run() with
                 config.optuna_slots=K (each --slots value; 0: what the devices hold, at
                 most a quarter of the trials), after runner.start(); the study in an
                 SQLite file in a temporary folder (--storage=memory: Optuna's in-memory
                 storage, through the Search class). Its Search runs at most K trials
                 at once, in programs of K/S slots (S: the structures the space can
                 need, here the 4 hidden-size pairs), as many of a structure as its
                 trials fill, all of one structure sharing one executable.
   one at a time the same engine with optuna_slots=1: one trial running at a time,
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
                 names and distributions (space.distributions), the same storage kind.
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
   hyperband_max_epochs = --epochs, factor 3, one iteration) and the grid (every point
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
import importlib.util
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

# Run as a script or imported with benchmarks/ on the path: sibling modules import.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import optuna

from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import devices
from jaxmlp.search import hyperband as hyperband_search
from jaxmlp.search import optuna_search
from jaxmlp import pipeline
from jaxmlp.report import results
from jaxmlp.engine import runner
from jaxmlp.engine import slots as slots_lib
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib

try:   # the study's storage, sampler and pruner (optuna_search.py kept them before)
  from jaxmlp.search import optuna_study  # pylint: disable=g-import-not-at-top
except ImportError:
  optuna_study = optuna_search

from bench import environment, fill_preset, preset_parser, write_json  # pylint: disable=wrong-import-position
import timing  # pylint: disable=wrong-import-position

QUICK = dict(rows=2000, epochs=3, trials=8)
FULL = dict(rows=12000, epochs=10, trials=40)
FRACTIONS = (0.25, 0.5, 1.0)
STORAGES = ('sqlite', 'memory')
CONTENDERS = ('engine', 'single', 'keras', 'hyperband', 'grid')
SECTION2 = ('hyperband', 'grid')  # with the first engine contender
STATES = optuna.trial.TrialState


# -- the search problem ------------------------------------------------------------------

def optuna_config(args, slots: int):
  """configs/finetune_optuna.py with the benchmark's budget: --epochs, --trials,
  --pruner, TPE seeded with --search_seed, seeds=1, `slots` slots, no final model."""
  config = study_lib.load_config('finetune_optuna')
  with config.unlocked():
    config.update(epochs=args.epochs, optuna_trials=args.trials, optuna_pruner=args.pruner,
                  optuna_sampler='tpe', optuna_slots=slots, seeds=1,
                  search_seed=args.search_seed, final_epochs=0, confusion_matrix=False,
                  early_stopping_patience=0, matmul_precision=args.matmul_precision)
  return config


def grid_config(args, search: str):
  """configs/finetune.py's 36-point grid (the discretization of the Optuna space),
  --epochs per member, seeds=1, no early stopping (as the Optuna search), no final
  model; for Hyperband, max_epochs = --epochs and factor 3."""
  config = study_lib.load_config('finetune')
  with config.unlocked():
    config.update(epochs=args.epochs, seeds=1, search=search, early_stopping_patience=0,
                  hyperband_max_epochs=args.epochs, hyperband_factor=3,
                  hyperband_iterations=1, search_seed=args.search_seed, final_epochs=0,
                  confusion_matrix=False, matmul_precision=args.matmul_precision)
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

def _best_epoch_value(record: dict) -> float | None:
  values = [v for v in record['history']['val_accuracy'] if v is not None]
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


def _records_with_times(folder: Path, t0_wall: float) -> list[tuple[float, dict]]:
  """Every finished model's record under `folder`, with the seconds since t0_wall at
  which its result.json was written (write_atomic renames a finished file into place,
  so the modification time is when the record was written)."""
  out = []
  if folder.is_dir():
    for d in sorted(folder.iterdir()):
      path = d / results.RESULT_FILE
      if path.is_file():
        out.append((path.stat().st_mtime - t0_wall, json.loads(path.read_text())))
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
    return optuna_study.open_study(config, folder, None, 0)
  optuna_study.quiet()
  return optuna.create_study(study_name=config.name, sampler=optuna_study.sampler_of(config, 0),
                             pruner=optuna_study.pruner_of(config), direction='maximize')


def run_engine(args, split, folder: Path, slots: int, single: bool) -> dict:
  """jaxmlp's --search=optuna with config.optuna_slots=slots; single: one trial at a
  time, in programs of exactly one slot."""
  config = optuna_config(args, 1 if single else slots)
  optuna_search.validate(config, len(split.x_train))
  jax.clear_caches()   # every contender compiles its programs, as in a fresh process
  patches = contextlib.ExitStack()
  # Counts, without changing them, what the programs' epochs compute: every slot of a
  # program (an empty slot is frozen, but trained and thrown away all the same), the
  # slots that hold a trial, and the trials running at once.
  usage = dict(program_epochs=0, slot_epochs=0, busy_slot_epochs=0, max_running=0)
  sizes = set()
  run_epoch, step = slots_lib.SlotProgram.run_epoch, optuna_search.Search.step

  def counted_epoch(program):
    usage['program_epochs'] += 1
    usage['slot_epochs'] += program.size
    usage['busy_slot_epochs'] += sum(owner is not None for owner in program.owner)
    sizes.add(program.size)
    return run_epoch(program)

  def counted_step(search):
    usage['max_running'] = max(usage['max_running'], len(search.running))
    return step(search)

  patches.enter_context(mock.patch.object(slots_lib.SlotProgram, 'run_epoch', counted_epoch))
  patches.enter_context(mock.patch.object(optuna_search.Search, 'step', counted_step))
  with patches:
    t0_wall, t0 = time.time(), time.perf_counter()
    settings, data = runner.start(config, split, folder, progress=False)
    if args.storage == 'sqlite':
      outcome = optuna_search.run(config, settings, data)   # Search(...).run() and the outcome
      study, programs_built = outcome.search.study, outcome.search.programs_built
    else:
      study = _open_study(config, settings.study_dir, 'memory')
      search = optuna_search.Search(config, settings, data, study, 0)
      search.run()
      programs_built = search.programs_built
    wall = time.perf_counter() - t0
  records = _records_with_times(settings.study_dir / 'trials', t0_wall)
  return dict(wall_s=wall, **_trial_counts(study), programs_built=programs_built,
              slots=sorted(sizes), **usage,
              epochs_trained=sum(r['epochs_trained'] for _, r in records),
              curve=_curve([(t, _best_epoch_value(r)) for t, r in records]))


def run_grid_search(args, split, folder: Path, search: str) -> dict:
  """hyperband_search.run, or runner.run_grid, over finetune's grid; the lines the
  runner prints per program are kept in the JSON."""
  config = grid_config(args, search)
  pipeline.validate(config, len(split.x_train))
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
              epochs_trained=sum(r['epochs_trained'] for _, r in records),
              programs=len({r['program'] for _, r in records}),
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
  fields, swept = optuna_search.fields_of(config)
  distributions = space.distributions(fields, swept)
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
    values = space.values_of(fields, trial.params)
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


# -- repetitions, the JSON, the tables, the plot ---------------------------------------

def _contenders(args, keras) -> list[str]:
  wanted = args.contenders.split(',')
  names = []
  if 'engine' in wanted:
    names += [f'engine_k{k}' for k in args.slot_list]
  names += [n for n in ('single', 'keras', 'hyperband', 'grid') if n in wanted]
  if keras is None and 'keras' in names:
    names.remove('keras')
  return names


def label_of(name: str) -> str:
  if name.startswith('engine_k'):
    k = int(name[len('engine_k'):])
    return f"engine, optuna_slots={k}{' (what the devices hold)' if k == 0 else ''}"
  return {'single': 'engine, one trial at a time (1 slot)',
          'keras': 'Optuna + Keras, one model per trial', 'hyperband': 'Hyperband (engine)',
          'grid': 'grid (engine)'}[name]


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


def summarize(out: dict) -> None:
  """Medians over repetitions and ratios against 'one at a time', into out['summary']."""
  runs = out['runs']
  summary = {}
  for name, reps in runs.items():
    if not reps:
      continue
    walls = [r['wall_s'] for r in reps]
    row = dict(wall_s=statistics.median(walls), reps=len(reps))
    if 'complete' in reps[0]:
      rates = [(r['complete'] + r['pruned']) / r['wall_s'] * 3600 for r in reps]
      row.update(trials_per_hour=statistics.median(rates),
                 epochs_per_s=statistics.median(r['epochs_trained'] / r['wall_s'] for r in reps))
      single = runs.get('single') or []
      if name != 'single' and len(single) >= 1:
        n = min(len(single), len(reps))
        single_rates = [(r['complete'] + r['pruned']) / r['wall_s'] * 3600
                        for r in single[:n]]
        row['over_single'] = timing.paired_ratio(rates[:n], single_rates)
    summary[name] = row
  out['summary'] = summary


def best_at(curve: list, seconds: float) -> float | None:
  best = None
  for t, value in curve:
    if t <= seconds:
      best = value
  return best


def section2(out: dict) -> dict | None:
  """Per repetition, the longest of the three searches' wall time; per search, the
  median over repetitions of the best reached by each fraction of it."""
  runs = out['runs']
  engine = next((n for n in runs if n.startswith('engine_k')), None)
  three = [n for n in (engine, *SECTION2) if n and runs.get(n)]
  if not three:
    return None
  reps = min(len(runs[n]) for n in three)
  if not reps:
    return None
  longest = [max(runs[n][r]['wall_s'] for n in three) for r in range(reps)]
  extra = [n for n in runs if n not in three and len(runs[n]) >= reps]
  table = {}
  for name in three + extra:
    row = {}
    for fraction in FRACTIONS:
      values = [best_at(runs[name][r]['curve'], fraction * longest[r]) for r in range(reps)]
      row[str(fraction)] = (statistics.median(values) if all(v is not None for v in values)
                            else None)
    table[name] = row
  return dict(searches=three, extra=extra, longest_s=statistics.median(longest), best=table)


def _fmt(value, digits=4) -> str:
  return '-' if value is None else f'{value:.{digits}f}'


def render(out: dict) -> str:
  env, a = out['environment'], out['args']
  lines = [
      f"jaxmlp search benchmark, {env['date']}: {env['device']} x{env['device_count']} "
      f"(host {env['host_cpu']}, {env['host_cores']} cores); jax {env['jax']}, "
      f"flax {env['flax']}, optax {env['optax']}, optuna {out['optuna']}, python "
      f"{env['python']}.",
      f"Problem: finetune_optuna's space (RMSprop, HeNormal, hidden 64|128 x 256|512, "
      f"L2 log-uniform [1e-7, 1e-1], lr log-uniform [1e-4, 1e-1]), objective val_accuracy, "
      f"first {a['rows']:,} MNIST training rows ({out['train_rows']:,} train / "
      f"{out['val_rows']:,} validation), batch 256, no shuffle, {a['epochs']} epochs per "
      f"trial, seeds=1; TPE (seed {a['search_seed']}), pruner {a['pruner']}, "
      f"{a['trials']} trials; Optuna storage {a['storage']}; matmul precision "
      f"{env['matmul_precision']}. {_plural(out['reps'], 'repetition')}, contenders back "
      f"to back (reversed order on odd repetitions): times are medians, ratios medians of "
      f"per-repetition ratios. `{env['command']}`.",
      '']
  summary = out.get('summary', {})
  s1 = [n for n in out['runs'] if n in summary and 'trials_per_hour' in summary[n]]
  if s1:
    lines += ['| search (same sampler, pruner, trials, epochs) | slots per program; most '
              'trials at once | programs built; slot-epochs busy | wall s (compiles incl.) '
              '| trials complete / pruned / failed | epochs trained | trials per hour '
              '| vs one at a time | best val_accuracy (complete trials) |',
              '|---|---|---|---|---|---|---|---|---|']
    for name in s1:
      row, last = summary[name], out['runs'][name][-1]
      note = ''
      if name == 'keras' and a['trials_keras'] != a['trials']:
        note = f" ({a['trials_keras']} of {a['trials']} trials: rate from those)"
      ratio = row.get('over_single')
      use = '-'
      if last.get('slot_epochs'):
        use = (f"{last['programs_built']}; {last['busy_slot_epochs']} of "
               f"{last['slot_epochs']} ({last['busy_slot_epochs'] / last['slot_epochs']:.0%})")
      elif name == 'keras':
        use = 'a model per trial'
      lines.append(
          f"| {label_of(name)}{note} | {', '.join(map(str, last['slots']))}; "
          f"{last.get('max_running', 1)} | {use} "
          f"| {row['wall_s']:.1f} | {last['complete']} / {last['pruned']} / {last['failed']} "
          f"| {last['epochs_trained']} | {row['trials_per_hour']:,.0f} "
          f"| {'1.00x' if name == 'single' else (f'{ratio:.2f}x' if ratio else '-')} "
          f"| {_fmt(last['best_value'])} |")
    if 'keras' not in out['runs'] and 'keras' in a['contenders'].split(','):
      lines.append(f"| Optuna + Keras | - | - | {out['keras_note']}: skipped | - | - | - | - "
                   '| - |')
    lines += ['', '- trials per hour: (complete + pruned) / wall time; the budget counts '
              'every trial but those failed by an interrupted worker (asked again), as '
              'jaxmlp\'s Search.may_ask does. Counts, epochs and best value are from the last '
              'repetition. The engine\'s search runs at most K trials at once, in programs '
              'of K/S slots (S: the structures the space can need, here its 4 hidden-size '
              'pairs; a structure\'s programs share one executable); '
              'trials that start together are sampled without each other\'s results, and a '
              'pruner judges a trial by completed trials only (the median pruner waits for '
              '5): more slots can mean fewer pruned trials and more epochs per trial; epochs '
              'per second separates the engine\'s speed from that: '
              + ', '.join(f"{label_of(n)} {summary[n]['epochs_per_s']:.1f}" for n in s1) + '. '
              'Slot-epochs busy: of the slots the programs\' epochs computed (every slot of '
              'a program that holds a trial is trained each epoch, an empty one too), those '
              'that held a trial.']
    if 'single' in out['runs']:
      lines.append('- one at a time: optuna_slots=1, programs of 1 slot (one per '
                   'structure, up to 4), each compiled once and refilled.')
    lines.append('- programs built: executables compiled (programs of one structure and size '
                 'share one).')
    if 'keras' in out['runs']:
      lines.append(f"- Keras: {out['keras_note']}.")
    lines.append('')
  s2 = out.get('section2')
  if s2:
    fractions = ' | '.join(f"by {int(f * 100)}% ({f * s2['longest_s']:.0f} s)"
                           for f in FRACTIONS)
    lines += [f'| best val_accuracy reached | wall s | models finished | epochs trained '
              f'| {fractions} |', '|---|---|---|---|' + '---|' * len(FRACTIONS)]
    for name in s2['searches'] + s2['extra']:
      last = out['runs'][name][-1]
      models = last.get('models', last.get('complete', 0) + last.get('pruned', 0)
                        + last.get('failed', 0))
      extra = ' (extra)' if name in s2['extra'] else ''
      cells = ' | '.join(_fmt(s2['best'][name][str(f)]) for f in FRACTIONS)
      lines.append(f"| {label_of(name)}{extra} | {summary[name]['wall_s']:.1f} | {models} "
                   f"| {last['epochs_trained']} | {cells} |")
    lines += ['', f"- the fractions are of the longest of the three searches' wall time "
              f"({', '.join(label_of(n) for n in s2['searches'])}); '-': nothing finished "
              'yet. A model\'s time is when its result.json was written (an Optuna trial: '
              'when it completed or was pruned; a grid or Hyperband member: when its '
              'program ended); its value is its best epoch\'s val_accuracy, pruned trials '
              'included. Hyperband and the grid search the 36-point grid '
              '(configs/finetune.py), Hyperband with max_epochs '
              f"{a['epochs']}, factor 3. Extra rows (dashed in the plot) are section 1's "
              'other runs, timed the same way (Keras: when each trial ended).']
    if out.get('plot'):
      lines.append(f"- plot: {out['plot']}")
    lines.append('')
  if 'total_s' in out:
    lines.append(f"total benchmark time {out['total_s']:.0f} s; 1-minute load average "
                 f"{env['load_average_at_start']} at the start, "
                 f"{env.get('load_average_at_end')} at the end ({env['host_cores']} cores).")
  return '\n'.join(lines).rstrip('\n')


def _plural(n: int, noun: str) -> str:
  return f"{n} {noun}{'' if n == 1 else 's'}"


def plot(out: dict, path: str) -> str | None:
  """Best val_accuracy so far against seconds, one step curve per run."""
  s2 = out.get('section2')
  if not s2:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5))
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  lows = []
  for i, name in enumerate(s2['searches'] + s2['extra']):
    extra = name in s2['extra']
    for r, run in enumerate(out['runs'][name]):
      if not run['curve']:
        continue
      t, v = zip(*run['curve'])
      t, v = [0.0, *t, run['wall_s']], [None, *v, v[-1]]
      ax.step(t, [np.nan if x is None else x for x in v], where='post',
              color=colors[i % len(colors)], linestyle='--' if extra else '-',
              linewidth=1.0 if extra else 1.8, alpha=0.6 if r else 1.0,
              label=label_of(name) if r == 0 else None)
      lows.append(run['curve'][-1][1])
  for f in FRACTIONS[:-1]:
    ax.axvline(f * s2['longest_s'], color='grey', linewidth=0.6, linestyle=':')
  if lows:   # the final bests and what led up to them; early, poor models fall below
    top = max(lows)
    ax.set_ylim(max(0.0, min(lows) - max(0.05, top - min(lows))), min(1.0, top + 0.01))
  a = out['args']
  ax.set(xlabel='seconds since the search started (compiles included)',
         ylabel='best val_accuracy so far',
         title=f"{a['rows']:,} rows, {a['epochs']} epochs per trial, {a['trials']} trials")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc='lower right')
  fig.tight_layout()
  Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


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
                      help="comma-separated config.optuna_slots values, one engine contender "
                      "each (0: what the devices hold); the first is section 2's "
                      '(default: %(default)s)')
  parser.add_argument('--pruner', default='median', choices=optuna_study.PRUNERS,
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
        print(f'[search_bench] repetition {rep + 1}/{args.reps}: {label_of(name)}',
              flush=True)
        folder = work / f'{name}-rep{rep}'
        result = run_once(name, args, split, keras, folder)
        result.update(rep=rep, order=order.index(name))
        out['runs'][name].append(result)
        models = result.get('models', result.get('complete', 0) + result.get('pruned', 0)
                            + result.get('failed', 0))
        print(f"[search_bench]   {result['wall_s']:.1f} s, {models} models, "
              f"{result['epochs_trained']} epochs, best val_accuracy "
              f"{_fmt(result['best_value'])}", flush=True)
        summarize(out)
        out['section2'] = section2(out)
        write_json(args.json, out)
  finally:
    if args.work_dir is None:
      shutil.rmtree(work, ignore_errors=True)
  out['total_s'] = time.perf_counter() - begin
  out['environment']['load_average_at_end'] = round(os.getloadavg()[0], 2)
  out['plot'] = plot(out, args.plot)
  out['markdown'] = render(out)
  write_json(args.json, out)
  print()
  print(out['markdown'])


if __name__ == '__main__':
  main()
