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
from jaxmlp.engine import program as engine
from jaxmlp.engine import hosts
from jaxmlp.engine import interrupt
from jaxmlp.report import results
from jaxmlp.studies import run_identity
from jaxmlp.studies import study as study_lib

CHECKPOINTS = 'checkpoints'


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


class DeviceData:
  """Puts the split on the devices once, on first use (a fully resumed run needs none)."""

  def __init__(self, split, mesh):
    self.split, self.mesh, self.value = split, mesh, None

  def get(self) -> devices.DeviceData:
    if self.value is None:
      self.value = devices.put_data(self.split, self.mesh)
    return self.value


@dataclasses.dataclass(frozen=True)
class Settings:
  """How a study's programs run (nothing here changes what they compute)."""
  study_dir: Path
  checkpoint_every: checkpoint_lib.Policy = checkpoint_lib.Policy('auto')
  progress: bool = True
  storage: str | None = None     # --search=optuna: the study's storage (default: a file)
  worker_id: int = 0             # which of several workers on one Optuna study
  search_only: bool = False      # an extra worker: search, no final model, no report


def _program_id(members: list[study_lib.Member], epochs: int, first_epoch: int,
                chunk: int) -> str:
  """Names a program's checkpoints: its members, length and layout."""
  text = json.dumps([[m.label, m.seed, m.structure.__repr__(), m.tracking.__repr__()]
                     for m in members] + [epochs, first_epoch, chunk, len(jax.devices())])
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _programs(structure, saved: list[Any], max_members: int, data
              ) -> tuple[list[tuple[int, list[int]]], int]:
  """The programs still to run, as (program number, member indices), and the members
  a program takes.

  The group is cut into programs as if none had run, so that a rerun after a kill
  runs the same programs (their checkpoints and numbers are the same). Members of a
  program of which some are finished (work added to a run: more seeds or values)
  run together, in extra programs numbered after.
  """
  plan = engine.chunks(structure, len(saved), max_members, data)
  chunk = plan[0].stop - plan[0].start
  programs, leftover = [], []
  for c, part in enumerate(plan):
    todo = [k for k in range(part.start, part.stop) if not saved[k]]
    if len(todo) == part.stop - part.start:
      programs.append((c, todo))
    else:
      leftover += todo
  programs += [(len(plan) + j, leftover[i:i + chunk])
               for j, i in enumerate(range(0, len(leftover), chunk))]
  return programs, chunk


def _part(c: int, programs: list) -> str:
  """Which of a group's programs, where it runs as several."""
  return f' part {c + 1}' if len(programs) > 1 or c else ''


def _finished(members: list[study_lib.Member], dirs: list[Path], with_params: bool
              ) -> list[Any]:
  """Per member: None, or (record, best-epoch params if asked) when done.

  Process 0 reads them; the others receive what it read."""
  records = hosts.from_primary(lambda: [results.read_member(d) for d in dirs])
  out = []
  for m, d, record in zip(members, dirs, records):
    best = None
    if record is not None and with_params:
      best = hosts.tree_from_primary(
          results.load_params(d)['best'] if hosts.is_primary() else None,
          jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), m.structure.param_shapes()))
    out.append(None if record is None else (record, best))
  return out


def train_members(members: list[study_lib.Member], data: DeviceData, *, config,
                  settings: Settings, folder: str, title: str,
                  initial_params: list[Any] | None = None, first_epoch: int = 0,
                  want_params: bool = False) -> list[tuple[dict[str, Any], Any]]:
  """(record, best-epoch params or None) per member, in order: read from disk where
  finished, else trained, program by program, each program's members written when it
  ends. `want_params` returns the best-epoch weights of members read from disk too."""
  index_of = {id(m): i for i, m in enumerate(members)}
  out: list[Any] = [None] * len(members)
  groups = study_lib.group(members)
  for index, ((structure, tracking, epochs), group) in enumerate(groups.items(), start=1):
    name = (f'[{title}] program {index}/{len(groups)}: {len(group)} members '
            f'({structure.optimizer}, batch {structure.batch_size}, hidden '
            f'{"x".join(map(str, structure.hidden_sizes))})')
    dirs = [results.member_dir(settings.study_dir / folder, m) for m in group]
    saved = _finished(group, dirs, want_params)
    if all(saved):
      print(f'{name}: complete on disk, skipped', flush=True)
      for m, found in zip(group, saved):
        out[index_of[id(m)]] = found
      continue
    for m, found in zip(group, saved):
      if found:
        out[index_of[id(m)]] = found
    parts, chunk = _programs(structure, saved, config.max_members_per_program, data.get())
    bar = _Progress(name, epochs * len(parts), settings.progress)
    compile_s = fit_s = 0.0
    accuracy = []
    try:
      for position, (c, part) in enumerate(parts):
        these, these_dirs = [group[k] for k in part], [dirs[k] for k in part]
        interrupt.raise_if_requested()
        ckpt = checkpoint_lib.ProgramCheckpoint(
            settings.study_dir / CHECKPOINTS / folder /
            _program_id(these, epochs, first_epoch, chunk),
            settings.checkpoint_every,
            log=lambda message, c=c: print(f'{name}{_part(c, parts)}: {message}', flush=True))
        starts = None
        if initial_params is not None:
          starts = jax.tree.map(lambda *xs: np.stack(xs),
                                *(initial_params[index_of[id(m)]] for m in these))
        hparams = {f: np.array([m.hparams[f] for m in these]) for f in these[0].hparams}
        try:
          result = engine.run_program(
              structure, tracking, hparams, np.array([m.seed for m in these]), data.get(),
              epochs, data.mesh, chunk, initial_params=starts, first_epoch=first_epoch,
              checkpoint=ckpt,
              on_epoch=lambda epoch, metrics, done=position * epochs: bar(done + epoch + 1,
                                                                          metrics))
        except interrupt.Stopped as e:
          e.where = f'[{title}] program {index}/{len(groups)}{_part(c, parts)} {e.where}'
          raise
        for k, (m, directory) in enumerate(zip(these, these_dirs)):
          record = results.member_record(m, result, k, study_lib.reference_for(config, m),
                                         f'{title} {index}.{c}', first_epoch)
          weights = engine.member(result, k)
          results.write_member(directory, record, weights)
          out[index_of[id(m)]] = (record, weights['best'])
        ckpt.delete()
        compile_s += float(result.compile_time_s[0])
        fit_s += float(result.fit_time_s[0])
        accuracy += result.test_accuracy.tolist()
    finally:
      bar.close()
    ran_as = f' as {len(parts)} programs' if len(parts) > 1 else ''
    print(f'{name}: compiled in {compile_s:.1f} s, trained {epochs} epochs in {fit_s:.1f} s'
          f'{ran_as}; test accuracy {np.mean(accuracy) * 100:.2f}% (mean), '
          f'best val acc {bar.best:.4f}', flush=True)
  return out


def start(config: ml_collections.ConfigDict, split, output_dir: Path, **settings
          ) -> tuple[Settings, DeviceData]:
  """Claims the study's folder for this run (see run_identity) and cleans what a kill
  left half-written."""
  study_dir = output_dir / config.name
  run_identity.claim(study_dir, config)
  if hosts.is_primary():
    for stale in study_dir.rglob('.*.tmp'):  # a write cut short by a kill
      stale.unlink()
  return Settings(study_dir, **settings), DeviceData(split, devices.member_mesh())


def finish(settings: Settings) -> None:
  """Every program's members are written: no checkpoint is of use any more."""
  if hosts.is_primary():
    shutil.rmtree(settings.study_dir / CHECKPOINTS, ignore_errors=True)


def run_grid(config: ml_collections.ConfigDict, settings: Settings, data: DeviceData
             ) -> list[dict[str, Any]]:
  """Every configuration x seed; returns every member's record."""
  trained = train_members(study_lib.expand(config), data, config=config, settings=settings,
                          folder='members', title=config.name)
  return [record for record, _ in trained]


def run_final(config: ml_collections.ConfigDict, settings: Settings, data: DeviceData,
              best: study_lib.Member) -> list[dict[str, Any]]:
  """Retrains the best configuration, as the original's last fit did, into final/."""
  values = dict(best.values, batch_size=config.final_batch_size,
                shuffle=config.final_shuffle, epochs=config.final_epochs)
  members = [dataclasses.replace(best, values=values, seed=seed)
             for seed in range(config.seeds)]
  trained = train_members(members, data, config=config, settings=settings, folder='final',
                          title=f'{config.name} final model')
  return [record for record, _ in trained]
