"""Ranking points by several objectives: dominance, non-dominated sorting, crowding
distance, feasibility (Deb's rules) and the hypervolume, on losses (every objective
minimized; objective.py turns a study's metrics into losses).

The semantics are Optuna's, so where a point is feasible, the front here is
`study.best_trials` there:
- a NaN loss (a diverged member) is +inf, the worst value;
- a point with a positive constraint violation is infeasible: every feasible point
  ranks before every infeasible one, and infeasible points rank by their violation
  alone (`optuna.samplers.NSGAIISampler(constraints_func=...)`). Where none is
  feasible, rank 0 holds the least violation (Optuna's best_trials is then empty). A
  NaN constraint (Optuna refuses one) is an infinite violation;
- equal points share their rank.
Shapes: N points, M objectives (`losses_NM`).
"""

import numpy as np


def _points(values, what: str) -> np.ndarray:
  """A float64 (N, K) copy; no points at all is (0, 0)."""
  values = np.array(values, dtype=np.float64)
  if values.size == 0:
    return values.reshape(len(values) if values.ndim else 0, 0)
  if values.ndim != 2:
    raise ValueError(f'{what}: one row a point, shape (N, K), not {values.shape}')
  return values


def as_losses(losses_NM) -> np.ndarray:
  """Float64 (N, M) copy, NaN as +inf."""
  losses_NM = _points(losses_NM, 'losses')
  losses_NM[np.isnan(losses_NM)] = np.inf
  return losses_NM


def failed_as_worst(losses_NM) -> np.ndarray:
  """A copy where a point with any loss that is not finite (a diverged member) is
  +inf in every objective: worse than every finite point, so it can be on no front
  of finite points (NaN as +inf in one objective alone would leave it non-dominated
  where its other losses are the smallest)."""
  losses_NM = as_losses(losses_NM)
  losses_NM[~np.isfinite(losses_NM).all(axis=1)] = np.inf
  return losses_NM


def dominates(a_M, b_M) -> bool:
  """a is no worse than b in every objective and better in one."""
  a_M, b_M = as_losses([a_M])[0], as_losses([b_M])[0]
  return bool(np.all(a_M <= b_M) and np.any(a_M < b_M))


def violation(constraints_NC) -> np.ndarray:
  """Each point's total violation: the sum of its constraint values above 0 (a
  constraint holds at <= 0, as in Optuna); NaN is +inf; no constraints, 0."""
  c_NC = _points(constraints_NC, 'constraints')
  c_NC[np.isnan(c_NC)] = np.inf
  return np.clip(c_NC, 0, None).sum(axis=1)


def _front_of_sorted(unique_NM: np.ndarray) -> np.ndarray:
  """The non-dominated rows of unique, lexicographically sorted rows. Sorted so, a
  row can be dominated only by a row before it."""
  n, m = unique_NM.shape
  if m == 1:
    return np.arange(n) == 0
  if m == 2:
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], unique_NM[:-1, 1]]))
    front = unique_NM[:, 1] < best_before
    front[0] = True   # first in order: nothing can dominate it, even at +inf
    return front
  front = np.ones(n, dtype=bool)
  for i in range(1, n):   # O(N^2 M): fronts here are a population, not millions
    front[i] = not np.any(np.all(unique_NM[:i] <= unique_NM[i], axis=1))
  return front


def _peel(losses_NM: np.ndarray) -> np.ndarray:
  """Non-dominated ranks, 0 the front, by peeling front after front."""
  if len(losses_NM) == 0:
    return np.zeros(0, dtype=int)
  unique_UM, point_to_unique = np.unique(losses_NM, axis=0, return_inverse=True)
  ranks_U = np.zeros(len(unique_UM), dtype=int)
  left = np.arange(len(unique_UM))
  rank = 0
  while left.size:
    front = _front_of_sorted(unique_UM[left])
    ranks_U[left[front]] = rank
    left = left[~front]
    rank += 1
  return ranks_U[point_to_unique.reshape(-1)]


def nondominated_ranks(losses_NM, violation_N=None) -> np.ndarray:
  """Each point's rank, 0 the front: feasible points by non-dominated sorting, then
  infeasible ones (violation > 0) by their violation, from the least."""
  losses_NM = as_losses(losses_NM)
  if violation_N is None:
    return _peel(losses_NM)
  violation_N = np.nan_to_num(np.asarray(violation_N, np.float64), nan=np.inf)
  feasible = violation_N <= 0
  ranks_N = np.zeros(len(losses_NM), dtype=int)
  ranks_N[feasible] = _peel(losses_NM[feasible])
  after = ranks_N[feasible].max(initial=-1) + 1
  ranks_N[~feasible] = after + _peel(violation_N[~feasible, None])
  return ranks_N


def crowding_distance(losses_NM) -> np.ndarray:
  """NSGA-II's crowding distance among the given points (one front), as Optuna
  computes it: per objective, the gap between a point's neighbours in sorted order
  over the range of finite values; the extremes are infinitely far; an objective
  where every point is equal adds nothing; equal values add no gap. Between equal
  values, who is whose neighbour follows the previous objective's order, as there."""
  losses_NM = as_losses(losses_NM)
  n, m = losses_NM.shape
  distance_N = np.zeros(n)
  order = np.arange(n)
  for j in range(m):   # each objective's stable sort starts from the last one's order
    order = order[np.argsort(losses_NM[order, j], kind='stable')]
    sorted_N = losses_NM[order, j]
    if n == 0 or sorted_N[0] == sorted_N[-1]:
      continue
    padded = np.concatenate([[-np.inf], sorted_N, [np.inf]])
    finite = sorted_N[np.isfinite(sorted_N)]
    width = finite.max() - finite.min() if finite.size else 0.0
    width = width if width > 0 else 1.0
    with np.errstate(invalid='ignore'):
      gaps = np.where(padded[2:] == padded[:-2], 0.0, padded[2:] - padded[:-2])
    distance_N[order] += gaps / width
  return distance_N


def crowding_by_front(losses_NM, ranks_N) -> np.ndarray:
  """Each point's crowding distance within its own front."""
  losses_NM, ranks_N = as_losses(losses_NM), np.asarray(ranks_N)
  distance_N = np.zeros(len(ranks_N))
  for rank in np.unique(ranks_N):
    members = np.flatnonzero(ranks_N == rank)
    distance_N[members] = crowding_distance(losses_NM[members])
  return distance_N


def best_first(losses_NM, violation_N=None) -> np.ndarray:
  """Indices in NSGA-II's order: by rank, then by crowding distance, largest first;
  ties keep the points' order."""
  ranks_N = nondominated_ranks(losses_NM, violation_N)
  crowding_N = crowding_by_front(losses_NM, ranks_N)
  return np.lexsort((-crowding_N, ranks_N))


def hypervolume(losses_NM, reference_M) -> float:
  """The volume the points dominate up to `reference_M` (a point not strictly
  better than the reference in every objective adds nothing)."""
  losses_NM, reference_M = as_losses(losses_NM), np.asarray(reference_M, np.float64)
  if np.isnan(reference_M).any():
    raise ValueError(f'the reference point {reference_M} has a NaN')
  if len(losses_NM) == 0:
    return 0.0
  inside = np.all(losses_NM < reference_M, axis=1)
  points = losses_NM[inside]
  if len(points) == 0:
    return 0.0
  points = points[_peel(points) == 0]
  return float(_slice_volume(np.unique(points, axis=0), reference_M))


def _slice_volume(points_NM: np.ndarray, reference_M: np.ndarray) -> float:
  """Exact volume by slicing along the last objective (HSO); points are unique and
  mutually non-dominated in all M objectives, each strictly inside the reference."""
  m = points_NM.shape[1]
  if m == 1:
    return float(reference_M[0] - points_NM[:, 0].min())
  if m == 2:
    order = np.argsort(points_NM[:, 0])
    x, y = points_NM[order, 0], points_NM[order, 1]
    right = np.concatenate([x[1:], [reference_M[0]]])
    return float(np.sum((right - x) * (reference_M[1] - y)))
  order = np.argsort(points_NM[:, -1], kind='stable')
  points_NM = points_NM[order]
  levels = np.concatenate([points_NM[:, -1], [reference_M[-1]]])
  volume = 0.0
  for i in range(len(points_NM)):
    depth = levels[i + 1] - levels[i]
    if depth <= 0:
      continue
    below = points_NM[:i + 1, :-1]
    below = np.unique(below[_peel(below) == 0], axis=0)
    volume += depth * _slice_volume(below, reference_M[:-1])
  return volume


def spread(losses_NM, k: int) -> np.ndarray:
  """The indices of at most k points of one front, spread along it: the most crowded
  point is dropped, the crowding distances recomputed, until k are left (NSGA-II's
  truncation, one point at a time); the extremes stay. Ties drop the later point.
  Returned in the points' order."""
  losses_NM = as_losses(losses_NM)
  left = np.arange(len(losses_NM))
  while len(left) > max(k, 0):
    crowding = crowding_distance(losses_NM[left])
    drop = len(crowding) - 1 - int(np.argmin(crowding[::-1]))   # the last of the least
    left = np.delete(left, drop)
  return left
