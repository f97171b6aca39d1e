"""A PBT study's figures: every member's hyperparameter trajectory coloured by its
final score, and the population's exploits with the winner's ancestry picked out."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from jaxmlp.common import numbers
from jaxmlp.core import objective as objective_lib
from jaxmlp.report import figures


def final_scores(pbt: dict[str, Any]) -> np.ndarray:
  """Each member's best epoch value of the objective (NaN where none is finite)."""
  objective = objective_lib.Objective.of(pbt['objective'])
  return np.array([objective.best_value(m['history'][pbt['objective']])
                   if m['history'] else np.nan for m in pbt['members']], np.float64)


def ancestry(pbt: dict[str, Any], lineage: list[dict[str, Any]], member: int
             ) -> list[tuple[int, int, int]]:
  """(first epoch, last epoch + 1, member) segments whose weights `member` ends with,
  oldest first: walking back through the exploits that made it a copy."""
  segments, end = [], pbt['epochs']
  by_target = {}
  for row in lineage:
    by_target.setdefault(row['target'], []).append(row)
  while True:
    earlier = [r for r in by_target.get(member, []) if r['epoch'] < end]
    if not earlier:
      segments.append((0, end, member))
      return segments[::-1]
    row = earlier[-1]
    segments.append((row['epoch'], end, member))
    member, end = row['donor'], row['epoch']


def trajectories(pbt: dict[str, Any], lineage: list[dict[str, Any]], path: Path) -> Path:
  """One panel per hyperparameter: every member's own values over the epochs (its
  lineage's, as its record holds them), coloured by its final score; the winner
  bold. Below, the exploits (donor to target, grey) and the winner's ancestry (red)."""
  dims = pbt['dimensions']
  scores = final_scores(pbt)
  finite = scores[np.isfinite(scores)]
  low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
  norm = matplotlib.colors.Normalize(low, high if high > low else low + 1e-9)
  # Bright is better, whichever way the objective goes.
  minimize = objective_lib.Objective.of(pbt['objective']).minimize
  cmap = plt.get_cmap('viridis_r' if minimize else 'viridis')
  fig, axes = plt.subplots(len(dims) + 1, 1, figsize=(8, 2.6 * (len(dims) + 1)),
                           sharex=True, squeeze=False)
  axes = axes[:, 0]
  epochs = np.arange(1, pbt['epochs_done'] + 1)
  winner = pbt.get('winner')
  for ax, dim in zip(axes, dims):
    for k, m in enumerate(pbt['members']):
      values = numbers.nan_if_none(m['schedule'][dim['field']])
      color = 'lightgrey' if not np.isfinite(scores[k]) else cmap(norm(scores[k]))
      ax.step(epochs[:len(values)], values, where='post', color=color,
              lw=2.6 if k == winner else 0.9, zorder=3 if k == winner else 2,
              label=f'winner (member {k})' if k == winner else None)
    if dim['log']:
      ax.set_yscale('log')
    ax.set_ylabel(dim['field'])
    if winner is not None:
      ax.legend(loc='best', fontsize=8)
  fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes[:-1]),
               label=f'best {pbt["objective"]}')
  ax = axes[-1]
  for row in lineage:
    ax.annotate('', xy=(row['epoch'] + 0.5, row['target']), xytext=(row['epoch'], row['donor']),
                arrowprops=dict(arrowstyle='->', color='grey', lw=0.7, alpha=0.6))
  if winner is not None:
    # One path: epochs start+1..end as member, then straight up or down to its copy.
    route = [(x + 0.5, member) for start, end, member in ancestry(pbt, lineage, winner)
             for x in (start, end)]
    ax.plot(*zip(*route), color='tab:red', lw=2.5)
  ax.set_ylim(-0.5, len(pbt['members']) - 0.5)
  ax.set_ylabel('member')
  ax.set_xlabel('epoch')
  ax.set_title("exploits (donor -> target) and the winner's ancestry (red)", fontsize=9)
  return figures.save(fig, path)
