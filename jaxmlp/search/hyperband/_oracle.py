"""keras_tuner 1.4.8's HyperbandOracle, ported to pure Python, with batched ask/tell.

`Oracle` creates exactly the trials that keras_tuner's `HyperbandOracle` creates when a
sequential tuner drives it (create_trial, report the score, end_trial as COMPLETED,
then the next create_trial), for a search space of `hp.Choice`s given in the same
order, the same seed and the same scores: the same trial ids, hyperparameter values,
brackets, rounds, `tuner/epochs`, `tuner/initial_epoch`, promotions (`tuner/trial_id`)
and the same point where it returns STOPPED. Ported from keras_tuner/src/tuners/
hyperband.py (populate_space and its helpers) and engine/oracle.py (`create_trial`,
`_random_values`, `_record_values`, `end_trial`, `_check_consecutive_failures`,
`get_best_trials`), engine/hyperparameters (`Choice`, `random_sample`,
`hp_utils.prob_to_index`):

* Sampling, seed: see _choice; trial ids: see _schedule.
* Promotion. Round r of a bracket takes, one trial at a time, the best COMPLETED
  trial of round r-1 not yet promoted (Python's stable `sorted` on the score, reversed
  for 'max', so ties go to the earlier-created trial), for as long as more such
  trials remain than round r-1's nominal size minus round r's.
* NaN. keras_tuner never ranks a NaN score: `end_trial` turns a COMPLETED trial whose
  score is NaN into INVALID and, with max_retries_per_trial 0, into FAILED. A FAILED
  trial is never a promotion candidate (only COMPLETED ones are), and as promotion
  goes on only while more than (size of round r-1 - size of round r) candidates
  remain, each FAILED trial of round r-1 costs round r one promotion. The bracket
  then never completes (it stays in the state, inert) and the search moves on to the
  next bracket. `report` mirrors this (status FAILED, never ranked).
  Consecutive failures: see _schedule. `inf` is a normal (COMPLETED) score.
* Not ported: conditional hyperparameters, other hyperparameter types, retries of
  crashed trials (max_retries_per_trial 0), hyperband_iterations 0 (= unlimited).

Batching: a sequential tuner creates trial k+1 only after trial k finished, but only
a promotion reads earlier trials' results. `Oracle.next_trials` runs the ported
`populate_space` for trial after trial, with the trials handed out but not yet
reported as pending, and stops before the first trial whose creation depends on a
pending trial's status or score: a promotion check of round r whose round-(r-1)
candidates include a pending trial (unless, even with every pending candidate
COMPLETED, there would be too few candidates to promote: then the sequential oracle
passes that round over whatever their results). No other branch reads a trial's
result (the IDLE branches and `ongoing_trials` of a parallel keras_tuner never occur
in a sequential run, and none are taken here: a batch moves on to another bracket
only where the sequential oracle would, whatever the pending results), so every
batch is exactly the next stretch of the sequential run. The first round of a
bracket comes out in one batch, a round of promotions in one batch, and a bracket's
last round in one batch with the next bracket's first round (the sequential oracle
does not read the last round's results before it starts the next bracket).
"""

import math
from typing import Any, Mapping, Sequence

import numpy as np

from jaxmlp.core import pareto
from jaxmlp.search.hyperband import _choice
from jaxmlp.search.hyperband import _schedule
from jaxmlp.search.hyperband import _state

Trial = _schedule.Trial   # what the oracle hands out
RUNNING, COMPLETED, FAILED = (_schedule.RUNNING, _schedule.COMPLETED,
                              _schedule.FAILED)
_BLOCKED, _STOPPED = object(), object()


class Oracle:
  """keras_tuner's HyperbandOracle with ask (`next_trials`) and tell (`report`).

  Args:
    space: hyperparameter name -> its Choice values, in the order the hypermodel
      declares them (the order matters: it is the sampling order).
    max_epochs, factor, iterations: HyperbandOracle's max_epochs, factor and
      hyperband_iterations (here at least 1).
    seed: an int >= 1 (keras_tuner would draw a random seed for 0 or None).
    objective_direction: 'max' or 'min'.
    max_consecutive_failed_trials: keras_tuner's (default 3); None never stops.

  Use: `while batch := oracle.next_trials(): train each, oracle.report(id, score)`.
  `next_trials` returns [] when nothing can be handed out before more reports come
  in; with nothing pending, [] means the sequential oracle returned STOPPED
  (`stopped` and `done` are then True).

  When max_consecutive_failed_trials trials in a row of creation order (with none
  pending among them) are FAILED (NaN score), keras_tuner's sequential search would
  have raised at the last of them and created no further trial; `next_trials` then
  raises the same RuntimeError. Trials already handed out after that point (in the
  same batch) are ones keras_tuner would not have created.
  """

  def __init__(self, space: Mapping[str, Sequence[Any]], *, max_epochs: int, factor: int,
               iterations: int, seed: int, objective_direction: str,
               max_consecutive_failed_trials: int | None = 3):
    _schedule.check_settings(max_epochs, factor, iterations, seed,
                                      objective_direction, max_consecutive_failed_trials)
    if not space:
      raise ValueError('the search space is empty')
    self._space = [(str(name), _choice.choice_values(name, values))
                   for name, values in space.items()]
    self.max_epochs = max_epochs
    self.factor = factor
    self.iterations = iterations
    self.seed = seed
    self.objective_direction = objective_direction
    self.max_consecutive_failed_trials = max_consecutive_failed_trials

    self._seed_state = seed
    self._tried_so_far: set[str] = set()
    self._trials: dict[str, Trial] = {}       # creation order
    self._status: dict[str, str] = {}         # RUNNING (pending), COMPLETED, FAILED
    self._scores: dict[str, float | tuple[float, ...]] = {}   # reported trials
    self._violations: dict[str, float] = {}   # constrained trials' total violation
    self._stopped = False
    self._current_iteration = 0
    self._current_bracket = _schedule.num_brackets(max_epochs, factor) - 1
    self._brackets: list[dict[str, Any]] = []
    self._start_new_bracket()

  # --- the interface ---------------------------------------------------------

  @property
  def space(self) -> dict[str, list[Any]]:
    return {name: list(values) for name, values in self._space}

  @property
  def trials(self) -> list[Trial]:
    """Every trial created so far, in creation order."""
    return list(self._trials.values())

  @property
  def pending(self) -> list[Trial]:
    """Trials handed out and not yet reported (after `from_state`: to rerun)."""
    return [t for t in self._trials.values() if self._status[t.trial_id] == RUNNING]

  @property
  def stopped(self) -> bool:
    """The sequential oracle has returned STOPPED: no trial will be created."""
    return self._stopped

  @property
  def done(self) -> bool:
    return self._stopped and not self.pending

  def status(self, trial_id: str) -> str:
    """'RUNNING' (pending), 'COMPLETED' or 'FAILED' (its score was NaN)."""
    return self._status[trial_id]

  def score(self, trial_id: str) -> float | None:
    """The reported score (NaN for a FAILED trial), None while pending."""
    return self._scores.get(trial_id)

  def best_trials(self, num_trials: int = 1) -> list[Trial]:
    """Oracle.get_best_trials: COMPLETED trials by score (stable), best first; if
    fewer than num_trials, the other trials follow in creation order."""
    ranked = [self._trials[t] for t in self._best_first(
        [t for t in self._trials if self._status[t] == COMPLETED])]
    if len(ranked) < num_trials:
      ranked += [t for t in self._trials.values()
                 if self._status[t.trial_id] != COMPLETED]
    return ranked[:num_trials]

  def next_trials(self) -> list[Trial]:
    """The trials a sequential keras_tuner would create next, in its order, up to
    (not including) the first whose creation needs the result of a pending trial.

    [] means the search has STOPPED when no trial is pending; otherwise it means the
    next trial waits for pending trials' reports. Raises RuntimeError as keras_tuner
    does after max_consecutive_failed_trials failures in a row.
    """
    failed = _schedule.consecutive_failures_end(
        self._status, self.max_consecutive_failed_trials)
    if failed is not None:
      raise RuntimeError(
          'Number of consecutive failures exceeded the limit of '
          f'{self.max_consecutive_failed_trials} (NaN scores, up to trial {failed}).')
    batch = []
    while not self._stopped:
      trial_id = f'{len(self._trials):04d}'   # f"{{:0{len(str(None))}d}}"
      outcome = self._populate_space(trial_id)
      if outcome is _BLOCKED:
        break
      if outcome is _STOPPED:
        self._stopped = True
        break
      trial = self._create_trial(trial_id, outcome)
      batch.append(trial)
    return batch

  def report(self, trial_id: str, score: float | Sequence[float],
             violation: float | None = None) -> None:
    """A trial finished (COMPLETED) with this score: its best epoch's objective,
    averaged over executions. A NaN score makes it FAILED, as keras_tuner's
    end_trial does: it is never promoted (see the module docstring). Several
    objectives may come with the constraints' total `violation` (<= 0: feasible)."""
    if trial_id not in self._status:
      raise KeyError(f'no trial {trial_id!r}')
    if self._status[trial_id] != RUNNING:
      raise ValueError(f'trial {trial_id} was already reported')
    if isinstance(score, (tuple, list)):   # several objectives, as losses
      score = tuple(float(v) for v in score)
      failed = any(math.isnan(v) for v in score)
    else:
      score = float(score)
      failed = math.isnan(score)
    self._scores[trial_id] = score
    if violation is not None:
      self._violations[trial_id] = float(violation)
    self._status[trial_id] = FAILED if failed else COMPLETED

  def _best_first(self, trial_ids: list[str]) -> list[str]:
    """keras_tuner's order of one score (Python's stable sort, reversed to maximize);
    several (losses, every one minimized): non-dominated sorting, then crowding
    distance, as NSGA-II selects (core.pareto)."""
    if trial_ids and isinstance(self._scores[trial_ids[0]], tuple):
      violation = ([self._violations.get(t, 0.0) for t in trial_ids]
                   if self._violations else None)   # feasible first: Deb's rules
      order = pareto.best_first(np.array([self._scores[t] for t in trial_ids]), violation)
      return [trial_ids[k] for k in order]
    return sorted(trial_ids, key=lambda t: self._scores[t],
                  reverse=self.objective_direction == 'max')

  def state(self) -> dict[str, Any]:
    """The full oracle state, JSON-serializable (strict JSON: no NaN/inf)."""
    return _state.state_of(self)

  @classmethod
  def from_state(cls, state: Mapping[str, Any]) -> 'Oracle':
    """The oracle that `state()` described; its pending trials stay pending."""
    oracle = cls({name: values for name, values in state['space']},
                 **_state.settings_of(state))
    _state.restore(oracle, state)
    return oracle

  # --- HyperbandOracle.populate_space and its helpers --------------------------

  def _size(self, bracket_num: int, round_num: int) -> int:
    return _schedule.size(self.max_epochs, self.factor, bracket_num, round_num)

  def _epochs(self, bracket_num: int, round_num: int) -> int:
    return _schedule.epochs(self.max_epochs, self.factor, bracket_num, round_num)

  def _populate_space(self, trial_id: str):
    """Values (with tuner/* keys) for the next trial, _STOPPED, or _BLOCKED when
    the sequential oracle would read a pending trial's result (nothing changed)."""
    self._remove_completed_brackets()
    for bracket in self._brackets:
      bracket_num, rounds = bracket['bracket_num'], bracket['rounds']
      if len(rounds[0]) < self._size(bracket_num, 0):
        return self._random_trial(trial_id, bracket)
      for round_num in range(1, len(rounds)):
        round_info, past_round_info = rounds[round_num], rounds[round_num - 1]
        round_size = self._size(bracket_num, round_num)
        past_size = self._size(bracket_num, round_num - 1)
        already_selected = [info['past_id'] for info in round_info]
        candidates = [info['id'] for info in past_round_info
                      if info['id'] not in already_selected]
        pending = sum(self._status[c] == RUNNING for c in candidates)
        candidates = [c for c in candidates if self._status[c] == COMPLETED]
        if len(candidates) + pending <= past_size - round_size:
          continue   # no promotion, whatever the pending trials' results
        if pending:
          return _BLOCKED   # their statuses or scores decide what comes next
        if len(candidates) > past_size - round_size:
          best = self._best_first(candidates)[0]
          values = self._trials[best].keras_tuner_values
          values['tuner/trial_id'] = best
          values['tuner/epochs'] = self._epochs(bracket_num, round_num)
          values['tuner/initial_epoch'] = self._epochs(bracket_num, round_num - 1)
          values['tuner/bracket'] = self._current_bracket
          values['tuner/round'] = round_num
          round_info.append({'past_id': best, 'id': trial_id})
          return values
    # No trial of the current brackets can run.
    if (self._current_bracket == 0
        and self._current_iteration + 1 == self.iterations):
      return _STOPPED   # keras_tuner: IDLE while trials are ongoing, never sequential
    self._increment_bracket_num()
    self._start_new_bracket()
    return self._random_trial(trial_id, self._brackets[-1])

  def _start_new_bracket(self) -> None:
    self._brackets.append({'bracket_num': self._current_bracket,
                           'rounds': [[] for _ in range(self._current_bracket + 1)]})

  def _increment_bracket_num(self) -> None:
    self._current_bracket -= 1
    if self._current_bracket < 0:
      self._current_bracket = _schedule.num_brackets(self.max_epochs, self.factor) - 1
      self._current_iteration += 1

  def _remove_completed_brackets(self) -> None:
    self._brackets = [
        b for b in self._brackets
        if len(b['rounds'][-1]) != self._size(b['bracket_num'], len(b['rounds']) - 1)]

  def _random_trial(self, trial_id: str, bracket: dict[str, Any]):
    values = self._random_values()
    if values is None:
      return _STOPPED   # keras_tuner: IDLE while trials are ongoing, never sequential
    values['tuner/epochs'] = self._epochs(bracket['bracket_num'], 0)
    values['tuner/initial_epoch'] = 0
    values['tuner/bracket'] = self._current_bracket
    values['tuner/round'] = 0
    bracket['rounds'][0].append({'past_id': None, 'id': trial_id})
    return values

  def _random_values(self) -> dict[str, Any] | None:
    """Oracle._random_values: untried values, or None after too many collisions."""
    values, self._seed_state = _choice.draw_untried(
        self._space, self._seed_state, self._tried_so_far)
    return values

  def _create_trial(self, trial_id: str, values: dict[str, Any]) -> Trial:
    """Oracle.create_trial for a RUNNING trial: records the values' hash."""
    self._tried_so_far.add(_choice.values_hash(values))
    trial = Trial(
        trial_id=trial_id,
        values={k: v for k, v in values.items() if not k.startswith('tuner/')},
        bracket=values['tuner/bracket'], round=values['tuner/round'],
        initial_epoch=values['tuner/initial_epoch'], epochs=values['tuner/epochs'],
        parent_id=values.get('tuner/trial_id'), iteration=self._current_iteration)
    self._trials[trial_id] = trial
    self._status[trial_id] = RUNNING
    return trial
