"""The report's section for an Optuna search: counts, the best trials, Optuna's own
plots (optimization history, parameter importances, parallel coordinates) and the
learning curves of the best configurations overlaid."""

import collections
import dataclasses
import warnings
from pathlib import Path

import ml_collections
import numpy as np
import optuna

from jaxmlp.core import pareto
from jaxmlp.data import mnist as data_lib
from jaxmlp.report import figures
from jaxmlp.store import records as records_lib
from jaxmlp.search import base
from jaxmlp.report import growth
from jaxmlp.report import pareto as pareto_report
from jaxmlp.search.optuna import _pareto_rungs
from jaxmlp.search.optuna import _space
from jaxmlp.search.optuna import _study
from jaxmlp.studies import study as study_lib

TOP = 5        # configurations overlaid in one figure
TABLE = 15     # trials listed


@dataclasses.dataclass
class OptunaOutcome(base.Outcome):
  """An Optuna study once its trials are done (this worker's share of it timed)."""
  best: study_lib.Member                      # the best trial's configuration
  records: list[records_lib.MemberRecord]     # every finished trial's executions
  study: optuna.Study
  programs_built: int                         # by this worker
  seconds: float                              # this worker's search, wall time
  best_trial: optuna.trial.FrozenTrial
  storage: str

  def what_ran(self, config: ml_collections.ConfigDict) -> tuple[str, str]:
    return what_ran(self, config)

  def front_candidates(self, config: ml_collections.ConfigDict):
    """Completed trials by configuration (trials alike are more seeds of it)."""
    numbers = {t.number for t in self.study.get_trials(deepcopy=False)
               if t.state == optuna.trial.TrialState.COMPLETE}
    fields, _ = _space.fields_of(config)
    out = {}
    for r in self.records:
      if r.trial.trial in numbers:
        member = _space.configuration_of(fields, r.trial.params)
        out.setdefault(r.trial.configuration, (member, []))[1].append(r)
    return out

  def report_section(self, config: ml_collections.ConfigDict, study_dir: Path,
                     split: data_lib.Split, *, retrained: bool) -> list[str]:
    del split, retrained   # the final model, if any, has its own section
    return section(self, config, study_dir)


def what_ran(search: OptunaOutcome, config) -> tuple[str, str]:
  """The 'What ran' lines: the search, and what it cost."""
  counts = collections.Counter(
      map(_study.outcome, search.study.get_trials(deepcopy=False)))
  states = ', '.join(f'{n} {s}' for s, n in sorted(counts.items()))
  what = (f'Optuna ({config.optuna.sampler} sampler, {config.optuna.pruner} pruner, '
          f'storage {search.storage}): {sum(counts.values())} trials ({states}) x '
          f'{config.seeds} executions (seeds), at most {config.epochs} epochs each; this '
          f'worker compiled {search.programs_built} programs for them')
  epochs = sum(r.epochs_trained for r in search.records)
  cost = f'{epochs} member-epochs trained; this worker\'s search took {search.seconds:.1f} s'
  return what, cost


def _plots(study: optuna.Study, figure_dir: Path) -> list[Path]:
  """Optuna's own matplotlib plots, as PNG."""
  from optuna.visualization import matplotlib as vm  # pylint: disable=g-import-not-at-top
  figure_dir.mkdir(parents=True, exist_ok=True)
  plots = [('optuna_history.png', lambda: vm.plot_optimization_history(study)),
           ('optuna_importances.png', lambda: vm.plot_param_importances(
               study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())),
           ('optuna_parallel.png', lambda: vm.plot_parallel_coordinate(study))]
  written = []
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    for name, plot in plots:
      try:
        axes = plot()
      except (ValueError, RuntimeError):  # e.g. importances of a single parameter
        continue
      figure = np.ravel(axes)[0].figure
      written.append(figures.save(figure, figure_dir / name))
  return written


def ranked_trials(finished: list[optuna.trial.FrozenTrial], config
                  ) -> list[optuna.trial.FrozenTrial]:
  """Completed trials best first: by the objective (told values are finite: a
  diverged trial fails), ties in trial order; with several objectives, in NSGA-II's
  order of their values, feasible first (core.pareto, Optuna's own ranking)."""
  objectives = study_lib.objectives(config.objective)
  if len(objectives) == 1:
    return objectives[0].best_first(finished, lambda t: t.value)
  losses_NM = np.array([[o.loss(v) for o, v in zip(objectives, t.values)] for t in finished])
  violation_N = None
  if study_lib.constraints(config.get('constraints', '')):
    violation_N = pareto.violation([t.user_attrs.get(_study.CONSTRAINTS_ATTR, [])
                                    for t in finished])
  return [finished[k] for k in pareto.best_first(losses_NM, violation_N)]


def best_trial(study: optuna.Study, finished, config) -> optuna.trial.FrozenTrial:
  """Optuna's best trial; of several objectives, the first of the front in NSGA-II's
  order (an extreme of it: the one the final model retrains where it retrains one)."""
  if len(study_lib.objectives(config.objective)) == 1:
    return study.best_trial
  return ranked_trials(finished, config)[0]


def _told(t: optuna.trial.FrozenTrial) -> str:
  if len(t.values) == 1:
    return f'{t.value:.4f}'
  return ', '.join(f'{v:.4g}' for v in t.values)


def section(search: OptunaOutcome, config, study_dir: Path) -> list[str]:
  study, figure_dir = search.study, study_dir / 'figures'
  finished = [t for t in study.get_trials(deepcopy=False)
              if t.state == optuna.trial.TrialState.COMPLETE]
  ranked = ranked_trials(finished, config)
  tracked = study_lib.tracked_objective(config.objective)
  by_trial: dict[int, list[records_lib.MemberRecord]] = {}
  for r in search.records:
    by_trial.setdefault(r.trial.trial, []).append(r)
  best_runs = [(f'trial {t.number}: {by_trial[t.number][0].trial.configuration}',
                by_trial[t.number]) for t in ranked[:TOP] if t.number in by_trial]
  curves = figures.overlaid_curves(best_runs, tracked,
                                   f'{config.name}: the {len(best_runs)} best trials',
                                   figure_dir / 'optuna_best_curves.png')
  best_trial = search.best_trial
  best = (by_trial[best_trial.number][0].trial.configuration
          if best_trial.number in by_trial else best_trial.params)
  lines = ['## Optuna search', '',
           f'Best: **trial {best_trial.number}**, {config.objective} '
           f'{_told(best_trial)}: {best}.', '',
           'Trials that share a structure trained in the slots of compiled programs; '
           'between epochs each reported its objective (mean over its executions) to the '
           'pruner, and a pruned or finished trial\'s slots took the next asked trial at '
           'once. Watch or revisit the study with '
           f'`optuna-dashboard {_dashboard_url(search.storage)}`.', '',
           f'![best trials]({curves.relative_to(study_dir)})', '']
  for path in _plots(study, figure_dir):
    lines += [f'![{path.stem}]({path.relative_to(study_dir)})', '']
  names = sorted({k for t in finished for k in t.params})
  lines += [f'| trial | {config.objective} | epochs | ' + ' | '.join(names) + ' |',
            '|---' * (3 + len(names)) + '|']
  for t in ranked[:TABLE]:
    epochs = max((r.epochs_trained for r in by_trial.get(t.number, [])), default=0)
    cells = [f'{t.params[n]:.4g}' if isinstance(t.params.get(n), float)
             else str(t.params.get(n, '')) for n in names]
    lines.append(f'| {t.number} | {_told(t)} | {epochs} | ' + ' | '.join(cells) + ' |')
  lines += ['', f'Every trial\'s executions are in trials/ (result.json), the study in '
            f'{search.storage}.', '']
  return lines + _several_objectives(search, config, study_dir, finished)


def _several_objectives(search: OptunaOutcome, config, study_dir: Path, finished
                        ) -> list[str]:
  """The rungs' decisions and the front of the completed trials (several objectives)."""
  if len(study_lib.objectives(config.objective)) == 1:
    return []
  lines = []
  rungs = _pareto_rungs.decisions(search.study.get_trials(deepcopy=False))
  if rungs:
    lines += ['Pruning by Pareto rank at successive-halving rungs (epochs '
              f'{_pareto_rungs.MIN_RESOURCE} x {_pareto_rungs.REDUCTION_FACTOR}^k; each '
              "decision is in its trial's user attributes):", '',
              '| rung | epoch | reached | continued | pruned |', '|---|---|---|---|---|']
    for rung, counts in rungs.items():
      epoch = _pareto_rungs.MIN_RESOURCE * _pareto_rungs.REDUCTION_FACTOR ** rung
      lines.append(f'| {rung} | {epoch} | {counts["reached"]} | {counts["continued"]} | '
                   f'{counts["pruned"]} |')
    lines.append('')
  numbers = {t.number for t in finished}
  grouped = {}
  for r in search.records:
    if r.trial.trial in numbers:
      grouped.setdefault(r.trial.configuration, []).append(r)   # trials alike: more seeds
  return lines + (pareto_report.section(grouped, config, study_dir)
                  + growth.section(study_dir, config))


def _dashboard_url(storage: str) -> str:
  if '://' in storage or storage.endswith(('.log', '.journal')):
    return storage
  return f'sqlite:///{storage}'

