"""Runs a study program by program, writing each program's members as it ends and
checkpointing inside programs, so a rerun of the same command skips what is complete,
continues what was cut short, and ends with the numbers of an uninterrupted run."""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import tqdm

from jaxmlp.engine import checkpoint as checkpoint_lib
from jaxmlp.engine import devices
from jaxmlp.engine import latency
from jaxmlp.common import faults
from jaxmlp.common import hosts
from jaxmlp.engine import plan
from jaxmlp.engine import program as program_lib
from jaxmlp.store import records
from jaxmlp.store import folders
from jaxmlp.store import run_identity
from jaxmlp.studies import study as study_lib

CHECKPOINTS = 'checkpoints'

# JAX's persistent compilation cache reports each lookup as one of these events.
_CACHE_EVENTS = {'/jax/compilation_cache/cache_hits': 'hits',
                 '/jax/compilation_cache/cache_misses': 'misses'}
_cache_lookups = {'hits': 0, 'misses': 0}


def _count_cache_lookup(event: str, **_) -> None:
  if event in _CACHE_EVENTS:
    _cache_lookups[_CACHE_EVENTS[event]] += 1


jax.monitoring.register_event_listener(_count_cache_lookup)


def _cached_note(before: dict[str, int]) -> str:
  """' (cached)' when every compilation since `before` came from the persistent cache."""
  hits = _cache_lookups['hits'] - before['hits']
  misses = _cache_lookups['misses'] - before['misses']
  return ' (cached)' if hits and not misses else ''


class _Progress:
  """A bar per group: epochs done, elapsed, ETA, best validation accuracy so far."""

  def __init__(self, description: str, total: int, enabled: bool):
    self.description, self.total, self.enabled = description, total, enabled
    self.bar, self.best = None, 0.0

  def __call__(self, done: int, metrics: dict[str, np.ndarray]) -> None:
    with np.errstate(all='ignore'):
      best = np.nanmax(np.append(metrics['val_accuracy'], self.best))
    self.best = float(best)
    if not self.enabled:
      return
    if self.bar is None:
      self.bar = tqdm.tqdm(total=self.total, desc=self.description, unit='epoch',
                           leave=False, dynamic_ncols=True)
    self.bar.set_postfix_str(f'best val acc {self.best:.4f}', refresh=False)
    self.bar.update(done - self.bar.n)

  def close(self):
    if self.bar is not None:
      self.bar.close()


class LazyDeviceData:
  """Puts the split on the devices once, on first use (a fully resumed run needs none);
  plans from its host-side size."""

  def __init__(self, split, mesh):
    self.split, self.mesh, self.value = split, mesh, None

  def get(self) -> devices.DeviceData:
    if self.value is None:
      self.value = devices.put_data(self.split, self.mesh)
    return self.value

  @property
  def nbytes(self) -> int:
    """What one device's copy of the split takes."""
    return plan.data_bytes_of(devices.split_arrays(self.split))

  @property
  def train_rows(self) -> int:
    return len(self.split.x_train)


@dataclasses.dataclass(frozen=True)
class Settings:
  """How a study's programs run (nothing here changes what they compute)."""
  study_dir: Path
  checkpoint_every: checkpoint_lib.Policy = checkpoint_lib.Policy('auto')
  progress: bool = True
  # What the command line gives the search that runs (--storage, --worker_id,
  # --search_only: a search whose workers share a study reads them); the engine only
  # carries them.
  search_options: dict[str, Any] = dataclasses.field(default_factory=dict)
  # What watches members train, as the progress bar does (report.tensorboard.Board:
  # live TensorBoard runs); None: nothing. board.group_runs(members, dirs, programs,
  # epochs, first_epoch) gives a group's: epoch(done, metrics), finish(k, epochs,
  # test scores), close().
  board: Any = None


def _program_id(members: list[study_lib.Member], epochs: int, first_epoch: int,
                chunk: int) -> str:
  """Names a program's checkpoints: its members, length and layout."""
  text = json.dumps([[m.label, m.seed, m.structure.__repr__(), m.tracking.__repr__()]
                     for m in members] + [epochs, first_epoch, chunk, len(jax.devices())])
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _part(c: int, programs: list) -> str:
  """Which of a group's programs, where it runs as several."""
  return f' part {c + 1}' if len(programs) > 1 or c else ''


def _read_or_set_aside(directory: Path) -> dict[str, Any] | None:
  """A member's result.json, checked; a damaged one (unreadable, or of another shape)
  has its folder set aside, kept whole, and the member is trained again."""
  try:
    return folders.read_result(directory)
  except folders.Damaged as e:
    aside = folders.set_aside(directory)
    print(f'{e.path} is damaged ({e.why}); moved {directory} to {aside}, and that member '
          'trains again', flush=True)
    return None


def _finished(members: list[study_lib.Member], dirs: list[Path], with_params: bool
              ) -> list[Any]:
  """Per member: None, or (record, best-epoch params if asked) when done.

  Process 0 reads them; the others receive what it read (as JSON, then records)."""
  stored = hosts.from_primary(lambda: [_read_or_set_aside(d) for d in dirs])
  out = []
  for m, d, found in zip(members, dirs, stored):
    record = None if found is None else records.MemberRecord.from_json(found)
    best = None
    if record is not None and with_params:
      best = hosts.tree_from_primary(
          folders.load_params(d)['best'] if hosts.is_primary() else None,
          jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), m.structure.param_shapes()))
    out.append(None if record is None else (record, best))
  return out


def train_members(members: list[study_lib.Member], data: LazyDeviceData, *, config,
                  settings: Settings, folder: str, title: str,
                  initial_params: list[Any] | None = None, first_epoch: int = 0,
                  want_params: bool = False, evolve_for=None
                  ) -> list[tuple[records.MemberRecord, Any]]:
  """(record, best-epoch params or None) per member, in order: read from disk where
  finished, else trained, program by program, each program's members written when it
  ends. `want_params` returns the best-epoch weights of members read from disk too;
  `evolve_for(planned program)` changes a program's members between epochs (plan.run)."""
  index_of = {id(m): i for i, m in enumerate(members)}
  out: list[Any] = [None] * len(members)
  groups = study_lib.group(members)
  for index, ((structure, tracking, epochs), group) in enumerate(groups.items(), start=1):
    name = (f'[{title}] program {index}/{len(groups)}: {len(group)} members '
            f'({structure.optimizer}, batch {structure.batch_size}, hidden '
            f'{"x".join(map(str, structure.hidden_sizes))})')
    dirs = [folders.member_dir(settings.study_dir / folder, m) for m in group]
    saved = _finished(group, dirs, want_params)
    for m, found in zip(group, saved):
      if found:
        out[index_of[id(m)]] = found
    if all(saved):
      print(f'{name}: complete on disk, skipped', flush=True)
      continue
    group_run = _GroupRun(config, settings, folder, title, name, index, len(groups),
                          group, dirs, epochs, first_epoch, evolve_for)
    starts = None if initial_params is None else [initial_params[index_of[id(m)]]
                                                  for m in group]
    for m, found in group_run.train(structure, tracking, saved, data, starts):
      out[index_of[id(m)]] = found
  return out


def _best_val_accuracy(record: records.MemberRecord) -> float:
  values = [v for v in record.history['val_accuracy'] if v is not None]
  return max(values, default=0.0)


def _mean(values: list[float | None]) -> float:
  """The mean of the finite values (a diverged member's test accuracy is None)."""
  finite = [v for v in values if v is not None and np.isfinite(v)]
  return float(np.mean(finite)) if finite else float('nan')


class _Unobserved:
  """A group's observer when nothing watches."""

  def epoch(self, done, metrics):
    del done, metrics

  def finish(self, k, epochs_trained, test):
    del k, epochs_trained, test

  def close(self):
    pass


@dataclasses.dataclass
class _GroupRun:
  """A group's programs as the runner runs them: checkpointed, each one's members
  written as it ends, one line of figures at the end."""
  config: ml_collections.ConfigDict
  settings: Settings
  folder: str
  title: str
  name: str
  index: int
  groups: int
  group: list[study_lib.Member]
  dirs: list[Path]
  epochs: int
  first_epoch: int
  evolve_for: Any = None
  checkpoints: dict[int, checkpoint_lib.ProgramCheckpoint] = dataclasses.field(
      default_factory=dict)   # the running program's, by its number

  def train(self, structure, tracking, saved: list[Any], data: LazyDeviceData,
            initial_params: list[Any] | None):
    """Yields (member, (record, best-epoch weights)) as each program ends."""
    programs = plan.cut(structure, [bool(s) for s in saved],
                        self.config.max_members_per_program, data.nbytes, data.train_rows)
    bar = _Progress(self.name, self.epochs * len(programs), self.settings.progress)
    # The line printed at the end is over the whole group: members found written on
    # disk count as those trained now do.
    for found in saved:
      if found:
        bar.best = max(bar.best, _best_val_accuracy(found[0]))
    accuracy = [found[0].run.test_accuracy for found in saved if found]
    hparams = {f: np.array([m.hparams[f] for m in self.group]) for f in self.group[0].hparams}
    seeds = np.array([m.seed for m in self.group])
    figures = dict(compile_s=0.0, fit_s=0.0)
    part = lambda p: _part(p.number, programs)
    lookups_before = dict(_cache_lookups)
    board = (_Unobserved() if self.settings.board is None else
             self.settings.board.group_runs(self.group, self.dirs,
                                            [p.members for p in programs], self.epochs,
                                            self.first_epoch))

    def on_epoch(done, total, metrics):
      del total
      bar(done, metrics)
      board.epoch(done, metrics)

    try:
      for planned, result in plan.run(
          structure, tracking, programs, hparams, seeds, data.get(), self.epochs, data.mesh,
          initial_params=initial_params, first_epoch=self.first_epoch, on_epoch=on_epoch,
          checkpoint_for=lambda p: self._checkpoint(p, part(p)), evolve_for=self.evolve_for,
          name_of=lambda p: f'[{self.title}] program {self.index}/{self.groups}{part(p)}'):
        for k, m, (record, weights) in self._write(planned, result):
          board.finish(k, record.epochs_trained,
                       dict(test_loss=record.run.test_loss,
                            test_accuracy=record.run.test_accuracy,
                            test_f1=record.run.test_f1))
          yield m, (record, weights)
        faults.passed('program')
        figures['compile_s'] += float(result.compile_time_s[0])
        figures['fit_s'] += float(result.fit_time_s[0])
        accuracy += result.test_accuracy.tolist()
    finally:
      bar.close()
      board.close()
    ran_as = f' as {len(programs)} programs' if len(programs) > 1 else ''
    print(f'{self.name}: compiled in {figures["compile_s"]:.1f} s'
          f'{_cached_note(lookups_before)}, trained {self.epochs} '
          f'epochs in {figures["fit_s"]:.1f} s{ran_as}; test accuracy '
          f'{_mean(accuracy) * 100:.2f}% (mean of {len(accuracy)}), best val acc '
          f'{bar.best:.4f}', flush=True)

  def _checkpoint(self, planned: plan.PlannedProgram, part: str):
    members = [self.group[k] for k in planned.members]
    self.checkpoints[planned.number] = checkpoint_lib.ProgramCheckpoint(
        self.settings.study_dir / CHECKPOINTS / self.folder /
        _program_id(members, self.epochs, self.first_epoch, planned.slots),
        self.settings.checkpoint_every,
        log=lambda message: print(f'{self.name}{part}: {message}', flush=True))
    return self.checkpoints[planned.number]

  def _write(self, planned: plan.PlannedProgram, result):
    for row, k in enumerate(planned.members):
      m = self.group[k]
      record = folders.member_record(m, result, row, study_lib.reference_for(self.config, m),
                                     f'{self.title} {self.index}.{planned.number}',
                                     self.first_epoch)
      weights = program_lib.member(result, row)
      folders.write_member(self.dirs[k], record, weights)
      yield k, m, (record, weights['best'])
    self.checkpoints.pop(planned.number).delete()   # waits for its last write


def start(config: ml_collections.ConfigDict, split, output_dir: Path, **settings
          ) -> tuple[Settings, LazyDeviceData]:
  """Claims the study's folder for this run (see run_identity) and cleans what a kill
  left half-written; the data goes on the devices when a program first needs it.
  `settings`: Settings' fields, `identity`: the search's run_identity.Rules, and any
  other keyword goes to the search (Settings.search_options)."""
  data = LazyDeviceData(split, devices.member_mesh())
  study_dir = output_dir / config.name
  latency.use_study(study_dir)   # a latency objective's numbers: the study's own
  run_identity.claim(study_dir, config, settings.pop('identity', None),
                     cpu_threads=devices.cpu_threads())
  if hosts.is_primary():
    for stale in study_dir.rglob('.*.tmp'):  # a write cut short by a kill
      stale.unlink()
  fields = {f.name for f in dataclasses.fields(Settings)}
  options = {k: settings.pop(k) for k in list(settings) if k not in fields}
  return Settings(study_dir, search_options=options, **settings), data


def finish(settings: Settings) -> None:
  """Every program's members are written: no checkpoint is of use any more."""
  if hosts.is_primary():
    shutil.rmtree(settings.study_dir / CHECKPOINTS, ignore_errors=True)


def run_grid(config: ml_collections.ConfigDict, settings: Settings, data: LazyDeviceData
             ) -> list[records.MemberRecord]:
  """Every configuration x seed; returns every member's record."""
  trained = train_members(study_lib.expand(config), data, config=config, settings=settings,
                          folder='members', title=config.name)
  return [record for record, _ in trained]


def run_final(config: ml_collections.ConfigDict, settings: Settings, data: LazyDeviceData,
              *best: study_lib.Member) -> list[records.MemberRecord]:
  """Retrains the best configuration (or several: a Pareto front's, together), as the
  original's last fit did, into final/."""
  members = [study_lib.final_member(m, config, seed) for m in best
             for seed in range(config.seeds)]
  trained = train_members(members, data, config=config, settings=settings, folder='final',
                          title=f'{config.name} final model')
  return [record for record, _ in trained]
