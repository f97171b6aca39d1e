"""Runs a study group by group, writing each finished group at once, so a rerun of
the same command skips what is complete and an interruption loses nothing finished."""

import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import tqdm

from jaxmlp import engine
from jaxmlp import results
from jaxmlp import study as study_lib
from jaxmlp.errors import UserError

RUN_FILE = 'run.json'


def _claim(study_dir: Path, config: ml_collections.ConfigDict, seeds: int,
           data: dict[str, Any]) -> None:
  """Refuses a folder that holds results of another configuration."""
  mine = dict(config=json.loads(config.to_json()), seeds=seeds, data=data)
  path = study_dir / RUN_FILE
  if path.is_file():
    theirs = json.loads(path.read_text())
    theirs = {k: theirs.get(k) for k in mine}
    if theirs != mine:
      differ = sorted(k for k in set(mine['config']) | set(theirs['config'] or {})
                      if mine['config'].get(k) != (theirs['config'] or {}).get(k))
      differ += [k for k in ('seeds', 'data') if theirs[k] != mine[k]]
      raise UserError(
          f'{study_dir} holds results of a different run ({", ".join(differ)} differ): '
          'pass another --output_dir, or delete that folder to start over')
    return
  results.write_json(path, dict(
      **mine, devices=[str(d) for d in jax.devices()],
      versions={m: __import__(m).__version__ for m in ('jax', 'flax', 'optax')},
      started=time.strftime('%Y-%m-%d %H:%M:%S')))


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


def run_study(config: ml_collections.ConfigDict, split, *, seeds: int, output_dir: Path,
              progress: bool = True, data: dict[str, Any] | None = None,
              ) -> list[dict[str, Any]]:
  """Trains every member not already on disk; returns every member's record."""
  members = study_lib.expand(config, seeds)
  study_dir = output_dir / config.name
  _claim(study_dir, config, seeds, data or {})
  for stale in study_dir.rglob('.*.tmp'):  # a write cut short by a kill
    stale.unlink()
  mesh = engine.member_mesh()
  device_data = None
  groups = study_lib.group(members)
  records = []
  for index, (structure, group) in enumerate(groups.items(), start=1):
    name = (f'[{config.name}] program {index}/{len(groups)}: {len(group)} members '
            f'({structure.optimizer}, batch {structure.batch_size}, hidden '
            f'{"x".join(map(str, structure.hidden_sizes))})')
    saved = [results.read_member(results.member_dir(study_dir, m)) for m in group]
    if all(saved):
      print(f'{name}: complete on disk, skipped', flush=True)
      records += saved
      continue
    if device_data is None:
      device_data = engine.put_data(split, mesh)
    bar = _Progress(name, progress)
    hparams = {f: np.array([m.hparams[f] for m in group]) for f in study_lib.HPARAM_FIELDS}
    try:
      result = engine.run_group(structure, hparams, np.array([m.seed for m in group]),
                                device_data, config.epochs, mesh,
                                max_members=config.max_members_per_program, on_epoch=bar)
    finally:
      bar.close()
    for k, member in enumerate(group):
      record = results.member_record(member, result, k,
                                     study_lib.reference_for(config, member), index)
      take = lambda tree: jax.tree.map(lambda x: x[k], tree)
      results.write_member(results.member_dir(study_dir, member), record,
                           take(result.initial_params), take(result.final_params))
      records.append(record)
    print(f'{name}: compiled in {result.compile_time_s[0]:.1f} s, trained '
          f'{config.epochs} epochs in {result.fit_time_s.max():.1f} s; test accuracy '
          f'{np.mean(result.test_accuracy) * 100:.2f}% (mean), best val acc {bar.best:.4f}',
          flush=True)
  return records
