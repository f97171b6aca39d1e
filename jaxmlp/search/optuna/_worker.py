"""One Optuna worker: asks trials, fills the member slots of compiled programs with
their executions (one slot per seed), runs epochs, reports each trial's objective to
the pruner, and tells finished and pruned trials, whose slots take the next trial at
once. Other workers may share the study: each marks its trials with a heartbeat."""

import dataclasses
import math
import time

import numpy as np
import optuna

from jaxmlp.common import numbers
from jaxmlp.core import train
from jaxmlp.common import faults
from jaxmlp.engine import interrupt
from jaxmlp.engine import program as program_lib
from jaxmlp.engine import runner
from jaxmlp.engine import slots as slots_lib
from jaxmlp.common.errors import UserError
from jaxmlp.store import records as records_lib
from jaxmlp.store import folders
from jaxmlp.report import summaries
from jaxmlp.report import tensorboard
from jaxmlp.search.optuna import _pareto_rungs
from jaxmlp.search.optuna import _several
from jaxmlp.search.optuna import _space
from jaxmlp.search.optuna import _study
from jaxmlp.studies import checks
from jaxmlp.studies import study as study_lib


@dataclasses.dataclass
class SlotUsage:
  """What the programs' epochs computed: every slot of a program (an empty slot is
  frozen, but trained and thrown away all the same), the slots that held a trial,
  the trials running at once, and the programs' sizes."""
  program_epochs: int = 0
  slot_epochs: int = 0
  busy_slot_epochs: int = 0
  max_running: int = 0
  sizes: set[int] = dataclasses.field(default_factory=set)

  def count(self, program: slots_lib.SlotProgram) -> None:
    """One epoch of `program`."""
    self.program_epochs += 1
    self.slot_epochs += program.size
    self.busy_slot_epochs += sum(owner is not None for owner in program.owner)
    self.sizes.add(program.size)


@dataclasses.dataclass
class _Running:
  trial: optuna.trial.Trial
  member: study_lib.Member           # the trial's configuration (seed 0)
  program: slots_lib.SlotProgram
  slots: list[int]                   # one per execution (seed)
  seeds: list[int]
  history: dict[str, list[np.ndarray]]  # name -> per epoch, one value per execution
  runs: list[tensorboard.Run | None]  # TensorBoard, one per execution


class OptunaWorker:
  """One worker's search: ask, fill slots, run epochs, report, prune, tell."""

  def __init__(self, config, settings: runner.Settings, data: runner.LazyDeviceData,
               study: optuna.Study, worker_id: int):
    self.config, self.settings, self.data, self.study = config, settings, data, study
    self.written: dict[str, records_lib.MemberRecord] = {}   # folder name -> record
    self.fields, self.swept = _space.fields_of(config)
    self.distributions = _space.distributions(self.fields, self.swept)
    self.worker_id = worker_id
    # Several objectives: told as a list; pruned at Pareto-ranked rungs (_pareto_rungs).
    self.several = _several.Objectives(config) if _study.several(config) else None
    self.tracked = study_lib.tracked_objective(config.objective)
    # Trials at once (in all programs together): one program's slots. Trials that
    # start together are sampled without each other's results, and a pruner judges
    # by finished trials, so the search keeps no more running than one program holds.
    total = slots_lib.sizes(_space.representative(config).structure,
                            config.optuna.slots,
                            config.seeds, config.optuna.trials, data.get(),
                            flag='optuna.slots')
    self.trials_at_once = total // config.seeds
    # A program computes all its slots every epoch, full or not: with S structures in
    # the space, programs of about 1/S of the slots keep them full (several programs
    # of one structure share its compiled executable).
    structures = min(_space.structure_count(self.fields, self.distributions),
                     self.trials_at_once)
    self.slots = numbers.ceil_div(self.trials_at_once, structures) * config.seeds   # per program
    self.live_slots_max = 2 * total + self.slots
    self.programs: list[slots_lib.SlotProgram] = []
    self.programs_built = 0   # compiled (programs of one structure and size share one)
    self.usage = SlotUsage()
    self.running: list[_Running] = []
    self.waiting: list[tuple[optuna.trial.Trial, study_lib.Member]] = []
    self.started = self.last_beat = time.monotonic()

  # -- the budget ----------------------------------------------------------------

  def may_ask(self) -> bool:
    if self.config.optuna.timeout and (time.monotonic() - self.started >
                                       self.config.optuna.timeout):
      return False
    return _study.counted(self.study) < self.config.optuna.trials

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
    built = program_lib.build_program.cache_info().misses
    program = slots_lib.SlotProgram(member.structure, member.tracking, self.data.mesh,
                                    self.slots, self.data.get(),
                                    study_lib.hparams_of(study_lib.baseline()), program=twin)
    self.programs.append(program)
    self.programs_built += program_lib.build_program.cache_info().misses - built
    return program

  def _start(self, trial: optuna.trial.Trial, member: study_lib.Member) -> bool:
    program = self._program_for(member)
    if program is None:
      return False
    slots = program.free[:self.config.seeds]
    seeds = [trial.number * self.config.seeds + s for s in range(self.config.seeds)]
    program.fill(slots, trial.number, seeds, [member.hparams] * len(slots))
    self.running.append(_Running(trial, member, program, slots, seeds,
                                 {k: [] for k in train.EpochMetrics._fields},
                                 self._open_runs(trial, member, seeds)))
    return True

  def _open_runs(self, trial: optuna.trial.Trial, member: study_lib.Member,
                 seeds: list[int]) -> list[tensorboard.Run | None]:
    board = self.settings.board
    if board is None:
      return [None] * len(seeds)
    executions = [dataclasses.replace(member, seed=seed) for seed in seeds]
    return [board.open(folders.member_dir(self.settings.study_dir / 'trials', m),
                       board.member_hparams(m, trial=trial.number), 1) for m in executions]

  def _ask(self) -> tuple[optuna.trial.Trial, study_lib.Member] | None:
    trial = self.study.ask(self.distributions)
    # Whose trial it is, from the start: a worker killed while the trial waited for
    # a slot leaves it running, and the next worker must know it is dead.
    try:
      trial.set_user_attr('worker', _study.WORKER)
      trial.set_user_attr('heartbeat', time.time())
    except optuna.exceptions.UpdateFinishedTrialError:
      return None   # taken for abandoned by another worker while the sampler chose
    if _study.duplicate_retry(self.study, trial) or not _study.within_budget(
        self.study, trial, self.config.optuna.trials):
      return None
    self.last_beat = time.monotonic()
    member = _space.configuration_of(self.fields, trial.params,
                                          f'trial-{trial.number:04d}')
    try:
      checks.check_members([member], len(self.data.split.x_train))
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
    self.usage.max_running = max(self.usage.max_running, len(self.running))
    for program in [p for p in self.programs if p.busy]:
      self.usage.count(program)
      metrics, stopped = program.run_epoch()
      for run in [r for r in self.running if r.program is program]:
        for name, values in metrics.items():
          run.history[name].append(values[run.slots])
        epoch = len(run.history['val_loss'])
        if self.settings.board is not None:
          self.settings.board.epoch(run.runs, epoch, {
              name: values[run.slots] for name, values in metrics.items()})
        try:
          if self.several is None:
            value = _nanmean(run.history[self.config.objective][-1])
            run.trial.report(float(value), step=epoch - 1)
          done = epoch >= run.member.epochs or all(stopped[run.slots])
          if done:
            self._finish(run, optuna.trial.TrialState.COMPLETE)
          elif self._pruned(run, epoch):
            self._finish(run, optuna.trial.TrialState.PRUNED)
        except optuna.exceptions.UpdateFinishedTrialError:
          # Another worker took this one's silence for death and failed the trial
          # (asked again): its slots go to the next trial.
          self._close_runs(run)
          run.program.release(run.slots)
          self.running.remove(run)
      self.heartbeat()

  def _pruned(self, run: _Running, epoch: int) -> bool:
    """Optuna's pruner's verdict; with several objectives, at a rung, the Pareto
    rank's (_pareto_rungs)."""
    if self.several is None:
      return run.trial.should_prune()
    rung = _pareto_rungs.rung_of(epoch)
    if self.config.optuna.pruner != 'successive_halving' or rung is None:
      return False
    per_seed = [self._record(run, k) for k in range(len(run.slots))]
    values = self.several.values(per_seed)
    violation = self.several.violation(self.several.constraint_values(per_seed))
    return not _pareto_rungs.decide(self.study, run.trial, rung,
                                    self.several.losses(values), violation)

  def heartbeat(self, every_s: float = _study.STALE_S / 10) -> None:
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
    if self.several is None:
      value, values = summaries.score(per_seed, self.config.objective)[0], None
    else:
      values = self.several.values(per_seed)
      value = math.nan if not all(map(math.isfinite, values)) else 0.0
      if self.several.constraints:   # read by the samplers and study.best_trials
        _study.set_constraints(run.trial, self.several.constraints,
                               self.several.constraint_values(per_seed))
    if state == optuna.trial.TrialState.COMPLETE and not math.isfinite(value):
      state = optuna.trial.TrialState.FAIL   # diverged: no score to rank
    if state == optuna.trial.TrialState.COMPLETE:
      self.study.tell(run.trial, value if values is None else values)
    else:
      self.study.tell(run.trial, state=state)
    status = {optuna.trial.TrialState.COMPLETE: tensorboard.SUCCESS,
              optuna.trial.TrialState.FAIL: tensorboard.FAILURE}.get(state, tensorboard.UNKNOWN)
    for record, board_run in zip(per_seed, run.runs):
      told = dataclasses.replace(
          record.trial, state=state.name,
          value=value if math.isfinite(value) and values is None else None,
          values=None if values is None else numbers.finite(values))
      record = dataclasses.replace(record, trial=told)
      folder = folders.member_dir(self.settings.study_dir / 'trials', record)
      folders.write_record(folder, record)
      self.written[folder.name] = record
      if self.settings.board is not None:
        self.settings.board.finish(board_run, record.epochs_trained, {}, status,
                                   record=record)
    run.program.release(run.slots)
    self.running.remove(run)
    faults.passed('trial')

  def _record(self, run: _Running, k: int) -> records_lib.MemberRecord:
    """Execution k's record, before the trial is told."""
    trained = int(run.program.epoch_of[run.slots[k]])
    history = {name: numbers.finite([float(e[k]) for e in values[:trained]])
               for name, values in run.history.items()}
    configuration = _space.configuration_of(self.fields, run.trial.params).label
    return records_lib.MemberRecord(
        label=run.member.label, arm='', seed=run.seeds[k], swept=tuple(run.member.swept),
        config={f: run.member.values[f] for f in records_lib.RECORD_FIELDS},
        history=history, epochs_trained=trained,
        best_epoch=records_lib.best_epoch(history, self.tracked),
        diverged=records_lib.diverged(history),
        trial=records_lib.OptunaTrial(trial=run.trial.number, params=run.trial.params,
                                      configuration=configuration,
                                      worker=_study.WORKER))

  # -- stopping --------------------------------------------------------------------

  def abandon(self) -> None:
    """On a stop request: this worker's trials are failed and asked again later."""
    for trial in [r.trial for r in self.running] + [t for t, _ in self.waiting]:
      _study.interrupted(self.study, trial)
    self.close_runs()
    self.running, self.waiting = [], []

  def _close_runs(self, run: _Running) -> None:
    for board_run in run.runs:
      if board_run is not None:
        board_run.close()

  def close_runs(self) -> None:
    """The TensorBoard runs of the trials still running (an error or a stop)."""
    for run in self.running:
      self._close_runs(run)

  def recover_stale(self) -> int:
    mine = {r.trial.number for r in self.running} | {t.number for t, _ in self.waiting}
    return _study.recover_stale(self.study, mine)

  def run(self) -> None:
    self.recover_stale()
    try:
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
    finally:
      self.close_runs()


def _nanmean(values: np.ndarray) -> float:
  values = np.asarray(values, np.float64)
  finite = values[np.isfinite(values)]
  return float(finite.mean()) if finite.size else float('nan')
