"""A PBT schedule trained again: the final model (the winner's hyperparameter schedule
at the final model's batch size and length), and --search=pbt_replay
--config.pbt_replay.study=STUDY_DIR, which retrains the winner's lineage alone, as Ray's
PopulationBasedTrainingReplay does: from its root member's seed, with the schedule of
hyperparameters it trained with, and the fresh random streams its clones got.

A population whose members were computed alone (member_arithmetic 'alone', 'auto' on
a CPU) gives each member the numbers it gets alone, so the replay trains the lineage
alone and reproduces the winner bit for bit (tests/search/test_pbt_study.py). A batched
population's (another member_arithmetic, an accelerator, a release before it) rounded
with its block: XLA's batched matmul rounds differently for another batch of members
(one epoch of the finetune_pbt winner's root alone, or in a block of 2, gave a
validation loss 2.4% off the population's; in its block of 8, the same bits). Its replay
runs in the population's layout (its devices, its members per device), padded, at the
population program's cost per epoch.
"""

import dataclasses
from pathlib import Path

import ml_collections
import numpy as np
from jax.sharding import Mesh

from jaxmlp.common import numbers
from jaxmlp.engine import devices
from jaxmlp.engine import runner
from jaxmlp.common.errors import UserError
from jaxmlp.store import folders
from jaxmlp.store import records as records_lib
from jaxmlp.search.pbt import _evolve
from jaxmlp.search.pbt import _files
from jaxmlp.search.pbt import _report
from jaxmlp.search.pbt import _rules
from jaxmlp.studies import checks
from jaxmlp.studies import study as study_lib


def train_schedule(config, settings: runner.Settings, data: runner.LazyDeviceData,
                   members: list[study_lib.Member], schedule_EF: np.ndarray, folder: str,
                   title: str, streams: list[tuple[int, int, int]] | None = None,
                   population_layout: tuple[int, int] | None = None):
  """(record, best weights) per member: each trained with the schedule (and streams);
  with a `population_layout` (devices, members per device), padded to it (see above)."""
  _, dims = _rules.dimensions(config)

  def evolve_for(planned):
    layout = None
    if population_layout:
      count, block = population_layout
      layout = (Mesh(np.array(data.mesh.devices.flat[:count]), (devices.MEMBER_AXIS,)),
                max(block, numbers.ceil_div(len(planned.members), count)))
    mesh, per_device = layout or planned.layout(data.mesh)
    return _evolve.Replay([members[k] for k in planned.members], dims, schedule_EF,
                             members[0].epochs, mesh, per_device * mesh.size, streams,
                             layout)

  return runner.train_members(members, data, config=config, settings=settings,
                              folder=folder, title=title, evolve_for=evolve_for)


def retrain_final(config, settings, data, best: study_lib.Member, pbt: dict
                  ) -> list[records_lib.MemberRecord]:
  """The final model retrained with the winner's schedule (its last values past the
  schedule's end), at the final model's batch size and length, into final/."""
  members = [study_lib.final_member(best, config, seed) for seed in range(config.seeds)]
  trained = train_schedule(config, settings, data, members, _files.winner_schedule(pbt),
                           'final', f'{config.name} final model')
  return [record for record, _ in trained]


def source(config: ml_collections.ConfigDict) -> dict:
  """The replayed study's pbt.json, with a winner; else one line."""
  if not config.pbt_replay.study:
    raise UserError('--search=pbt_replay needs --config.pbt_replay.study=STUDY_DIR (a folder '
                    'that --search=pbt wrote)')
  pbt = _files.read(Path(config.pbt_replay.study))
  if pbt is None or 'winner' not in pbt:
    raise UserError(f'--config.pbt_replay.study={config.pbt_replay.study} holds no finished '
                    f'PBT study ({_files.PBT_FILE} with a winner)')
  members, winner = pbt.get('members'), pbt['winner']
  if not (isinstance(members, list) and isinstance(winner, int)
          and not isinstance(winner, bool) and 0 <= winner < len(members)
          and isinstance(members[winner], dict)
          and {'schedule', 'streams'} <= set(members[winner])
          and isinstance(pbt.get('dimensions'), list)):
    raise UserError(f'{Path(config.pbt_replay.study) / _files.PBT_FILE} is damaged (its '
                    f'winner {winner!r} is not one of its members, or lacks its schedule): '
                    'rerun the PBT study that wrote it (the same command) to write it again')
  return pbt


def population_layout(pbt: dict, data: runner.LazyDeviceData) -> tuple[int, int]:
  """(devices, members per device) the population ran in (a pbt.json written before
  they were recorded: as the planner lays a population out over this mesh)."""
  count = pbt.get('devices') or data.mesh.size
  return count, pbt.get('members_per_device') or numbers.ceil_div(pbt['population'], count)


def _arithmetic(pbt: dict) -> str:
  """The member_arithmetic the population ran with (a pbt.json of a release before
  it: batched)."""
  return pbt.get('member_arithmetic', 'batched')


def ran_alone(pbt: dict, member: study_lib.Member, platform: str) -> bool:
  """Whether the population's members were computed as alone."""
  return dataclasses.replace(member.structure, arithmetic=_arithmetic(pbt)).alone(platform)


def validate(config: ml_collections.ConfigDict, rows: int) -> None:
  """Refuses a replay of another study's space or length."""
  pbt = source(config)
  _, dims = _rules.dimensions(config)
  if [d.field for d in dims] != [d['field'] for d in pbt['dimensions']]:
    raise UserError(f'--config.pbt_replay.study={config.pbt_replay.study} explored '
                    f'{[d["field"] for d in pbt["dimensions"]]}: replay it with its own '
                    'study (the same --study and --config values)')
  ran = _arithmetic(pbt)
  if config.member_arithmetic != ran:
    raise UserError(f'--config.pbt_replay.study={config.pbt_replay.study} computed its '
                    f'members {ran}: replay it with --config.member_arithmetic={ran}')
  if config.epochs != pbt['epochs']:
    raise UserError(f'--config.pbt_replay.study={config.pbt_replay.study} trained {pbt["epochs"]} '
                    f'epochs: replay it with --epochs={pbt["epochs"]}')
  if config.name == Path(config.pbt_replay.study).resolve().name:
    config.name = f'{config.name}_replay'   # its own folder beside the replayed one
  checks.check_members(configurations(config), rows)


def configurations(config: ml_collections.ConfigDict) -> list[study_lib.Member]:
  return [_files.winner_member(config, source(config))]


def run(config, settings, data) -> _report.ReplayOutcome:
  """The winner's lineage trained alone (and its final model)."""
  pbt = source(config)
  best = _files.winner_member(config, pbt)
  streams = _files.winner_streams(pbt)
  member = dataclasses.replace(best, label=f'replay_of_member={pbt["winner"]}',
                               seed=streams[0][2])
  alone = ran_alone(pbt, member, data.mesh.devices.flat[0].platform)
  (record, _), = train_schedule(config, settings, data, [member],
                                _files.winner_schedule(pbt), 'members',
                                f'{config.name} replay', streams,
                                population_layout=None if alone else
                                population_layout(pbt, data))
  winner = folders.read_member(folders.member_dir(
      Path(config.pbt_replay.study) / 'members', study_lib.Member(
          f'member={pbt["winner"]}', config.arm, pbt['winner'], {}, ())))
  return _report.ReplayOutcome(best, [record], pbt, winner)
