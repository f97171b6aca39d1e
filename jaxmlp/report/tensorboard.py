"""Live TensorBoard event files, written without TensorFlow (tensorboardX).

  tensorboard --logdir OUTPUT/STUDY

A study's folder gets `tensorboard/`: at its root the HParams experiment (every
hyperparameter that varies in the study, and every metric), and one run per member,
named by the member's folder (`members/l2=0.1__seed0`, `trials/trial-0007__seed7`,
`final/...`), holding its session (its hyperparameters' values) and a scalar per
metric per epoch. The step is the epoch, 1-based, counted from the start of the
member's lineage, so a continued Hyperband trial goes on from its parent's step.

A study of several objectives (`(val_accuracy, parameter_count)`) also lists each as
a metric `objective/NAME`, and a member's run ends with its value of each, as the
Pareto front ranks it (report.pareto.objective_value: a validation metric at the
epoch the tracker kept, or the network's exact cost), so the HParams view compares
members by every objective. A study of one objective writes none: its best epoch is
already the metric's scalars.

Only process 0 writes. Each run's events are buffered and flushed once per epoch, after
the epoch's host-side bookkeeping; a rerun after a kill purges what a run had logged
past the epoch it resumes from (tensorboardX's purge_step), so no step appears twice.
"""

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxmlp.report import pareto
from jaxmlp.store import folders
from jaxmlp.store.records import MemberRecord
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib

FOLDER = 'tensorboard'
# The engine's per-epoch metrics and the test set's, as TensorBoard tags: the prefix
# groups them in the Scalars dashboard.
EPOCH_TAGS = {'train_loss': 'train/loss', 'train_accuracy': 'train/accuracy',
              'val_loss': 'val/loss', 'val_accuracy': 'val/accuracy', 'val_f1': 'val/f1'}
TEST_TAGS = {'test_loss': 'test/loss', 'test_accuracy': 'test/accuracy',
             'test_f1': 'test/f1'}
# Shown in the HParams table for every study, varying or not: what a reader looks for
# first.
HEADLINE_FIELDS = ('optimizer', 'learning_rate', 'batch_size', 'hidden_sizes')
SUCCESS, FAILURE, UNKNOWN = 'STATUS_SUCCESS', 'STATUS_FAILURE', 'STATUS_UNKNOWN'
# A study of several objectives: each objective's tag is this and its name.
OBJECTIVE_PREFIX = 'objective/'


def hparam_value(value: Any) -> str | float | bool:
  """A config value as an HParams value: numbers as floats, networks as 128x256."""
  if isinstance(value, bool) or isinstance(value, str):
    return value
  if isinstance(value, (int, float, np.number)):
    return float(value)
  if isinstance(value, (tuple, list)):
    return 'x'.join(str(v) for v in value)
  return str(value)


def study_fields(members: list) -> tuple[str, ...]:
  """The member fields the HParams table shows: the headline ones, and every field
  whose value differs between `members` (sweep axes and arms alike) or is searched
  (a distribution)."""
  varying = [f for f in study_lib.MEMBER_FIELDS
             if len({repr(m.values[f]) for m in members}) > 1 or
             any(space.has_distribution(f, m.values[f]) for m in members)]
  return tuple(dict.fromkeys(HEADLINE_FIELDS + tuple(varying)))


def domain(field: str, value: Any) -> list:
  """The HParams values a config value stands for: a distribution's bounds or
  choices, every network a searched hidden_sizes may take, else the value itself."""
  if space.is_distribution(value):
    if value[space.KEY] == 'categorical':
      return [hparam_value(c) for c in value['choices']]
    return [float(value['low']), float(value['high'])]
  if space.has_distribution(field, value):
    layers = [layer['choices'] if space.is_distribution(layer) and
              layer[space.KEY] == 'categorical' else None for layer in value]
    if any(layer is None for layer in layers):
      return ['searched']
    return [hparam_value(net) for net in itertools.product(*layers)]
  return [hparam_value(value)]


def _protos():
  # tensorboardX's copies of TensorBoard's protos: no TensorFlow.
  from tensorboardX.proto import api_pb2, plugin_hparams_pb2, summary_pb2  # pylint: disable=import-outside-toplevel
  return api_pb2, plugin_hparams_pb2, summary_pb2


def _hparams_summary(tag: str, **data):
  api_pb2, plugin_pb2, summary_pb2 = _protos()
  del api_pb2
  content = plugin_pb2.HParamsPluginData(version=0, **data).SerializeToString()
  metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
      plugin_name='hparams', content=content))
  return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=metadata)])


def experiment_summary(hparams: dict[str, list], metrics: list[str]):
  """The experiment: each hyperparameter with the values it takes, and the metrics."""
  api_pb2, _, _ = _protos()
  infos = []
  for name, values in hparams.items():
    info = api_pb2.HParamInfo(name=name)
    if all(isinstance(v, bool) for v in values):
      info.type = api_pb2.DATA_TYPE_BOOL
    elif all(isinstance(v, float) for v in values):
      info.type = api_pb2.DATA_TYPE_FLOAT64
      info.domain_interval.min_value, info.domain_interval.max_value = min(values), max(values)
    else:
      info.type = api_pb2.DATA_TYPE_STRING
      info.domain_discrete.extend(sorted({str(v) for v in values}))
    infos.append(info)
  experiment = api_pb2.Experiment(
      hparam_infos=infos, time_created_secs=time.time(),
      metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in metrics])
  return _hparams_summary('_hparams_/experiment', experiment=experiment)


def session_start_summary(hparams: dict[str, Any]):
  _, plugin_pb2, _ = _protos()
  start = plugin_pb2.SessionStartInfo(start_time_secs=time.time())
  for name, value in hparams.items():
    if isinstance(value, bool):
      start.hparams[name].bool_value = value
    elif isinstance(value, float):
      start.hparams[name].number_value = value
    else:
      start.hparams[name].string_value = str(value)
  return _hparams_summary('_hparams_/session_start_info', session_start_info=start)


def session_end_summary(status: str):
  api_pb2, plugin_pb2, _ = _protos()
  end = plugin_pb2.SessionEndInfo(status=api_pb2.Status.Value(status),
                                  end_time_secs=time.time())
  return _hparams_summary('_hparams_/session_end_info', session_end_info=end)


class Run:
  """One member's run: its session, then its scalars epoch by epoch."""

  def __init__(self, folder: Path, hparams: dict[str, Any], first_step: int):
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    # Buffered: written by our flush at each epoch's end, never by the writer's timer.
    self.writer = SummaryWriter(str(folder), purge_step=first_step, max_queue=1000,
                                flush_secs=10 ** 6)
    self.writer.file_writer.add_summary(session_start_summary(hparams), first_step)

  def scalars(self, step: int, values: dict[str, float]) -> None:
    for tag, value in values.items():
      self.writer.add_scalar(tag, float(value), step)

  def end(self, status: str) -> None:
    self.writer.file_writer.add_summary(session_end_summary(status))

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()


class Board:
  """A study's TensorBoard folder; inert (writes nothing) where `enabled` is false.
  `objectives`: a study of several objectives' names (empty for one objective)."""

  def __init__(self, study_dir: Path, enabled: bool, fields: tuple[str, ...] = (),
               objectives: tuple[str, ...] = ()):
    self.root, self.enabled, self.fields = study_dir / FOLDER, enabled, fields
    self.study_dir, self.objectives = study_dir, objectives
    self.seconds = 0.0   # spent writing, for the benchmark's overhead figure

  @classmethod
  def for_study(cls, study_dir: Path, config, enabled: bool) -> 'Board':
    """The study's board, its experiment written: over every configuration the
    study's config names (its arms, sweep axes and distributions), and the seed."""
    members = study_lib.expand(config, 1)
    names = tuple(o.name for o in study_lib.objectives(config.objective))
    board = cls(study_dir, enabled, study_fields(members), names if len(names) > 1 else ())
    board.write_experiment(members, {'seed': [0.0, float(max(config.seeds - 1, 0))]})
    return board

  def group_runs(self, members: list, dirs: list[Path], programs: list, epochs: int,
                 first_epoch: int) -> 'GroupRuns':
    """The runs of one group of members (the runner's observer of it)."""
    return GroupRuns(self, members, dirs, programs, epochs, first_epoch)

  def write_experiment(self, members: list, extra: dict[str, list] | None = None) -> None:
    """The HParams experiment over `members` (every configuration the study may train)
    and `extra` hyperparameters (name -> the values they take)."""
    if not self.enabled:
      return
    started = time.perf_counter()
    from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
    hparams = {f: [v for m in members for v in domain(f, m.values[f])]
               for f in self.fields}
    hparams.update(extra or {})
    writer = SummaryWriter(str(self.root))
    try:
      writer.file_writer.add_summary(experiment_summary(
          hparams, list(EPOCH_TAGS.values()) + list(TEST_TAGS.values()) +
          [OBJECTIVE_PREFIX + name for name in self.objectives]))
    finally:
      writer.close()
    self.seconds += time.perf_counter() - started

  def member_hparams(self, member, **extra) -> dict[str, Any]:
    """A member's session values: the study's fields, its seed, and `extra`."""
    values = {f: hparam_value(member.values[f]) for f in self.fields}
    return {**values, 'seed': float(member.seed),
            **{k: hparam_value(v) for k, v in extra.items()}}

  def open(self, member_dir: Path, hparams: dict[str, Any], first_step: int) -> Run | None:
    """The run of the member kept in `member_dir` (None where disabled)."""
    if not self.enabled:
      return None
    started = time.perf_counter()
    run = Run(self.root / member_dir.relative_to(self.study_dir), hparams, first_step)
    self.seconds += time.perf_counter() - started
    return run

  def epoch(self, runs: list[Run | None], step: int, metrics: dict[str, np.ndarray]
            ) -> None:
    """One epoch of several members (row k of each metric is runs[k]'s), flushed."""
    if not self.enabled:
      return
    started = time.perf_counter()
    for k, run in enumerate(runs):
      if run is not None:
        run.scalars(step, {EPOCH_TAGS.get(name, name): values[k]
                           for name, values in metrics.items()})
        run.flush()
    self.seconds += time.perf_counter() - started

  def objective_values(self, record: MemberRecord | None) -> dict[str, float]:
    """A member's scalar of each of a study of several objectives' objectives, by tag;
    none where it kept no epoch (diverged): the HParams table leaves the cell empty
    rather than sort a NaN among the values."""
    if record is None or not self.objectives:
      return {}
    values = {OBJECTIVE_PREFIX + name: pareto.objective_value(record, name)
              for name in self.objectives}
    return {tag: value for tag, value in values.items() if not np.isnan(value)}

  def finish(self, run: Run | None, step: int, test: dict[str, float | None],
             status: str = SUCCESS, record: MemberRecord | None = None) -> None:
    """A member's end: its test scores (where it has them), its objectives' values
    (from its `record`, in a study of several), its status; closed."""
    if run is None:
      return
    started = time.perf_counter()
    run.scalars(step, {TEST_TAGS[k]: v for k, v in test.items() if v is not None})
    run.scalars(step, self.objective_values(record))
    run.end(status)
    run.close()
    self.seconds += time.perf_counter() - started


class GroupRuns:
  """A group's runs as its programs train: each member's run opens at its program's
  first epoch and is finished when the program's members are written."""

  def __init__(self, board: Board | None, members: list, dirs: list[Path],
               programs: list[tuple[int, ...]], epochs: int, first_epoch: int):
    self.board, self.members, self.dirs = board, members, dirs
    self.programs, self.epochs, self.first_epoch = programs, epochs, first_epoch
    self.runs: dict[int, Run | None] = {}

  def epoch(self, done: int, metrics: dict[str, np.ndarray]) -> None:
    """`done` epochs of the group's programs together (plan.run's count), the last
    one's metrics, a row per member of the program it belongs to."""
    if self.board is None or not self.board.enabled:
      return
    position, epoch = divmod(done - 1, self.epochs)
    rows = self.programs[position]
    step = self.first_epoch + epoch + 1
    for k in rows:
      if k not in self.runs:
        self.runs[k] = self.board.open(self.dirs[k],
                                       self.board.member_hparams(self.members[k]), step)
    self.board.epoch([self.runs[k] for k in rows], step, metrics)

  def finish(self, k: int, epochs_trained: int, test: dict[str, float | None]) -> None:
    """Member k is written: its test scores at its last step, its session ended. In a
    study of several objectives, their values come from the record just written in
    its folder: its whole history, where this process saw only the epochs since a
    resumed checkpoint."""
    if self.board is None:
      return
    run = self.runs.pop(k, None)
    record = (folders.read_member(self.dirs[k])
              if run is not None and self.board.objectives else None)
    self.board.finish(run, self.first_epoch + epochs_trained, test, record=record)

  def close(self) -> None:
    """Whatever is still open (a stop or an error cut the programs short)."""
    for run in self.runs.values():
      if run is not None:
        run.close()
    self.runs.clear()
