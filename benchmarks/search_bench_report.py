"""search_bench.py's output: medians and ratios over repetitions, section 2's best
value by a fraction of the time, the Markdown tables and the plot, from the JSON the
runs wrote (nothing here runs a search)."""

import statistics
from pathlib import Path

import numpy as np

import timing

FRACTIONS = (0.25, 0.5, 1.0)
SECTION2 = ('hyperband', 'grid')  # with the first engine contender


def label_of(name: str) -> str:
  if name.startswith('engine_k'):
    k = int(name[len('engine_k'):])
    return f"engine, optuna.slots={k}{' (what the devices hold)' if k == 0 else ''}"
  return {'single': 'engine, one trial at a time (1 slot)',
          'keras': 'Optuna + Keras, one model per trial', 'hyperband': 'Hyperband (engine)',
          'grid': 'grid (engine)'}[name]


def summarize(out: dict) -> None:
  """Medians over repetitions and ratios against 'one at a time', into out['summary']."""
  runs = out['runs']
  summary = {}
  for name, reps in runs.items():
    if not reps:
      continue
    walls = [r['wall_s'] for r in reps]
    row = dict(wall_s=statistics.median(walls), reps=len(reps))
    if 'complete' in reps[0]:
      rates = [(r['complete'] + r['pruned']) / r['wall_s'] * 3600 for r in reps]
      row.update(trials_per_hour=statistics.median(rates),
                 epochs_per_s=statistics.median(r['epochs_trained'] / r['wall_s'] for r in reps))
      single = runs.get('single') or []
      if name != 'single' and len(single) >= 1:
        n = min(len(single), len(reps))
        single_rates = [(r['complete'] + r['pruned']) / r['wall_s'] * 3600
                        for r in single[:n]]
        row['over_single'] = timing.paired_ratio(rates[:n], single_rates)
    summary[name] = row
  out['summary'] = summary


def best_at(curve: list, seconds: float) -> float | None:
  best = None
  for t, value in curve:
    if t <= seconds:
      best = value
  return best


def section2(out: dict) -> dict | None:
  """Per repetition, the longest of the three searches' wall time; per search, the
  median over repetitions of the best reached by each fraction of it."""
  runs = out['runs']
  engine = next((n for n in runs if n.startswith('engine_k')), None)
  three = [n for n in (engine, *SECTION2) if n and runs.get(n)]
  if not three:
    return None
  reps = min(len(runs[n]) for n in three)
  if not reps:
    return None
  longest = [max(runs[n][r]['wall_s'] for n in three) for r in range(reps)]
  extra = [n for n in runs if n not in three and len(runs[n]) >= reps]
  table = {}
  for name in three + extra:
    row = {}
    for fraction in FRACTIONS:
      values = [best_at(runs[name][r]['curve'], fraction * longest[r]) for r in range(reps)]
      row[str(fraction)] = (statistics.median(values) if all(v is not None for v in values)
                            else None)
    table[name] = row
  return dict(searches=three, extra=extra, longest_s=statistics.median(longest), best=table)


def fmt(value, digits=4) -> str:
  return '-' if value is None else f'{value:.{digits}f}'


def render(out: dict) -> str:
  env, a = out['environment'], out['args']
  lines = [
      f"jaxmlp search benchmark, {env['date']}: {env['device']} x{env['device_count']} "
      f"(host {env['host_cpu']}, {env['host_cores']} cores); jax {env['jax']}, "
      f"flax {env['flax']}, optax {env['optax']}, optuna {out['optuna']}, python "
      f"{env['python']}.",
      f"Problem: finetune_optuna's space (RMSprop, HeNormal, hidden 64|128 x 256|512, "
      f"L2 log-uniform [1e-7, 1e-1], lr log-uniform [1e-4, 1e-1]), objective val_accuracy, "
      f"first {a['rows']:,} MNIST training rows ({out['train_rows']:,} train / "
      f"{out['val_rows']:,} validation), batch 256, no shuffle, {a['epochs']} epochs per "
      f"trial, seeds=1; TPE (seed {a['search_seed']}), pruner {a['pruner']}, "
      f"{a['trials']} trials; Optuna storage {a['storage']}; matmul precision "
      f"{env['matmul_precision']}. {_plural(out['reps'], 'repetition')}, contenders back "
      f"to back (reversed order on odd repetitions): times are medians, ratios medians of "
      f"per-repetition ratios. `{env['command']}`.",
      '']
  summary = out.get('summary', {})
  s1 = [n for n in out['runs'] if n in summary and 'trials_per_hour' in summary[n]]
  if s1:
    lines += ['| search (same sampler, pruner, trials, epochs) | slots per program; most '
              'trials at once | programs built; slot-epochs busy | wall s (compiles incl.) '
              '| trials complete / pruned / failed | epochs trained | trials per hour '
              '| vs one at a time | best val_accuracy (complete trials) |',
              '|---|---|---|---|---|---|---|---|---|']
    for name in s1:
      row, last = summary[name], out['runs'][name][-1]
      note = ''
      if name == 'keras' and a['trials_keras'] != a['trials']:
        note = f" ({a['trials_keras']} of {a['trials']} trials: rate from those)"
      ratio = row.get('over_single')
      use = '-'
      if last.get('slot_epochs'):
        use = (f"{last['programs_built']}; {last['busy_slot_epochs']} of "
               f"{last['slot_epochs']} ({last['busy_slot_epochs'] / last['slot_epochs']:.0%})")
      elif name == 'keras':
        use = 'a model per trial'
      lines.append(
          f"| {label_of(name)}{note} | {', '.join(map(str, last['slots']))}; "
          f"{last.get('max_running', 1)} | {use} "
          f"| {row['wall_s']:.1f} | {last['complete']} / {last['pruned']} / {last['failed']} "
          f"| {last['epochs_trained']} | {row['trials_per_hour']:,.0f} "
          f"| {'1.00x' if name == 'single' else (f'{ratio:.2f}x' if ratio else '-')} "
          f"| {fmt(last['best_value'])} |")
    if 'keras' not in out['runs'] and 'keras' in a['contenders'].split(','):
      lines.append(f"| Optuna + Keras | - | - | {out['keras_note']}: skipped | - | - | - | - "
                   '| - |')
    lines += ['', '- trials per hour: (complete + pruned) / wall time; the budget counts '
              'every trial but those failed by an interrupted worker (asked again), as '
              'jaxmlp\'s OptunaWorker.may_ask does. Counts, epochs and best value are from the last '
              'repetition. The engine\'s search runs at most K trials at once, in programs '
              'of K/S slots (S: the structures the space can need, here its 4 hidden-size '
              'pairs; a structure\'s programs share one executable); '
              'trials that start together are sampled without each other\'s results, and a '
              'pruner judges a trial by completed trials only (the median pruner waits for '
              '5): more slots can mean fewer pruned trials and more epochs per trial; epochs '
              'per second separates the engine\'s speed from that: '
              + ', '.join(f"{label_of(n)} {summary[n]['epochs_per_s']:.1f}" for n in s1) + '. '
              'Slot-epochs busy: of the slots the programs\' epochs computed (every slot of '
              'a program that holds a trial is trained each epoch, an empty one too), those '
              'that held a trial.']
    if 'single' in out['runs']:
      lines.append('- one at a time: optuna.slots=1, programs of 1 slot (one per '
                   'structure, up to 4), each compiled once and refilled.')
    lines.append('- programs built: executables compiled (programs of one structure and size '
                 'share one).')
    if 'keras' in out['runs']:
      lines.append(f"- Keras: {out['keras_note']}.")
    lines.append('')
  s2 = out.get('section2')
  if s2:
    fractions = ' | '.join(f"by {int(f * 100)}% ({f * s2['longest_s']:.0f} s)"
                           for f in FRACTIONS)
    lines += [f'| best val_accuracy reached | wall s | models finished | epochs trained '
              f'| {fractions} |', '|---|---|---|---|' + '---|' * len(FRACTIONS)]
    for name in s2['searches'] + s2['extra']:
      last = out['runs'][name][-1]
      models = last.get('models', last.get('complete', 0) + last.get('pruned', 0)
                        + last.get('failed', 0))
      extra = ' (extra)' if name in s2['extra'] else ''
      cells = ' | '.join(fmt(s2['best'][name][str(f)]) for f in FRACTIONS)
      lines.append(f"| {label_of(name)}{extra} | {summary[name]['wall_s']:.1f} | {models} "
                   f"| {last['epochs_trained']} | {cells} |")
    lines += ['', f"- the fractions are of the longest of the three searches' wall time "
              f"({', '.join(label_of(n) for n in s2['searches'])}); '-': nothing finished "
              'yet. A model\'s time is when its result.json was written (an Optuna trial: '
              'when it completed or was pruned; a grid or Hyperband member: when its '
              'program ended); its value is its best epoch\'s val_accuracy, pruned trials '
              'included. Hyperband and the grid search the 36-point grid '
              '(configs/finetune.py), Hyperband with max_epochs '
              f"{a['epochs']}, factor 3. Extra rows (dashed in the plot) are section 1's "
              'other runs, timed the same way (Keras: when each trial ended).']
    if out.get('plot'):
      lines.append(f"- plot: {out['plot']}")
    lines.append('')
  if 'total_s' in out:
    lines.append(f"total benchmark time {out['total_s']:.0f} s; 1-minute load average "
                 f"{env['load_average_at_start']} at the start, "
                 f"{env.get('load_average_at_end')} at the end ({env['host_cores']} cores).")
  return '\n'.join(lines).rstrip('\n')


def _plural(n: int, noun: str) -> str:
  return f"{n} {noun}{'' if n == 1 else 's'}"


def plot(out: dict, path: str) -> str | None:
  """Best val_accuracy so far against seconds, one step curve per run."""
  s2 = out.get('section2')
  if not s2:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5))
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  lows = []
  for i, name in enumerate(s2['searches'] + s2['extra']):
    extra = name in s2['extra']
    for r, run in enumerate(out['runs'][name]):
      if not run['curve']:
        continue
      t, v = zip(*run['curve'])
      t, v = [0.0, *t, run['wall_s']], [None, *v, v[-1]]
      ax.step(t, [np.nan if x is None else x for x in v], where='post',
              color=colors[i % len(colors)], linestyle='--' if extra else '-',
              linewidth=1.0 if extra else 1.8, alpha=0.6 if r else 1.0,
              label=label_of(name) if r == 0 else None)
      lows.append(run['curve'][-1][1])
  for f in FRACTIONS[:-1]:
    ax.axvline(f * s2['longest_s'], color='grey', linewidth=0.6, linestyle=':')
  if lows:   # the final bests and what led up to them; early, poor models fall below
    top = max(lows)
    ax.set_ylim(max(0.0, min(lows) - max(0.05, top - min(lows))), min(1.0, top + 0.01))
  a = out['args']
  ax.set(xlabel='seconds since the search started (compiles included)',
         ylabel='best val_accuracy so far',
         title=f"{a['rows']:,} rows, {a['epochs']} epochs per trial, {a['trials']} trials")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc='lower right')
  fig.tight_layout()
  Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path
