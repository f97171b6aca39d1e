"""A PBT study's outcome and its part of report.md (and a replay's): the population
ranked, the winner's ancestry and schedule, the trajectories figure, what the
exploits cost and that the epoch program compiled once."""

import dataclasses
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxmlp.common import numbers
from jaxmlp.core import objective as objective_lib
from jaxmlp.data import mnist as data_lib
from jaxmlp.search.pbt import _figures
from jaxmlp.store import records as records_lib
from jaxmlp.report import growth
from jaxmlp.report import pareto as pareto_report
from jaxmlp.report import summaries
from jaxmlp.search import base
from jaxmlp.studies import study as study_lib


def _fmt(point: dict[str, float]) -> str:
  return ', '.join(f'{k} {v:.3g}' for k, v in point.items())


def _at(member: dict[str, Any], epoch: int) -> dict[str, float]:
  return {field: values[epoch] for field, values in member['schedule'].items()}


@dataclasses.dataclass
class PBTOutcome(base.Outcome):
  best: study_lib.Member
  records: list[records_lib.MemberRecord]
  pbt: dict[str, Any]
  lineage: list[dict[str, Any]]

  def what_ran(self, config: ml_collections.ConfigDict) -> tuple[str, str]:
    p = self.pbt
    what = (f'population-based training: {p["population"]} members in one program, '
            f'{p["epochs"]} epochs, every {p["interval"]} epochs the bottom '
            f'{p["quantile"]:g} copy the top (resample {p["resample"]:g}, factors '
            f'{", ".join(f"{f:g}" for f in p["factors"])}): {len(self.lineage)} exploits; '
            f'the epoch program compiled {p["epoch_program_compiles"]} time(s), '
            f'{p["compiles_while_evolving"]} compilations while evolving')
    return summaries.with_program_costs(what, self.records)

  def report_section(self, config: ml_collections.ConfigDict, study_dir: Path,
                     split: data_lib.Split, *, retrained: bool) -> list[str]:
    del split, retrained
    p, winner = self.pbt, self.pbt['winner']
    figure = _figures.trajectories(p, self.lineage, study_dir / 'figures' /
                                      'pbt_trajectories.png')
    scores = _figures.final_scores(p)
    order = objective_lib.Objective.of(p['objective']).best_first(
        list(range(len(scores))), lambda k: float(scores[k]))
    epoch_s, exploit_s = p.get('epoch_s_median'), p.get('exploit_s_median')
    cost = (f'an exploit (ranking, the gather over the member axis, new hyperparameters) '
            f'took {1e3 * exploit_s:.1f} ms against {epoch_s:.2f} s an epoch (medians)'
            if exploit_s and epoch_s else 'no exploit ran')
    lines = ['## Population-based training', '',
             f'Winner: **member {winner}**, best {p["objective"]} {scores[winner]:.4f}; '
             f'{len(self.lineage)} exploits in {len(p["exploit_s"])}'
             f' generations ({study_dir.name}/pbt_lineage.jsonl); {cost}; the epoch '
             f'program compiled {p["epoch_program_compiles"]} time(s) and nothing compiled '
             f'while evolving ({p["compiles_while_evolving"]} compilations).', '',
             f'![hyperparameter trajectories]({figure.relative_to(study_dir)})', '',
             "The winner's ancestry (whose weights it ends with, oldest first):", '',
             '| epochs | member | hyperparameters at the start |', '|---|---|---|']
    for start, end, member in _figures.ancestry(p, self.lineage, winner):
      lines.append(f'| {start + 1}-{end} | {member} | '
                   f'{_fmt(_at(p["members"][winner], start))} |')
    lines += ['', '| rank | member | best ' + p['objective'] + ' | start | end |',
              '|---|---|---|---|---|']
    for rank, k in enumerate(order[:10], start=1):
      m = p['members'][k]
      lines.append(f'| {rank} | {k} | {scores[k]:.4f} | {_fmt(_at(m, 0))} | '
                   f'{_fmt(_at(m, -1))} |')
    lines.append('')
    if 'objectives' in p:   # several: the exploits ranked by Pareto dominance
      lines += [f'Each generation ranked the members by {p["objectives"]}: non-dominated '
                'sorting, feasibility first, then crowding distance (multi-objective '
                'PBT); the winner is the first of the final front in that order.', '']
      grouped = {}
      for r in self.records:
        grouped.setdefault(r.label, []).append(r)
      lines += (pareto_report.section(grouped, config, study_dir)
                + growth.section(study_dir, config))
    return lines


@dataclasses.dataclass
class ReplayOutcome(base.Outcome):
  best: study_lib.Member
  records: list[records_lib.MemberRecord]
  pbt: dict[str, Any]
  winner: records_lib.MemberRecord | None

  def what_ran(self, config: ml_collections.ConfigDict) -> tuple[str, str]:
    what = (f'PBT replay: member {self.pbt["winner"]}\'s schedule of '
            f'{config.pbt_replay.study}, retrained alone ({self.pbt["epochs"]} epochs)')
    return summaries.with_program_costs(what, self.records)

  def report_section(self, config: ml_collections.ConfigDict, study_dir: Path,
                     split: data_lib.Split, *, retrained: bool) -> list[str]:
    del config, study_dir, split, retrained
    replay = self.records[0]
    lines = ['## PBT replay', '', '| metric | largest difference from the winner |',
             '|---|---|']
    history = self.pbt['members'][self.pbt['winner']]['history']
    for name, values in history.items():
      a = numbers.nan_if_none(values)
      b = numbers.nan_if_none(replay.history[name])
      lines.append(f'| {name} | {np.nanmax(np.abs(a - b)):.3g} |')
    if self.winner is not None:
      lines.append(f'| test_accuracy | {abs(self.winner.run.test_accuracy - replay.run.test_accuracy):.3g} |')
    return lines + ['']
