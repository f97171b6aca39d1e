"""--search=optuna: Optuna's samplers and pruners fill the member slots of compiled
programs through its ask-and-tell interface.

Trials that share a structure share one program (slots.py). Between epochs every
running trial reports its objective (the mean over its executions, one slot per seed)
and the pruner decides; a pruned or finished trial's slots take the next asked trial
at once, without recompiling and without disturbing the other slots. The study lives
in Optuna's storage (an SQLite file in the study folder by default; --storage for
PostgreSQL, MySQL or a journal file), so several workers can share it and a killed run
continues it: finished trials are kept, trials left running by a dead worker are
marked failed and their parameters asked again.
"""

import dataclasses
import itertools
import math
import time
from typing import Any

import jax
import ml_collections
import numpy as np
import optuna

from jaxmlp.engine import program as engine
from jaxmlp.engine import interrupt
from jaxmlp.search import optuna_study
from jaxmlp.report import results
from jaxmlp.engine import runner
from jaxmlp.search import registry as searches
from jaxmlp.engine import slots as slots_lib
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib
from jaxmlp.core import train
from jaxmlp.errors import UserError


def _extremes(value) -> list:
  """The values a distribution can take at its edges (every choice of a categorical)."""
  if space.is_distribution(value):
    if value[space.KEY] == 'categorical':
      return list(value['choices'])
    return [value['low'], value['high']]
  return [value]


def representative(config: ml_collections.ConfigDict) -> study_lib.Member:
  """A point of the space: every distribution at its first edge, every axis at its
  first value."""
  fields, swept = fields_of(config)
  plain = {f: (_extremes(v)[0] if space.is_distribution(v) else
               study_lib.axis_values(f, v)[0]) for f, v in fields.items()}
  if isinstance(plain['hidden_sizes'], tuple):
    plain['hidden_sizes'] = tuple(_extremes(h)[0] for h in plain['hidden_sizes'])
  return study_lib.Member(config.name, '', 0, plain, ())


def validate(config: ml_collections.ConfigDict, rows: int) -> None:
  """Refuses what this search cannot run, before anything trains: the settings, and
  every field at the edges of its distribution (e.g. a batch size above the rows)."""
  if config.optuna_sampler not in optuna_study.SAMPLERS:
    raise UserError(f'--config.optuna_sampler={config.optuna_sampler} is impossible: choose '
                    f"one of {', '.join(optuna_study.SAMPLERS)}")
  if config.optuna_pruner not in optuna_study.PRUNERS:
    raise UserError(f'--config.optuna_pruner={config.optuna_pruner} is impossible: choose '
                    f"one of {', '.join(optuna_study.PRUNERS)}")
  if config.arms and not config.arm:
    raise UserError('--search=optuna searches one arm: pass --config.arm=NAME')
  fields, swept = fields_of(config)
  if not space.distributions(fields, swept):
    raise UserError('--search=optuna needs a search space: give a field a distribution '
                    "(e.g. --config.learning_rate='loguniform(1e-4, 1e-1)') or a tuple")
  plain = representative(config).values
  for field, value in fields.items():
    if field not in study_lib.MEMBER_FIELDS:
      continue
    candidates = (study_lib.axis_values(field, value) if field in swept else
                  _extremes(value) if space.is_distribution(value) else [value])
    for candidate in candidates:
      if field == 'hidden_sizes' and isinstance(candidate, tuple):
        candidate = tuple(_extremes(h)[0] for h in candidate)
      values = dict(plain, **{field: candidate})
      study_lib.validate([study_lib.Member(field, '', 0, values, ())], rows)


def fields_of(config: ml_collections.ConfigDict) -> tuple[dict[str, Any], tuple[str, ...]]:
  """The one arm's fields (distributions and sweep axes unresolved), and its axes."""
  fields = config.to_dict()
  arms = fields.pop('arms') or {}
  fields.update(arms.get(config.arm, {}))
  swept = tuple(f for f, v in fields.items() if study_lib.is_sweep(f, v))
  return fields, swept


def member_of(fields: dict[str, Any], params: dict[str, Any],
              label: str | None = None) -> study_lib.Member:
  """The configuration a trial's parameters pick (seed 0), labelled by its values
  (`label` instead, where given)."""
  values = space.values_of(fields, params)
  swept = tuple(sorted({name.split('[')[0] for name in params}))
  label = label or ','.join(f'{f}={study_lib.format_value(values[f])}' for f in swept)
  return study_lib.Member(label, '', 0, values, swept)


def structure_count(fields: dict[str, Any],
                    distributions: dict[str, optuna.distributions.BaseDistribution],
                    many: int = 1 << 12) -> int:
  """How many compiled structures the space's trials can need (`many` where the space
  has too many to count, e.g. a wide int range of widths or batch sizes). Only the
  parameters that change the structure on their own are combined; a float changes it
  only by being zero or not, so its edges tell."""
  def key(params):
    member = member_of(fields, params, 'count')
    return member.structure, member.tracking

  def values(dist):
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
      return list(dist.choices)
    if isinstance(dist, optuna.distributions.IntDistribution):
      span = range(dist.low, dist.high + 1, dist.step)
      return list(span) if len(span) <= 64 else None
    return [dist.low, dist.high]

  first = {n: (values(d) or [d.low])[0] for n, d in distributions.items()}
  axes = []
  for name, dist in distributions.items():
    candidates = values(dist)
    probe = candidates if candidates is not None else [dist.low, dist.high]
    if len({key(dict(first, **{name: v})) for v in probe}) == 1:
      continue   # a traced hyperparameter, or the epochs: one program serves them all
    if candidates is None:
      return many
    axes.append([(name, v) for v in candidates])
  if math.prod(len(a) for a in axes) > many:
    return many
  return len({key(dict(first, **dict(combo))) for combo in itertools.product(*axes)})


@dataclasses.dataclass
class _Running:
  trial: optuna.trial.Trial
  member: study_lib.Member           # the trial's configuration (seed 0)
  program: slots_lib.SlotProgram
  slots: list[int]                   # one per execution (seed)
  seeds: list[int]
  history: dict[str, list[np.ndarray]]  # name -> per epoch, one value per execution


class Search:
  """One worker's search: ask, fill slots, run epochs, report, prune, tell."""

  def __init__(self, config, settings: runner.Settings, data: runner.DeviceData,
               study: optuna.Study, worker_id: int):
    self.config, self.settings, self.data, self.study = config, settings, data, study
    self.fields, self.swept = fields_of(config)
    self.distributions = space.distributions(self.fields, self.swept)
    self.worker_id = worker_id
    # Trials at once (in all programs together): one program's slots. Trials that
    # start together are sampled without each other's results, and a pruner judges
    # by finished trials, so the search keeps no more running than one program holds.
    total = slots_lib.sizes(representative(config).structure, config.optuna_slots,
                            config.seeds, config.optuna_trials, data.get())
    self.trials_at_once = total // config.seeds
    # A program computes all its slots every epoch, full or not: with S structures in
    # the space, programs of about 1/S of the slots keep them full (several programs
    # of one structure share its compiled executable).
    structures = min(structure_count(self.fields, self.distributions), self.trials_at_once)
    self.slots = -(-self.trials_at_once // structures) * config.seeds   # per program
    self.live_slots_max = 2 * total + self.slots
    self.programs: list[slots_lib.SlotProgram] = []
    self.programs_built = 0   # compiled (programs of one structure and size share one)
    self.running: list[_Running] = []
    self.waiting: list[tuple[optuna.trial.Trial, study_lib.Member]] = []
    self.started = self.last_beat = time.monotonic()
    self.maximize = not config.objective.endswith('loss')

  # -- the budget ----------------------------------------------------------------

  def may_ask(self) -> bool:
    if self.config.optuna_timeout and (time.monotonic() - self.started >
                                       self.config.optuna_timeout):
      return False
    return optuna_study.counted(self.study) < self.config.optuna_trials

  # -- filling slots ---------------------------------------------------------------

  def _program_for(self, member: study_lib.Member) -> slots_lib.SlotProgram | None:
    """A program of the member's structure with room for its seeds: a running one, else
    a new one (idle programs make room), else None (the trial waits for a slot)."""
    key = (member.structure, member.tracking)
    for program in self.programs:
      if (program.structure, program.tracking) == key and len(
          program.free) >= self.config.seeds:
        return program
    while sum(p.size for p in self.programs) + self.slots > self.live_slots_max:
      idle = [p for p in self.programs if not p.busy]
      if not idle:
        return None
      self.programs.remove(idle[0])
    # A live program of the structure lends its compiled functions (the engine's
    # cache may have let them go, if the space has many structures).
    twin = next((p.program for p in self.programs
                 if (p.structure, p.tracking) == key), None)
    built = engine.build_program.cache_info().misses
    program = slots_lib.SlotProgram(member.structure, member.tracking, self.data.mesh,
                                    self.slots, self.data.get(),
                                    study_lib.hparams_of(study_lib.baseline()), program=twin)
    self.programs.append(program)
    self.programs_built += engine.build_program.cache_info().misses - built
    return program

  def _start(self, trial: optuna.trial.Trial, member: study_lib.Member) -> bool:
    program = self._program_for(member)
    if program is None:
      return False
    slots = program.free[:self.config.seeds]
    seeds = [trial.number * self.config.seeds + s for s in range(self.config.seeds)]
    program.fill(slots, trial.number, seeds, [member.hparams] * len(slots))
    self.running.append(_Running(trial, member, program, slots, seeds,
                                 {k: [] for k in train.EpochMetrics._fields}))
    return True

  def _ask(self) -> tuple[optuna.trial.Trial, study_lib.Member] | None:
    trial = self.study.ask(self.distributions)
    # Whose trial it is, from the start: a worker killed while the trial waited for
    # a slot leaves it running, and the next worker must know it is dead.
    try:
      trial.set_user_attr('worker', optuna_study.WORKER)
      trial.set_user_attr('heartbeat', time.time())
    except optuna.exceptions.UpdateFinishedTrialError:
      return None   # taken for abandoned by another worker while the sampler chose
    if optuna_study.duplicate_retry(self.study, trial) or not optuna_study.within_budget(
        self.study, trial, self.config.optuna_trials):
      return None
    self.last_beat = time.monotonic()
    member = member_of(self.fields, trial.params, f'trial-{trial.number:04d}')
    try:
      study_lib.validate([member], len(self.data.split.x_train))
    except UserError as e:   # a sampled value the engine cannot train (batch size...)
      trial.set_user_attr('refused', str(e))
      self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
      return None
    return trial, member

  def refill(self) -> None:
    """Every free slot takes a trial: waiting ones first, then newly asked ones."""
    still = []
    for trial, member in self.waiting:
      if not self._start(trial, member):
        still.append((trial, member))
    self.waiting = still
    while (not self.waiting and len(self.running) < self.trials_at_once and
           self.may_ask()):
      asked = self._ask()
      if asked is None:
        continue
      if not self._start(*asked):
        self.waiting.append(asked)   # its program is full: it starts when one ends

  # -- epochs --------------------------------------------------------------------

  def step(self) -> None:
    """One epoch of every program that has a running trial; reports and decisions."""
    for program in [p for p in self.programs if p.busy]:
      metrics, stopped = program.run_epoch()
      for run in [r for r in self.running if r.program is program]:
        for name, values in metrics.items():
          run.history[name].append(values[run.slots])
        epoch = len(run.history['val_loss'])
        value = _nanmean(run.history[self.config.objective][-1])
        try:
          run.trial.report(float(value), step=epoch - 1)
          done = epoch >= run.member.epochs or all(stopped[run.slots])
          if done:
            self._finish(run, optuna.trial.TrialState.COMPLETE)
          elif run.trial.should_prune():
            self._finish(run, optuna.trial.TrialState.PRUNED)
        except optuna.exceptions.UpdateFinishedTrialError:
          # Another worker took this one's silence for death and failed the trial
          # (asked again): its slots go to the next trial.
          run.program.release(run.slots)
          self.running.remove(run)
      self.heartbeat()

  def heartbeat(self, every_s: float = optuna_study.STALE_S / 10) -> None:
    """Tells other workers that this one's trials (running or waiting for a slot)
    are alive, at most every `every_s`."""
    if time.monotonic() - self.last_beat < every_s:
      return
    self.last_beat = time.monotonic()
    for trial in [r.trial for r in self.running] + [t for t, _ in self.waiting]:
      try:
        trial.set_user_attr('heartbeat', time.time())
      except optuna.exceptions.UpdateFinishedTrialError:
        pass   # failed by another worker: found out at its next report

  def _finish(self, run: _Running, state) -> None:
    per_seed = [self._record(run, k) for k in range(len(run.slots))]
    value = results.objective(per_seed, self.config.objective)[0]
    if state == optuna.trial.TrialState.COMPLETE and not math.isfinite(value):
      state = optuna.trial.TrialState.FAIL   # diverged: no score to rank
    if state == optuna.trial.TrialState.COMPLETE:
      self.study.tell(run.trial, value)
    else:
      self.study.tell(run.trial, state=state)
    for record in per_seed:
      record['state'] = state.name
      record['value'] = value if math.isfinite(value) else None
      results.write_json(results.member_dir_for(self.settings.study_dir / 'trials', record)
                         / results.RESULT_FILE, record)
    run.program.release(run.slots)
    self.running.remove(run)

  def _record(self, run: _Running, k: int) -> dict[str, Any]:
    trained = int(run.program.epoch_of[run.slots[k]])
    history = {name: results.finite([float(e[k]) for e in values[:trained]])
               for name, values in run.history.items()}
    pick = np.nanargmin if self.config.objective.endswith('loss') else np.nanargmax
    scores = np.array([np.nan if v is None else v for v in history[self.config.objective]])
    best = int(pick(scores)) + 1 if np.isfinite(scores).any() else None
    losses = [v for name in ('train_loss', 'val_loss') for v in history[name]]
    return dict(label=run.member.label, arm='', seed=run.seeds[k], swept=list(run.member.swept),
                trial=run.trial.number, params=run.trial.params,
                configuration=member_of(self.fields, run.trial.params).label,
                config={f: run.member.values[f] for f in results.RECORD_FIELDS},
                history=history, epochs_trained=trained, best_epoch=best,
                worker=optuna_study.WORKER, diverged=any(v is None for v in losses))

  # -- stopping --------------------------------------------------------------------

  def abandon(self) -> None:
    """On a stop request: this worker's trials are failed and asked again later."""
    for trial in [r.trial for r in self.running] + [t for t, _ in self.waiting]:
      optuna_study.interrupted(self.study, trial)
    self.running, self.waiting = [], []

  def recover_stale(self) -> int:
    mine = {r.trial.number for r in self.running} | {t.number for t, _ in self.waiting}
    return optuna_study.recover_stale(self.study, mine)

  def run(self) -> None:
    self.recover_stale()
    with interrupt.deferred():
      while True:
        self.refill()
        if not self.running:
          break
        self.step()
        if interrupt.requested() is not None:
          self.abandon()
          raise interrupt.Stopped(interrupt.requested(),
                                  'its running trials are marked failed and asked again')
        self.recover_stale()


def _nanmean(values: np.ndarray) -> float:
  values = np.asarray(values, np.float64)
  finite = values[np.isfinite(values)]
  return float(finite.mean()) if finite.size else float('nan')


@dataclasses.dataclass
class OptunaOutcome:
  """What the report shows of an Optuna search."""
  study: optuna.Study
  records: list[dict[str, Any]]       # every finished trial's executions
  programs_built: int                 # by this worker
  seconds: float                      # this worker's search, wall time
  best: optuna.trial.FrozenTrial
  storage: str
  kind: str = 'optuna'


def finish_study(search: Search, poll_s: float = 5.0) -> None:
  """Until no trial of the study runs, the other workers' included; trials that a
  dead worker left (failed, asked again) are run here while the budget allows."""
  study = search.study
  while True:
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    if waiting and search.may_ask():
      search.run()
      continue
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
      return
    interrupt.raise_if_requested()
    time.sleep(poll_s)
    optuna_study.recover_stale(study)


def run(config: ml_collections.ConfigDict, settings: runner.Settings,
        data: runner.DeviceData) -> searches.Outcome | None:
  if jax.process_count() > 1:
    raise UserError('--search=optuna runs one process per worker, not under '
                    'jax.distributed: start workers with launch/optuna_workers.sh')
  storage, worker_id, search_only = (settings.storage, settings.worker_id,
                                     settings.search_only)
  study = optuna_study.open_study(config, settings.study_dir, storage, worker_id)
  search = Search(config, settings, data, study, worker_id)
  try:
    search.run()
  except KeyboardInterrupt:
    search.abandon()
    raise
  if search_only:
    return None
  finish_study(search)
  finished = [t for t in study.get_trials(deepcopy=False)
              if t.state == optuna.trial.TrialState.COMPLETE]
  if not finished:
    raise UserError(f'the Optuna study {config.name!r} has no completed trial: raise '
                    '--config.optuna_trials or the time budget, or use --config.optuna_pruner=none')
  best = study.best_trial
  member = member_of(search.fields, best.params)
  records = [results.read_member(d) for d in sorted((settings.study_dir / 'trials').iterdir())
             if (d / results.RESULT_FILE).is_file()]
  return searches.Outcome(member, search=OptunaOutcome(
      study, records, search.programs_built, time.monotonic() - search.started, best,
      str(storage or (settings.study_dir / optuna_study.STORAGE_FILE).absolute())))
