"""Runs a study group by group, writing each finished group at once, so a rerun of
the same command skips what is complete and an interruption loses nothing finished."""

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import tqdm

from jaxmlp import engine
from jaxmlp import hyperband
from jaxmlp import interrupt
from jaxmlp import results
from jaxmlp import study as study_lib
from jaxmlp.errors import UserError

RUN_FILE = 'run.json'


def _what_trains(run: dict[str, Any]) -> dict[str, Any]:
  config = {k: v for k, v in (run.get('config') or {}).items()
            if k not in study_lib.PRESENTATION_FIELDS}
  return dict(config=config, seeds=run.get('seeds'), data=run.get('data'))


def _claim(study_dir: Path, config: ml_collections.ConfigDict, seeds: int,
           data: dict[str, Any]) -> None:
  """Refuses a folder that holds results of another run; what only changes the report
  (such as the original's reported numbers) may differ."""
  run = dict(config=json.loads(config.to_json()), seeds=seeds, data=data)
  path = study_dir / RUN_FILE
  if not path.is_file():
    results.write_json(path, dict(
        **run, devices=[str(d) for d in jax.devices()],
        versions={m: __import__(m).__version__ for m in ('jax', 'flax', 'optax')},
        started=time.strftime('%Y-%m-%d %H:%M:%S')))
    return
  mine, theirs = _what_trains(run), _what_trains(json.loads(path.read_text()))
  if mine != theirs:
    differ = sorted(k for k in set(mine['config']) | set(theirs['config'])
                    if mine['config'].get(k) != theirs['config'].get(k))
    differ += [k for k in ('seeds', 'data') if mine[k] != theirs[k]]
    raise UserError(f'{study_dir} holds results of a different run ({", ".join(differ)} '
                    'differ): pass another --output_dir, or delete that folder to start over')


class _Progress:
  """A bar per program: epochs done, elapsed, ETA, best validation accuracy so far."""

  def __init__(self, description: str, enabled: bool):
    self.description, self.enabled, self.bar, self.best = description, enabled, None, 0.0

  def __call__(self, done: int, total: int, metrics: dict[str, np.ndarray]) -> None:
    self.best = max(self.best, float(np.nanmax(metrics['val_accuracy'])))
    if not self.enabled:
      return
    if self.bar is None:
      self.bar = tqdm.tqdm(total=total, desc=self.description, unit='epoch',
                           leave=False, dynamic_ncols=True)
    self.bar.set_postfix_str(f'best val acc {self.best:.4f}', refresh=False)
    self.bar.update(done - self.bar.n)

  def close(self):
    if self.bar is not None:
      self.bar.close()


class _DeviceData:
  """Puts the split on the devices once, on first use (a fully resumed run needs none)."""

  def __init__(self, split, mesh):
    self.split, self.mesh, self.value = split, mesh, None

  def get(self) -> engine.DeviceData:
    if self.value is None:
      self.value = engine.put_data(self.split, self.mesh)
    return self.value


def train_members(members: list[study_lib.Member], data: _DeviceData, *, config,
                  study_dir: Path, folder: str, epochs: int, progress: bool, title: str,
                  initial_params: list[Any] | None = None, first_epoch: int = 0,
                  ) -> list[tuple[dict[str, Any], Any]]:
  """(record, best-epoch params) per member, in order: read from disk where finished,
  else trained one compiled program per group and written at once."""
  index_of = {id(m): i for i, m in enumerate(members)}
  out: list[Any] = [None] * len(members)
  groups = study_lib.group(members)
  for index, ((structure, tracking), group) in enumerate(groups.items(), start=1):
    name = (f'[{title}] program {index}/{len(groups)}: {len(group)} members '
            f'({structure.optimizer}, batch {structure.batch_size}, hidden '
            f'{"x".join(map(str, structure.hidden_sizes))})')
    dirs = [results.member_dir(study_dir / folder, m) for m in group]
    saved = [results.read_member(d) for d in dirs]
    if all(saved):
      print(f'{name}: complete on disk, skipped', flush=True)
      for m, d, record in zip(group, dirs, saved):
        out[index_of[id(m)]] = (record, results.load_member(d)[3].get('best'))
      continue
    bar = _Progress(name, progress)

    def on_epoch(done, total, metrics):
      interrupt.raise_if_requested()
      bar(done, total, metrics)

    hparams = {f: np.array([m.hparams[f] for m in group]) for f in study_lib.HPARAM_FIELDS}
    starts = None
    if initial_params is not None:
      starts = jax.tree.map(lambda *xs: np.stack(xs),
                            *(initial_params[index_of[id(m)]] for m in group))
    try:
      result = engine.run_group(structure, hparams, np.array([m.seed for m in group]),
                                data.get(), epochs, data.mesh,
                                max_members=config.max_members_per_program,
                                tracking=tracking, initial_params=starts,
                                first_epoch=first_epoch, on_epoch=on_epoch)
    finally:
      bar.close()
    interrupt.raise_if_requested()  # nothing of a program whose Ctrl-C was swallowed lands
    for k, (member, directory) in enumerate(zip(group, dirs)):
      record = results.member_record(member, result, k,
                                     study_lib.reference_for(config, member),
                                     f'{title} {index}')
      take = lambda tree: jax.tree.map(lambda x: x[k], tree)
      results.write_member(directory, record, take(result.initial_params),
                           take(result.final_params), take(result.best_params))
      out[index_of[id(member)]] = (record, take(result.best_params))
    # A group too large for one program ran as several, one after another.
    compile_s, fit_s = result.program_seconds()
    programs = len(set(result.chunk_index.tolist()))
    ran_as = f' as {programs} programs' if programs > 1 else ''
    print(f'{name}: compiled in {compile_s:.1f} s, trained {epochs} epochs in {fit_s:.1f} s'
          f'{ran_as}; test accuracy {np.mean(result.test_accuracy) * 100:.2f}% (mean), '
          f'best val acc {bar.best:.4f}', flush=True)
  return out


def _start(config, split, seeds, output_dir, data, search):
  study_dir = output_dir / config.name
  _claim(study_dir, config, seeds, dict(data or {}, search=search))
  for stale in study_dir.rglob('.*.tmp'):  # a write cut short by a kill
    stale.unlink()
  return study_dir, _DeviceData(split, engine.member_mesh())


def run_study(config: ml_collections.ConfigDict, split, *, seeds: int, output_dir: Path,
              progress: bool = True, data: dict[str, Any] | None = None,
              ) -> list[dict[str, Any]]:
  """Every configuration x seed (the exhaustive grid); returns every member's record."""
  study_dir, device_data = _start(config, split, seeds, output_dir, data, 'grid')
  trained = train_members(study_lib.expand(config, seeds), device_data, config=config,
                          study_dir=study_dir, folder='members', epochs=config.epochs,
                          progress=progress, title=config.name)
  return [record for record, _ in trained]


def run_hyperband(config: ml_collections.ConfigDict, split, *, seeds: int, output_dir: Path,
                  progress: bool = True, data: dict[str, Any] | None = None,
                  ) -> list[hyperband.Trial]:
  """keras_tuner's Hyperband over the study's configurations, each round vectorized;
  every trial's executions (seeds) are written to trials/ as they finish."""
  study_dir, device_data = _start(config, split, seeds, output_dir, data, 'hyperband')

  def train_round(trials: list[hyperband.Trial]) -> None:
    first = trials[0]
    members = [dataclasses.replace(t.configuration, label=t.trial_id, seed=seed)
               for t in trials for seed in range(seeds)]
    starts = None
    if first.parent is not None:
      starts = [t.parent.best_params[seed] for t in trials for seed in range(seeds)]
    trained = train_members(
        members, device_data, config=config, study_dir=study_dir, folder='trials',
        epochs=first.epochs - first.initial_epoch, progress=progress,
        title=f'{config.name} hyperband bracket {first.bracket} round {first.round}',
        initial_params=starts, first_epoch=first.initial_epoch)
    for i, t in enumerate(trials):
      for record, best in trained[i * seeds:(i + 1) * seeds]:
        t.records.append(record)
        t.best_params.append(best)
        t.scores.append(results.objective([record], config.objective)[0])

  return hyperband.search(
      study_lib.expand(config, 1), max_epochs=config.hyperband_max_epochs,
      factor=config.hyperband_factor, iterations=config.hyperband_iterations,
      seed=config.search_seed, objective=config.objective, train_round=train_round)


def run_final(config: ml_collections.ConfigDict, split, best: study_lib.Member, *,
              seeds: int, output_dir: Path, batch_size: int, shuffle: bool,
              progress: bool = True) -> list[dict[str, Any]]:
  """Retrains the best configuration, as the original's last fit did, into final/."""
  values = dict(best.values, batch_size=batch_size, shuffle=shuffle)
  members = [dataclasses.replace(best, values=values, seed=seed) for seed in range(seeds)]
  study_lib.validate(members, len(split.x_train))
  trained = train_members(members, _DeviceData(split, engine.member_mesh()), config=config,
                          study_dir=output_dir / config.name, folder='final',
                          epochs=config.final_epochs, progress=progress,
                          title=f'{config.name} final model')
  return [record for record, _ in trained]
