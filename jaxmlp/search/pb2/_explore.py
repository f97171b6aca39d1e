"""PB2's decisions at a generation: PBT's exploit (the bottom quantile copies donors
drawn from the top), then each copy's new values from the GP-UCB bandit (_gp_ucb),
fitted on every interval the population trained so far.

The data are rebuilt from the population's arrays, which its checkpoint holds, so a
run resumed after kill -9 decides exactly as an uninterrupted one: an interval h of
slot m trained the values m held then (its first values, or those its last exploit
gave it), from the score its weights had at the interval's start (its own score at
generation h-1, or its donor's where it copied one then; 0 before the first, as Ray
starts), to its score at generation h, before that generation's exploit.
"""

import numpy as np

from jaxmlp.core import objective as objective_lib
from jaxmlp.search.pb2 import _gp_ucb

# Keeps the bandit's stream apart from the donors' draw, which PBT's rules make from
# (search_seed, generation).
BANDIT_TAG = 0xB2


def intervals(initial_MF: np.ndarray, score_GM: np.ndarray, donor_GM: np.ndarray,
              new_GMF: np.ndarray, generation: int, interval: int, sign: float):
  """(X_NF, t_N, y_N, r_N): one row per slot and interval up to `generation`: the
  values it trained with, the epoch the interval ended, how much the (sign-flipped)
  score rose per epoch, and the score it started from."""
  n = len(initial_MF)
  values_MF = np.array(initial_MF, np.float64)
  start_M = np.zeros(n)
  X, t, y, r = [], [], [], []
  for h in range(1, generation + 1):
    end_M = sign * np.asarray(score_GM[h - 1], np.float64)
    X.append(values_MF.copy())
    t.append(np.full(n, h * interval, np.float64))
    y.append((end_M - start_M) / interval)
    r.append(start_M.copy())
    if h == generation:
      break
    next_start = end_M.copy()
    for target in np.flatnonzero(donor_GM[h - 1] >= 0):
      values_MF[target] = new_GMF[h - 1, target]
      next_start[target] = end_M[donor_GM[h - 1, target]]
    start_M = next_start
  return np.concatenate(X), np.concatenate(t), np.concatenate(y), np.concatenate(r)


def decide(population, scores_M: np.ndarray, generation: int, initial_MF: np.ndarray,
           exploits: list) -> list[tuple[int, int, np.ndarray]]:
  """(target, donor, new values) per exploit of PBT's `exploits` (whose values are
  replaced): each target's new values from one GP-UCB batch."""
  if not exploits:
    return []
  p, config = population, population.config
  sign = -1.0 if objective_lib.Objective.of(config.objective).minimize else 1.0
  X_NF, t_N, y_N, r_N = intervals(initial_MF, p.score_GM, p.donor_GM, p.new_GMF,
                                  generation, config.pbt.interval, sign)
  low_F = np.array([d.low for d in p.dims])
  high_F = np.array([d.high for d in p.dims])
  log_F = np.array([d.log for d in p.dims])
  rng = np.random.default_rng([config.search_seed, generation, BANDIT_TAG])
  donors = [donor for _, donor, _ in exploits]
  new_TF = _gp_ucb.explore_batch(
      X_NF, t_N, y_N, low_F, high_F, log_F, np.zeros((0, len(p.dims))), len(exploits),
      rng, r_N=r_N, t_new=float(generation * config.pbt.interval),
      r_new_T=sign * np.asarray(scores_M, np.float64)[donors])
  return [(target, donor, np.asarray(new, np.float32))
          for (target, donor, _), new in zip(exploits, new_TF)]
