"""The report's section for a Hyperband search: keras_tuner's schedule, every trial
as keras_tuner's results_summary() lists them (a table and trials.csv), a figure."""

import csv
import io
from pathlib import Path

import numpy as np

from jaxmlp.core import objective as objective_lib
from jaxmlp.studies import study as study_lib
from jaxmlp.report import figures
from jaxmlp.store import folders
from jaxmlp.report import summaries
from jaxmlp.search.hyperband import _schedule

HYPERBAND_DIFFERENCES = (
    'The oracle is a port of keras_tuner 1.4.8\'s HyperbandOracle (tested against it): '
    'the same trials, values, brackets, rounds, epochs, promotions and stopping for the '
    'same seed (--config.search_seed) and scores. What differs from keras_tuner running '
    'one trial at a time: every trial the oracle can hand out before it needs a score '
    'that is not in yet (a whole round; a bracket\'s last round with the next bracket\'s '
    'first) trains at once, vmapped, grouped into programs by structure; a trial\'s '
    'executions are seeds 0..N-1 of this project rather than fresh random '
    'initializations; a continued trial\'s executions all start from its parent\'s '
    'best-epoch weights over all executions, as keras_tuner\'s single checkpoint holds '
    'them, with a fresh optimizer, and number their epochs on from the parent\'s.')


def _rows(trials, objective: str) -> list[dict]:
  """Every trial, best first, as trials.csv lists it."""
  rows = []
  for t in objective_lib.Objective.of(objective).best_first(trials, lambda t: t.score):
    trial = t.trial
    rows.append(dict(
        trial=trial.trial_id, bracket=trial.bracket, round=trial.round,
        configuration=t.configuration.label,
        **{f: t.configuration.values[f] for f in t.configuration.swept},
        initial_epoch=trial.initial_epoch, epochs=trial.epochs,
        epochs_trained=int(np.mean([r.epochs_trained for r in t.records])),
        score=t.score, score_std=float(np.std([summaries.score([r], objective)[0]
                                               for r in t.records])),
        status=t.status, continued_from=trial.parent_id or ''))
  return rows


def _write_csv(rows: list[dict], path: Path) -> None:
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  folders.write_atomic(path, buffer.getvalue())


def _schedule_lines(trials, config, stop_reason: str) -> list[str]:
  schedule = _schedule.schedule(config.hyperband.max_epochs,
                                         config.hyperband.factor)
  counts: dict[tuple[int, int], int] = {}
  for t in trials:
    key = (t.trial.bracket, t.trial.round)
    counts[key] = counts.get(key, 0) + 1
  return ['## Hyperband', '',
          'keras_tuner\'s schedule, (trials, epochs) per round of each bracket: ' +
          '; '.join(f'bracket {len(schedule) - 1 - i}: ' +
                    ', '.join(f'({n}, {e})' for n, e in rounds)
                    for i, rounds in enumerate(schedule)) + '.', '',
          'Trials run, per (bracket, round): ' +
          ', '.join(f'({b}, {r}): {n}' for (b, r), n in counts.items()) +
          f'; {len(trials)} in all. The search ended: {stop_reason}.', '',
          HYPERBAND_DIFFERENCES, '']


def section(trials, best, stop_reason: str, config, study_dir: Path) -> list[str]:
  """`trials`: hyperband.TrialResult in creation order; `best` the best of them (with
  several objectives, the first of the oracle's non-dominated order)."""
  objective = study_lib.tracked_objective(config.objective)
  rows = _rows(trials, objective)
  _write_csv(rows, study_dir / 'trials.csv')
  figure = figures.configurations(
      [f'{r["trial"]} {r["configuration"]}' for r in rows], np.array([r['score'] for r in rows]),
      np.array([r['score_std'] for r in rows]), f'best-epoch {objective}',
      f'{config.name}: every Hyperband trial by {objective}',
      study_dir / 'figures' / 'trials.png',
      highlight=f'{best.trial.trial_id} {best.configuration.label}')
  lines = _schedule_lines(trials, config, stop_reason) + [
      f'Best: **{best.configuration.label}** (trial {best.trial.trial_id}, '
      f'{objective} {best.score:.4f}).', '',
      f'![trials]({figure.relative_to(study_dir)})', '',
      '| trial | configuration | bracket | round | epochs | ' + objective +
      ' | status | continued from |', '|---|---|---|---|---|---|---|---|']
  for row in rows:
    lines.append(f"| {row['trial']} | {row['configuration']} | {row['bracket']} | "
                 f"{row['round']} | {row['initial_epoch']}-{row['epochs']} "
                 f"({row['epochs_trained']} trained) | {row['score']:.4f} ± "
                 f"{row['score_std']:.4f} | {row['status']} | {row['continued_from']} |")
  return lines + ['', 'The table is also in trials.csv.', '']
