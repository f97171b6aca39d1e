"""The study's figures as PNG files (headless): learning curves, weight violins,
the configurations' results, and a normalized confusion matrix."""

import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import matplotlib.ticker  # pylint: disable=g-import-not-at-top
import numpy as np
import pandas as pd
import seaborn as sns

from jaxmlp.common import numbers
from jaxmlp.store import records as records_lib
from jaxmlp.store import folders

TRAIN, VALIDATION = '#1f77b4', '#ff7f0e'
VIOLIN_SAMPLES = 20_000


def series(runs: list[records_lib.MemberRecord], name: str) -> np.ndarray:
  """(seeds, epochs of the longest seed), with diverged (null) values and the epochs
  after a seed stopped early as NaN."""
  longest = max(len(r.history[name]) for r in runs)
  out = np.full((len(runs), longest), np.nan)
  for row, r in zip(out, runs):
    values = numbers.nan_if_none(r.history[name])
    row[:len(values)] = values
  return out


def mean_series(runs: list[records_lib.MemberRecord], name: str) -> np.ndarray:
  """Mean over seeds, each epoch over the seeds that trained it (NaN where none did)."""
  with np.errstate(all='ignore'), warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)  # an epoch where every value is NaN
    return np.nanmean(series(runs, name), axis=0)


def layers(params: dict) -> list[tuple[str, str]]:
  """(parameter name, title) of every layer, input to output."""
  hidden = sorted((k for k in params if k.startswith('hidden_')),
                  key=lambda k: int(k.split('_')[1]))
  return [(k, f'hidden layer {int(k.split("_")[1]) + 1}') for k in hidden] + [
      ('output', 'output layer')]


def save(fig, path: Path) -> Path:
  """Writes `fig` as a PNG atomically: a fault mid-write leaves the previous file."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=110, bbox_inches='tight')
  plt.close(fig)
  folders.write_atomic(path, buffer.getvalue())
  return path


def _spans_decades(values: np.ndarray) -> bool:
  positive = values[np.isfinite(values) & (values > 0)]
  return positive.size > 0 and positive.max() / positive.min() > 1e3


def learning_curves(runs: list[records_lib.MemberRecord], title: str, path: Path) -> Path:
  """Accuracy (train vs validation) above, loss below; mean over seeds, min-max band."""
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
  lengths = [len(r.history['train_loss']) for r in runs]
  epochs = np.arange(1, max(lengths) + 1)
  for axis, metric, label in ((top, 'accuracy', 'accuracy'), (bottom, 'loss', 'loss')):
    everything = []
    for split, colour, name in (('train', TRAIN, 'train'), ('val', VALIDATION, 'validation')):
      values = series(runs, f'{split}_{metric}')
      everything.append(values)
      with np.errstate(all='ignore'), warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # epochs where every seed is NaN
        mean = np.nanmean(values, axis=0)
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
      axis.plot(epochs, mean, color=colour, label=name, lw=1.6)
      if len(runs) > 1:
        axis.fill_between(epochs, low, high, color=colour, alpha=0.2, lw=0)
    # A seed that stopped early (EarlyStopping) ends where it stopped; the mean and
    # band go on over the seeds still training.
    for r, length in zip(runs, lengths):
      if length < max(lengths):
        axis.axvline(length, color='grey', ls=':', lw=1)
        axis.annotate(f'seed {r.seed} stopped', (length, 1), xycoords=('data', 'axes fraction'),
                      rotation=90, va='top', ha='right', fontsize=7, color='grey')
    axis.set_ylabel(label)
    axis.grid(alpha=0.3)
    if metric == 'loss' and _spans_decades(np.concatenate(everything, axis=None)):
      axis.set_yscale('log')
      axis.set_ylabel('loss (log scale)')
  top.legend(loc='lower right')
  bottom.set_xlabel('epoch')
  bottom.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  seeds = f'mean of {len(runs)} seeds, band = min-max' if len(runs) > 1 else '1 seed'
  if len(set(lengths)) > 1:
    seeds += '; dotted: a seed stopped early'
  top.set_title(f'{title}\n({seeds})', fontsize=11)
  return save(fig, path)


def overlaid_curves(configurations: list[tuple[str, list[records_lib.MemberRecord]]], objective: str,
                    title: str, path: Path) -> Path:
  """Validation accuracy above, validation loss below, one colour per configuration
  (mean over its seeds), so that the best ones compare at a glance."""
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for i, (label, runs) in enumerate(configurations):
    for axis, name in ((top, 'val_accuracy'), (bottom, 'val_loss')):
      mean = mean_series(runs, name)
      axis.plot(np.arange(1, len(mean) + 1), mean, color=colours[i % len(colours)],
                lw=1.6, label=label if axis is top else None)
  top.set_ylabel('validation accuracy')
  bottom.set_ylabel('validation loss')
  bottom.set_xlabel('epoch')
  bottom.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  for axis in (top, bottom):
    axis.grid(alpha=0.3)
  top.legend(fontsize=7, loc='lower right')
  top.set_title(f'{title}\n(ranked by {objective}; mean over seeds)', fontsize=11)
  return save(fig, path)


def weight_violins(initial: dict, final: dict, title: str, path: Path) -> Path:
  """Kernel values of each layer before and after training (one seed)."""
  rng = np.random.default_rng(0)
  named = layers(initial)
  fig, axes = plt.subplots(1, len(named), figsize=(3.7 * len(named), 4), squeeze=False)
  for axis, (layer, name) in zip(axes[0], named):
    samples = []
    for params in (initial, final):
      w = np.asarray(params[layer]['kernel'], float).ravel()
      w = w[np.isfinite(w)]
      if w.size > VIOLIN_SAMPLES:
        w = rng.choice(w, VIOLIN_SAMPLES, replace=False)
      samples.append(w)
    if not all(w.size for w in samples):
      axis.text(0.5, 0.5, 'no finite weights\n(diverged)', ha='center', va='center',
                transform=axis.transAxes)
      axis.set_title(name)
      continue
    sns.violinplot(x=np.repeat(['before', 'after'], [len(w) for w in samples]),
                   y=np.concatenate(samples), hue=np.repeat(['before', 'after'],
                                                            [len(w) for w in samples]),
                   palette=['#9ecae1', '#3182bd'], legend=False, ax=axis, cut=0,
                   inner='quartile', linewidth=1)
    axis.set_title(name)
    axis.set_ylabel('kernel value')
    axis.grid(alpha=0.3, axis='y')
  fig.suptitle(f'{title}: weights before and after training', fontsize=11)
  fig.tight_layout()
  return save(fig, path)


# Beyond this many configurations a bar each is unreadable (and the figure huge): their
# objective is drawn as a histogram instead.
MOST_BARS = 60


def configurations(labels: list[str], means: np.ndarray, stds: np.ndarray, metric: str,
                   title: str, path: Path, highlight: str | None = None) -> Path:
  """Every configuration's objective, with the spread over seeds, top to bottom in the
  order given (the caller ranks them, best first, whichever way the metric points);
  more than MOST_BARS: a histogram of them, the highlighted one marked."""
  if len(labels) > MOST_BARS:
    return _histogram(labels, means, metric, title, path, highlight)
  height = max(2.5, 0.28 * len(labels) + 1.2)
  fig, axis = plt.subplots(figsize=(8, height))
  y = np.arange(len(labels))
  colours = ['#d62728' if label == highlight else '#4c72b0' for label in labels]
  axis.barh(y, means, xerr=stds, color=colours, capsize=2)
  axis.set_yticks(y, labels, fontsize=8)
  axis.invert_yaxis()
  finite = means[np.isfinite(means)]
  if finite.size:
    low = max(0.0, finite.min() - 0.05 * (finite.max() - finite.min() + 0.01))
    axis.set_xlim(low, min(1.0, finite.max() + 0.02) if metric.endswith('accuracy') else None)
  axis.set_xlabel(f'{metric} (mean ± std over seeds)')
  axis.set_title(title, fontsize=11)
  axis.grid(alpha=0.3, axis='x')
  return save(fig, path)


def _histogram(labels: list[str], means: np.ndarray, metric: str, title: str, path: Path,
               highlight: str | None) -> Path:
  fig, axis = plt.subplots(figsize=(8, 3.5))
  finite = means[np.isfinite(means)]
  axis.hist(finite, bins=min(60, max(10, len(finite) // 20)), color='#4c72b0')
  if highlight in labels:
    axis.axvline(means[labels.index(highlight)], color='#d62728', lw=1.5, label=highlight)
    axis.legend(fontsize=8)
  axis.set_xlabel(f'{metric} (mean over seeds)')
  axis.set_ylabel('configurations')
  missing = len(means) - len(finite)
  axis.set_title(f'{title}\n({len(labels)} configurations' +
                 (f'; {missing} with no finite value' if missing else '') + ')', fontsize=11)
  axis.grid(alpha=0.3, axis='y')
  return save(fig, path)


def curve_bands(configurations: list[list[records_lib.MemberRecord]], title: str,
                path: Path) -> Path:
  """Every configuration's mean validation accuracy and loss per epoch, as their median
  and 10-90% band over configurations: a study too large for a figure each."""
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
  for axis, name in ((top, 'val_accuracy'), (bottom, 'val_loss')):
    curves = [mean_series(runs, name) for runs in configurations]
    longest = max(len(c) for c in curves)
    table = np.full((len(curves), longest), np.nan)
    for row, curve in zip(table, curves):
      row[:len(curve)] = curve
    with np.errstate(all='ignore'), warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)
      low, median, high = np.nanpercentile(table, [10, 50, 90], axis=0)
    epochs = np.arange(1, longest + 1)
    axis.fill_between(epochs, low, high, color=VALIDATION, alpha=0.25, label='10-90%')
    axis.plot(epochs, median, color=VALIDATION, lw=1.8, marker='o', ms=3, label='median')
    axis.set_ylabel(name.replace('_', ' ').replace('val', 'validation'))
    axis.grid(alpha=0.3)
  top.legend(fontsize=8, loc='lower right')
  bottom.set_xlabel('epoch')
  bottom.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  top.set_title(f'{title}\n({len(configurations)} configurations, each the mean over its '
                'seeds)', fontsize=11)
  return save(fig, path)


def confusion(cm_normalized: np.ndarray, title: str, path: Path) -> Path:
  """Rows = actual digit, normalized per row, two decimals."""
  fig, axis = plt.subplots(figsize=(7.5, 6.5))
  sns.heatmap(cm_normalized, annot=True, fmt='.2f', cmap='Blues', vmin=0, vmax=1,
              square=True, ax=axis, annot_kws={'fontsize': 7},
              cbar_kws={'label': 'fraction of the actual digit'})
  axis.set_xlabel('predicted digit')
  axis.set_ylabel('actual digit')
  axis.set_title(title, fontsize=11)
  return save(fig, path)


def pareto_front(frame, names: list[str], title: str, path: Path,
                 marked: str | None = None) -> Path:
  """Every configuration (a row of report.pareto.ranked: NAME and NAME_std columns,
  pareto_rank, feasible where constrained) in each pair of objectives: the spread
  over seeds as error bars, infeasible ones as crosses, the front's configurations joined in the first objective's order, `marked` circled."""
  pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
  fig, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 4.5), squeeze=False)
  feasible = frame['feasible'] if 'feasible' in frame else pd.Series(True, frame.index)
  on_front = (frame.pareto_rank == 0) & feasible
  front = frame[on_front]
  for axis, (i, j) in zip(axes[0], pairs):
    x, y = names[i], names[j]
    errors = lambda rows, name: np.nan_to_num(rows[f'{name}_std'].to_numpy(float))
    rest = frame[~on_front & feasible]
    axis.errorbar(rest[x], rest[y], xerr=errors(rest, x), yerr=errors(rest, y), fmt='o',
                  color='#9e9e9e', alpha=0.6, markersize=4, capsize=2, label='dominated')
    outside = frame[~feasible]
    if len(outside):
      axis.plot(outside[x], outside[y], 'x', color='#9e9e9e', alpha=0.6, markersize=5,
                label='infeasible')
    line = front.sort_values(x)
    axis.plot(line[x], line[y], '-', color='#4c72b0', alpha=0.7)
    axis.errorbar(front[x], front[y], xerr=errors(front, x), yerr=errors(front, y),
                  fmt='o', color='#4c72b0', markersize=6, capsize=2, label='Pareto front')
    chosen = frame[frame.label == marked]
    if len(chosen):
      axis.plot(chosen[x], chosen[y], 'o', markersize=14, markerfacecolor='none',
                markeredgecolor='#d62728', markeredgewidth=2, label="the original's choice")
    axis.set_xlabel(f'{x} (mean over seeds)')
    axis.set_ylabel(f'{y} (mean over seeds)')
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
  fig.suptitle(title, fontsize=11)
  return save(fig, path)


def growth(frame, path: Path) -> Path:
  """The hypervolume (report.growth.timeline) against the seconds of the run."""
  fig, axis = plt.subplots(figsize=(6, 3.5))
  axis.step(frame.seconds, frame.hypervolume, where='post', color='#4c72b0')
  axis.set_xlabel('seconds since the run started')
  axis.set_ylabel('hypervolume of the front so far')
  axis.grid(alpha=0.3)
  return save(fig, path)
