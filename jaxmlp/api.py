"""jaxmlp from Python: what a notebook calls, and what the command line runs.

  import jaxmlp
  result = jaxmlp.run_study('baseline', epochs=3, seeds=2, data_limit=6000)
  result.frame      # pandas: one row per member (jaxmlp.read_results)
  result.history    # pandas: one row per member and epoch
  result.report     # the study's report.md

`python -m jaxmlp.launch` parses its flags and calls `run_configs`, as `run_study`
does: one path. `train` trains given members (from given initial weights, if any)
as a study's programs do, and returns what they computed, without writing files:
what a reproduction check needs.
"""

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxmlp.common.errors import UserError
from jaxmlp.studies import overrides as overrides_lib
from jaxmlp.studies import study as study_lib

Study = str | Path | ml_collections.ConfigDict


def load_study(study: Study, **fields) -> ml_collections.ConfigDict:
  """A study's config (a name in configs/, a config file's path, or a ConfigDict,
  copied) with `fields` set as the command line's --FIELD and --config.FIELD set
  them: `epochs=3` sets the final model's epochs too, a tuple makes a sweep axis, a
  dict sets a search's settings (pbt=dict(population=8))."""
  from jaxmlp.search import registry  # pylint: disable=import-outside-toplevel
  if isinstance(study, ml_collections.ConfigDict):
    config = ml_collections.ConfigDict(study.to_dict())
  else:
    config = study_lib.load_config(str(study))
  shorthands = {f: v for f, v in fields.items() if f in overrides_lib.SHORTHAND_FIELDS}
  rest = []
  for f, v in fields.items():
    if f in shorthands:
      continue
    if isinstance(v, dict):
      rest += [(f'{f}.{k}', _as_text(x)) for k, x in v.items()]
    else:
      rest.append((f, _as_text(v)))
  return overrides_lib.apply_shorthands(
      overrides_lib.apply(registry.complete(config), rest, registry.renamed_fields()),
      shorthands)


def _as_text(value: Any) -> str:
  """A Python value as the override's text, which overrides.parse reads back."""
  return value if isinstance(value, str) else repr(value)


def default_compilation_cache() -> Path:
  """$XDG_CACHE_HOME/jaxmlp/jax_cache, the per-user cache folder."""
  base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
  return Path(base) / 'jaxmlp' / 'jax_cache'


def use_compilation_cache(setting: str | None) -> None:
  """Turns JAX's persistent compilation cache on in `setting` (a folder; None: the
  default one), or leaves it off for 'off'."""
  if setting == 'off':
    return
  if setting == '':
    raise UserError('--compilation_cache needs a folder, or off')
  jax.config.update('jax_compilation_cache_dir',
                    str(Path(setting) if setting else default_compilation_cache()))
  # This model's programs compile in seconds and are small: cache every one of them.
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', -1)


def start_processes() -> None:
  """One process per host (launch/): members shard over every device of every host."""
  if os.environ.get('JAXMLP_DISTRIBUTED') != '1' or jax.distributed.is_initialized():
    return
  # Under SLURM, jax would give each process only GPU $SLURM_LOCALID; the sbatch
  # launcher lists all of the node's GPUs instead.
  ids = os.environ.get('JAXMLP_LOCAL_DEVICE_IDS')
  explicit = {k: int(os.environ[e]) for k, e in (('num_processes', 'JAXMLP_NUM_PROCESSES'),
                                                 ('process_id', 'JAXMLP_PROCESS_ID'))
              if os.environ.get(e)}
  if os.environ.get('JAX_PLATFORMS', '').startswith('cpu'):
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(local_device_ids=[int(i) for i in ids.split(',')] if ids else None,
                             **explicit)


def run_configs(studies: Sequence[tuple[ml_collections.ConfigDict, Path | None]], *,
                output_dir: Path, command: str, data_dir: str | None = None,
                checkpoint_every: str = 'auto', compilation_cache: str | None = None,
                cpu_devices: int = 0, cpu_threads: int = 0,
                on_report: Callable[[Path], None] | None = None,
                on_records: Callable[[str, list], None] | None = None,
                **settings) -> list[Path | None]:
  """Runs each (config, its file) in turn: every study checked before any data is
  loaded or anything compiles; each data split loaded once. Returns each study's
  report (None on processes other than 0). `settings`: runner.Settings' fields
  (progress, tensorboard, storage, worker_id, search_only)."""
  # Imported here: the training and report modules take seconds to import, and the
  # command line's --help or a bad flag needs none of them.
  from jaxmlp import pipeline  # pylint: disable=import-outside-toplevel
  from jaxmlp.data import mnist as data_lib  # pylint: disable=import-outside-toplevel
  from jaxmlp.engine import checkpoint as checkpoint_lib  # pylint: disable=import-outside-toplevel
  from jaxmlp.engine import devices  # pylint: disable=import-outside-toplevel
  from jaxmlp.engine import interrupt  # pylint: disable=import-outside-toplevel
  policy = checkpoint_lib.Policy.parse(checkpoint_every)
  use_compilation_cache(compilation_cache)
  for config, _ in studies:
    pipeline.check_study(config, study_lib.training_rows(config))
  start_processes()
  devices.use_cpu_cores(cpu_devices, cpu_threads)
  splits = {}
  data_key = lambda c: (c.data_source, c.data_checksums, c.validation_split, c.data_limit)
  for config, _ in studies:
    if data_key(config) not in splits:
      splits[data_key(config)] = data_lib.load_split(config, data_dir)
    rows = len(splits[data_key(config)].x_train)
    if rows != study_lib.training_rows(config):   # another dataset: check it again
      pipeline.check_study(config, rows)
  reports = []
  for config, source in studies:
    interrupt.raise_if_requested()
    path = pipeline.run_study(
        config, splits[data_key(config)], output_dir=Path(output_dir), command=command,
        source=source, checkpoint_every=policy,
        on_records=None if on_records is None else functools.partial(on_records, config.name),
        **settings)
    if path is not None and on_report is not None:
      on_report(path)
    reports.append(path)
  return reports


@dataclasses.dataclass(frozen=True)
class StudyResult:
  """A finished study: its folder, its report, and its results as DataFrames."""
  config: ml_collections.ConfigDict
  folder: Path
  report: Path | None

  @functools.cached_property
  def frame(self):
    """One row per member (jaxmlp.read_results)."""
    from jaxmlp import frames  # pylint: disable=import-outside-toplevel
    return frames.read_results(self.folder)

  @functools.cached_property
  def history(self):
    """One row per member and epoch (jaxmlp.read_history)."""
    from jaxmlp import frames  # pylint: disable=import-outside-toplevel
    return frames.read_history(self.folder)


def run_study(study: Study, *, output_dir: str | Path = 'results',
              data_dir: str | None = None, checkpoint_every: str = 'auto',
              compilation_cache: str | None = None, progress: bool = True,
              tensorboard: bool = True, storage: str | None = None,
              **fields) -> StudyResult:
  """Runs a study as `python -m jaxmlp.launch --study=...` does, `fields` as its
  flags (see load_study); a rerun continues or reuses what is on disk."""
  config = load_study(study, **fields)
  source = None if isinstance(study, ml_collections.ConfigDict) else \
      study_lib.config_path(str(study))
  command = f'jaxmlp.run_study({study if isinstance(study, str) else config.name!r}, ' + \
      ', '.join(f'{k}={v!r}' for k, v in fields.items()) + ')'
  report, = run_configs([(config, source)], output_dir=Path(output_dir), command=command,
                        data_dir=data_dir, checkpoint_every=checkpoint_every,
                        compilation_cache=compilation_cache, progress=progress,
                        tensorboard=tensorboard, storage=storage)
  return StudyResult(config, Path(output_dir) / config.name, report)


@dataclasses.dataclass(frozen=True)
class TrainedMember:
  """What a member's program computed for it: its per-epoch history (NaN after an
  early stop), its test scores, and its initial, final and best-epoch weights."""
  member: study_lib.Member
  history: dict[str, np.ndarray]
  test: dict[str, float]
  params: dict[str, Any]


def members_of(study: Study, **fields) -> list[study_lib.Member]:
  """Every member (configuration x seed) of a study, as the grid would train them."""
  return study_lib.expand(load_study(study, **fields))


def _check_initial_params(members: list[study_lib.Member], initial: list[Any]) -> None:
  """One pytree per member, with its network's names, shapes and dtypes."""
  if len(initial) != len(members):
    raise UserError(f'initial_params: {len(initial)} given for {len(members)} '
                    'members; give one per member')
  for member, given in zip(members, initial):
    expected = member.structure.param_shapes()
    want = {jax.tree_util.keystr(p): (tuple(x.shape), np.dtype(x.dtype))
            for p, x in jax.tree_util.tree_leaves_with_path(expected)}
    try:
      got = {jax.tree_util.keystr(p): (tuple(np.shape(x)), np.asarray(x).dtype)
             for p, x in jax.tree_util.tree_leaves_with_path(given)}
    except (TypeError, ValueError) as e:
      raise UserError(f'initial_params for {member.label} (seed {member.seed}) is not a '
                      f'pytree of arrays ({e})') from None
    if got != want:
      wrong = sorted(set(want) ^ set(got)) or \
          [k for k in want if got[k] != want[k]]
      shown = ', '.join(f'{k}: {want[k][0]} {want[k][1]}' if k in want else f'{k}: unexpected'
                        for k in wrong[:3])
      raise UserError(f'initial_params for {member.label} (seed {member.seed}) does not '
                      f'match its network at {shown}; give the params pytree Flax\'s MLP '
                      'makes for it (e.g. a TrainedMember.params["final"])')


def train(members: Sequence[study_lib.Member], *, data_dir: str | None = None,
          split=None, initial_params: Sequence[Any] | None = None
          ) -> list[TrainedMember]:
  """Trains `members` (members_of, or your own) as a study's programs would, from
  `initial_params` (one pytree per member, as Flax's MLP names them) where given, on
  `split` (default: the members' data settings, loaded). Nothing is written."""
  from jaxmlp.data import mnist as data_lib  # pylint: disable=import-outside-toplevel
  from jaxmlp.engine import devices  # pylint: disable=import-outside-toplevel
  from jaxmlp.engine import plan  # pylint: disable=import-outside-toplevel
  from jaxmlp.engine import program  # pylint: disable=import-outside-toplevel
  from jaxmlp.studies import checks  # pylint: disable=import-outside-toplevel
  members = list(members)
  if not members:
    raise UserError('train: no members given; pass jaxmlp.members_of(STUDY) or your own')
  if not all(isinstance(m, study_lib.Member) for m in members):
    raise UserError('train: members must be jaxmlp.members_of(...) items (Member)')
  if initial_params is not None:
    _check_initial_params(members, list(initial_params))
  if split is None:
    split = data_lib.load_split(members[0].values, data_dir)
  checks.check_members(members, len(split.x_train))
  mesh = devices.member_mesh()
  data = devices.put_data(split, mesh)
  out: list[TrainedMember | None] = [None] * len(members)
  for (structure, tracking, epochs), group in study_lib.group(members).items():
    index = [next(i for i, m in enumerate(members) if m is g) for g in group]
    outcomes = plan.train_group(
        structure, {f: np.array([m.hparams[f] for m in group]) for f in group[0].hparams},
        np.array([m.seed for m in group]), data, epochs, mesh, tracking=tracking,
        initial_params=None if initial_params is None else [initial_params[i] for i in index])
    for i, (result, row) in zip(index, plan.by_member(outcomes)):
      out[i] = TrainedMember(
          members[i], {k: v[row] for k, v in result.history.items()},
          dict(test_loss=float(result.test_loss[row]),
               test_accuracy=float(result.test_accuracy[row]),
               test_f1=float(result.test_f1[row])),
          program.member(result, row))
  return out
