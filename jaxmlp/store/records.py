"""A member's record (its result.json): what every search writes and reads back.

One type for every member, trained now or found on disk: the configuration it ran,
its history, and one rule each for its best epoch and for whether it diverged. A
member trained in a program of its own (grid, Hyperband, final model) adds its test
scores and costs (`ProgramRun`); an Optuna trial's execution adds the trial
(`OptunaTrial`). result.json holds the same keys and values as before records had
a `version`; files without one (version 1) load the same.
"""

import dataclasses
from typing import Any

from jaxmlp.core import divergence
from jaxmlp.core import objective as objective_lib
from jaxmlp.store import schema
from jaxmlp.studies import study as study_lib

VERSION = 2   # 1: result.json without a version field (same keys otherwise)

# What a member's record keeps of its config: enough to rebuild and evaluate it.
RECORD_FIELDS = study_lib.MEMBER_FIELDS + ('objective', 'validation_split')
History = dict[str, list[float | None]]   # metric -> per epoch; None: not finite


@dataclasses.dataclass(frozen=True)
class ProgramRun:
  """A member trained to its end in a program: its test set scores and costs."""
  test_loss: float | None
  test_accuracy: float | None
  test_f1: float | None
  initial_epoch: int          # where in its lineage it started (a continued trial)
  fit_time_s: float           # the program's, shared by its members
  compile_time_s: float
  members_per_program: int
  program: str                # which program trained it
  weight_updates: int
  reference: dict[str, Any]   # the original's numbers for this configuration


@dataclasses.dataclass(frozen=True)
class OptunaTrial:
  """The Optuna trial an execution belongs to."""
  trial: int
  params: dict[str, Any]
  configuration: str          # the configuration's label, by its values
  worker: str
  state: str | None = None    # optuna's TrialState name, once told
  value: float | None = None  # what the study was told (None if not finite)
  values: list[float | None] | None = None   # several objectives (None: not finite)


def best_epoch(history: History, objective: str) -> int | None:
  """The 1-based epoch the program keeps the weights of (see Objective.best_epoch)."""
  return objective_lib.Objective.of(objective).best_epoch(history[objective])


def diverged(history: History, test_loss: float | None = None,
             tested: bool = False) -> bool:
  """The member's losses (training first, then validation, and test where tested)
  break core/divergence.py's RULE."""
  losses = history['train_loss'] + history['val_loss'] + ([test_loss] if tested else [])
  return divergence.diverged(losses)


@dataclasses.dataclass(frozen=True)
class MemberRecord:
  label: str
  arm: str
  seed: int
  swept: tuple[str, ...]
  config: dict[str, Any]      # RECORD_FIELDS of the member's values
  history: History
  epochs_trained: int
  best_epoch: int | None
  diverged: bool
  run: ProgramRun | None = None
  trial: OptunaTrial | None = None
  version: int = VERSION
  # Hyperparameter -> its value per epoch trained, where they changed while it trained
  # (population-based training, a replayed schedule); None, and not in result.json,
  # for every other member.
  schedule: dict[str, list[float | None]] | None = None

  @property
  def member(self) -> study_lib.Member:
    """The member the record was trained as."""
    return study_lib.Member(self.label, self.arm, self.seed,
                            {**study_lib.baseline(), **self.config}, tuple(self.swept))

  def objective_value(self, objective: str) -> float:
    """Its best epoch's value of `objective` (as keras_tuner scores an execution)."""
    return objective_lib.Objective.of(objective).best_value(self.history[objective])

  def to_json(self) -> dict[str, Any]:
    """result.json's object, its keys in the order the release before wrote them."""
    head = dict(label=self.label, arm=self.arm, seed=self.seed, swept=list(self.swept))
    if self.trial is not None:
      t = self.trial
      return dict(head, trial=t.trial, params=t.params, configuration=t.configuration,
                  config=self.config, history=self.history,
                  epochs_trained=self.epochs_trained, best_epoch=self.best_epoch,
                  worker=t.worker, diverged=self.diverged, state=t.state, value=t.value,
                  **({} if t.values is None else dict(values=t.values)),
                  version=self.version)
    r = self.run
    return dict(head, config=self.config, history=self.history, test_loss=r.test_loss,
                test_accuracy=r.test_accuracy, test_f1=r.test_f1,
                epochs_trained=self.epochs_trained, initial_epoch=r.initial_epoch,
                best_epoch=self.best_epoch, fit_time_s=r.fit_time_s,
                compile_time_s=r.compile_time_s,
                members_per_program=r.members_per_program, program=r.program,
                weight_updates=r.weight_updates, diverged=self.diverged,
                reference=r.reference,
                **({} if self.schedule is None else dict(schedule=self.schedule)),
                version=self.version)

  @classmethod
  def check_json(cls, obj: Any) -> None:
    """Raises schema.SchemaError unless `obj` has a result.json's shape: the fields of
    a record and of its program run, or of its Optuna trial."""
    schema.check_fields(obj, {})
    part = OptunaTrial if 'trial' in obj else ProgramRun
    schema.check_fields(obj, {**schema.fields_of(cls, skip=('run', 'trial')),
                              **schema.fields_of(part)})

  @classmethod
  def from_json(cls, obj: dict[str, Any]) -> 'MemberRecord':
    """A result.json's record, of this release or the one before (no version), as
    folders.read_result returns it: checked (check_json) where it was read. Keys no
    record has (a later release's) are let be."""
    known = {f.name for kind in (cls, ProgramRun, OptunaTrial)
             for f in dataclasses.fields(kind)}
    obj = {k: v for k, v in obj.items() if k in known}
    part = lambda kind: {f.name: obj.pop(f.name) for f in dataclasses.fields(kind)
                         if f.name in obj}
    trial = OptunaTrial(**part(OptunaTrial)) if 'trial' in obj else None
    run = ProgramRun(**part(ProgramRun)) if trial is None else None
    obj['swept'] = tuple(obj['swept'])
    return cls(run=run, trial=trial, version=obj.pop('version', 1), **obj)


@dataclasses.dataclass(frozen=True)
class FinalModel:
  """A study's final model: its members' records, the study's folder that holds them,
  and how it came to be, as the report says it ('retrained 50 epochs at batch 32,
  shuffled'; 'the winner as trained')."""
  records: list[MemberRecord]
  folder: str
  how: str
