"""The Hyperband oracle's state as strict JSON (its format string is fixed: states on
disk carry it), and the oracle rebuilt from one."""

import copy
import dataclasses
import math
from typing import Any, Mapping

from jaxmlp.search.hyperband import _schedule

FORMAT = 'jaxmlp.hyperband.Oracle/1'


def _encode_score(score):
  if isinstance(score, tuple):   # several objectives
    return [_encode_score(v) for v in score]
  if score is None or math.isfinite(score):
    return score
  return repr(score)   # 'inf', '-inf', 'nan': strict JSON has no such numbers


def _decode_score(score):
  if isinstance(score, list):
    return tuple(_decode_score(v) for v in score)
  return float(score) if isinstance(score, str) else score


def state_of(oracle) -> dict[str, Any]:
  """An _oracle.Oracle's full state, JSON-serializable (no NaN/inf)."""
  # pylint: disable=protected-access
  return {
      'format': FORMAT,
      'space': [[name, list(values)] for name, values in oracle._space],
      'max_epochs': oracle.max_epochs,
      'factor': oracle.factor,
      'iterations': oracle.iterations,
      'seed': oracle.seed,
      'objective_direction': oracle.objective_direction,
      'max_consecutive_failed_trials': oracle.max_consecutive_failed_trials,
      'seed_state': oracle._seed_state,
      'tried_so_far': sorted(oracle._tried_so_far),
      'brackets': copy.deepcopy(oracle._brackets),
      'current_bracket': oracle._current_bracket,
      'current_iteration': oracle._current_iteration,
      'stopped': oracle._stopped,
      'trials': [dict(dataclasses.asdict(t), status=oracle._status[t.trial_id],
                      score=_encode_score(oracle._scores.get(t.trial_id)),
                      **({'violation': _encode_score(oracle._violations[t.trial_id])}
                         if t.trial_id in oracle._violations else {}))
                 for t in oracle._trials.values()],
  }


def settings_of(state: Mapping[str, Any]) -> dict[str, Any]:
  """The Oracle's keyword arguments (besides the space) a state was made with."""
  if state.get('format') != FORMAT:
    raise ValueError(f'not a {FORMAT} state: {state.get("format")!r}')
  return dict(max_epochs=state['max_epochs'], factor=state['factor'],
              iterations=state['iterations'], seed=state['seed'],
              objective_direction=state['objective_direction'],
              max_consecutive_failed_trials=state['max_consecutive_failed_trials'])


def restore(oracle, state: Mapping[str, Any]) -> None:
  """Puts a new Oracle (made with `settings_of(state)`) where `state` left off."""
  # pylint: disable=protected-access
  oracle._seed_state = state['seed_state']
  oracle._tried_so_far = set(state['tried_so_far'])
  oracle._brackets = copy.deepcopy(state['brackets'])
  oracle._current_bracket = state['current_bracket']
  oracle._current_iteration = state['current_iteration']
  oracle._stopped = state['stopped']
  for t in state['trials']:
    t = dict(t)
    status, score = t.pop('status'), _decode_score(t.pop('score'))
    if 'violation' in t:   # only a constrained study's trials carry one
      oracle._violations[t['trial_id']] = _decode_score(t.pop('violation'))
    trial = _schedule.Trial(**t)
    oracle._trials[trial.trial_id] = trial
    oracle._status[trial.trial_id] = status
    if status != _schedule.RUNNING:
      oracle._scores[trial.trial_id] = score
