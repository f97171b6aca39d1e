"""bench.py's Markdown report, from its JSON (a run cut short renders what it has)."""


def _fmt_s(seconds) -> str:
  if seconds is None:
    return '-'
  if seconds >= 1:
    return f'{seconds:.2f} s'
  if seconds >= 1e-3:
    return f'{seconds * 1e3:.1f} ms'
  return f'{seconds * 1e6:.1f} µs'


def _count(n: int, noun: str) -> str:
  return f"{n} {noun}{'' if n == 1 else 's'}"


def _fmt_compile(seconds: float) -> str:
  # A group whose programs have the shapes of an earlier group's reuses them.
  return f'{seconds:.1f}' if seconds >= 0.05 else 'reused'


def render(out: dict) -> str:
  """The Markdown report: a header, then a table for each section that ran."""
  env = out['environment']
  lines = _header(out)
  for table in (_loops, _sweeps, _throughput, _checkpoint, _invariance):
    lines += table(out)
  if 'total_s' in out:
    lines.append(f"total benchmark time {out['total_s']:.0f} s; 1-minute load average "
                 f"{env['load_average_at_start']} at the start, "
                 f"{env.get('load_average_at_end')} at the end ({env['host_cores']} cores).")
  return '\n'.join(lines).rstrip('\n')


def _header(out: dict) -> list[str]:
  env = out['environment']
  params = out['parameters']
  return [
      f"jaxmlp benchmark, {env['date']}: {env['device']} x{env['device_count']} "
      f"(host {env['host_cpu']}, {env['host_cores']} cores); jax {env['jax']}, "
      f"flax {env['flax']}, optax {env['optax']}, python {env['python']}.",
      f'Baseline MLP 784-128-256-10 ({params:,} parameters), Keras Adam (lr 1e-3), '
      f'no shuffle, float32 (matmul precision {env["matmul_precision"]}). Times: medians '
      f"of {out['reps']} repetitions after a warm-up, every contender timed back to back "
      'in each repetition; ratios: medians of the per-repetition ratios. '
      f"`{env['command']}`.",
      '',
  ]


def _loops(out: dict) -> list[str]:
  """Sections 1 and 2: the engine against the naive loop, Keras and the floor."""
  params = out['parameters']
  loops = out['loops']
  lines = []
  if loops:
    lines += ['| training pass, 1 member | engine | naive jit loop | naive / engine '
              '| Keras fit | Keras / engine | floor | engine / floor |',
              '|---|---|---|---|---|---|---|---|']
    for row in loops.values():
      per = row['updates_per_epoch'] if row['batch_size'] == 1 else 1
      unit = 'per update' if per > 1 else 'per epoch'
      case = (f"batch {row['batch_size']}, {row['rows']:,} rows "
              f"({row['updates_per_epoch']:,} updates/epoch), {unit}")
      has_keras = row['keras_epoch_s'] is not None
      keras = _fmt_s(row['keras_epoch_s'] / per) if has_keras else row['keras_note']
      keras_ratio = f"{row['keras_over_engine']:.1f}x" if has_keras else '-'
      lines.append(
          f"| {case} | {_fmt_s(row['engine_epoch_s'] / per)} | "
          f"{_fmt_s(row['naive_epoch_s'] / per)} | {row['naive_over_engine']:.1f}x | "
          f"{keras} | {keras_ratio} | {_fmt_s(row['floor_epoch_s'] / per)} | "
          f"{row['engine_over_floor']:.1f}x |")
    lines.append('')
    notes = []
    if 'batch256' in loops:
      r = loops['batch256']
      notes.append(f"floor at batch 256: 6 x {params:,} parameters x {r['rows']:,} rows = "
                   f"{r['flops_per_epoch'] / 1e9:.1f} GFLOP per epoch at "
                   f"{r['matmul_flops'] / 1e9:.1f} GFLOP/s (2048x2048 float32 jax matmul); "
                   f"the engine's training pass reaches "
                   f"{r['flops_per_epoch'] / r['engine_epoch_s'] / 1e9:.1f} GFLOP/s.")
    if 'batch1' in loops:
      r = loops['batch1']
      notes.append(f"floor at batch 1: 32 bytes x {params:,} parameters = "
                   f"{r['bytes_per_update'] / 1e6:.2f} MB per update (w, gradient, Adam m and "
                   f"v, each read and written once) at {r['bandwidth_bytes_per_s'] / 1e9:.1f} "
                   f"GB/s (jitted axpy loop over a {r['working_set_bytes'] / 1e6:.2f} MB "
                   f"working set); a jitted no-op costs {_fmt_s(out['floors']['dispatch_s'])} "
                   'per call from Python.')
      if r.get('adam_update_epoch_s') is not None:
        per = r['updates_per_epoch']
        notes.append(
            f"where a batch-1 update goes: the same training pass with SGD instead of "
            f"Adam takes {_fmt_s(r['engine_sgd_epoch_s'] / per)} per update (forward, "
            f"backward, one elementwise pass over the weights); Keras' Adam update "
            f"alone, over a fixed gradient, takes {_fmt_s(r['adam_update_epoch_s'] / per)}"
            f" ({r['adam_update_over_engine']:.0%} of the engine's training step)."
            + (' XLA:CPU writes m, v and w in three separate elementwise passes per '
               'weight array (it has no multi-output fusion), so the update moves 40 '
               'bytes per parameter here, and 32 in the training step, where the '
               'gradient is recomputed inside the m and v passes.'
               if out['environment']['device'].startswith('cpu') else ''))
    keras_notes = {r['keras_note'] for r in loops.values() if r['keras_epoch_s'] is not None}
    if keras_notes:
      notes.append(f"Keras: {', '.join(sorted(keras_notes))}; model.fit(shuffle=False), "
                   'sparse categorical cross-entropy on a softmax output, accuracy metric.')
    diffs = ', '.join(f"batch {r['batch_size']} {r['max_abs_param_diff']:.1e}"
                      for r in loops.values())
    notes.append('same computation check, max |engine weights - naive weights| after '
                 f'one epoch from the same initial weights: {diffs}.')
    lines += [f'- {n}' for n in notes] + ['']
  return lines


def _sweeps(out: dict) -> list[str]:
  """Section 3: K members in one group against K single runs."""
  lines = []
  sweep_256 = [p for p in out['sweep'] if 'epoch_s' in p]
  if sweep_256:
    one = next(p for p in sweep_256 if p['k'] == 1)
    lines += ['| sweep, batch 256, 48,000 rows + validation | one vmapped group s/epoch '
              '| K single runs s/epoch (K x 1-member) | speedup | s/epoch per member '
              '| compile s (per group) |', '|---|---|---|---|---|---|']
    for p in sweep_256:
      lines.append(f"| K = {p['k']} | {p['epoch_s']:.3f} | {p['k'] * one['epoch_s']:.3f} | "
                   f"{p['speedup']:.2f}x | {p['epoch_s'] / p['k']:.3f} | "
                   f"{_fmt_compile(p['compile_s'])} |")
    lines.append('')
  if out['sweep_batch1']:
    one = next(p for p in out['sweep_batch1'] if p['k'] == 1)
    rows = one['rows']
    lines += [f'| sweep, batch 1, {rows:,} rows, training pass | one vmapped group per update '
              '| K single runs per update (K x 1-member) | speedup | per member-update |',
              '|---|---|---|---|---|']
    for p in out['sweep_batch1']:
      update = p['epoch_s'] / rows
      lines.append(f"| K = {p['k']} | {_fmt_s(update)} | "
                   f"{_fmt_s(p['k'] * one['epoch_s'] / rows)} | {p['speedup']:.2f}x | "
                   f"{_fmt_s(update / p['k'])} |")
    lines.append('')
  if sweep_256 or out['sweep_batch1']:
    lines += ['- K members differ in learning rate (log-spaced 1e-4..1e-2); at batch 256 '
              'they run as a study runs them, planned and run by plan.train_group (epoch = '
              'training + validation + metrics to the host), at batch 1 as the training '
              'pass of the first table, both cut into programs by the planner (plan.cut): '
              'programs of up to 4 members per CPU device (plan.members_per_program) run '
              'one after another, each on as few of the devices as give every device the '
              'same number of members (devices.program_layout). "K single runs" '
              'is K x the 1-member time measured in the same repetitions (compilation '
              'paid once, as a loop in one process would).', '']
  return lines




def _throughput(out: dict) -> list[str]:
  """--sections=throughput: training throughput against the matmul rate."""
  rows = out.get('throughput') or []
  if not rows:
    return []
  lines = ['| throughput, batch 256, 48,000 rows | training pass s/epoch | of the matmul rate '
           '| epoch program (+ validation) s/epoch | of the matmul rate '
           '| training pass GFLOP/s | 2048^2 matmul GFLOP/s |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(
        f"| {_count(r['members'], 'member')} ({_count(r['members_per_program'], 'slot')}) "
        f"| {r['train_epoch_s']:.3f} | "
        f"{r['train_over_matmul']:.2f} | {r['fit_epoch_s']:.3f} | {r['fit_over_matmul']:.2f}"
        f" | {r['flops_per_epoch'] / r['train_epoch_s'] / 1e9:.1f} | "
        f"{r['matmul_flops'] / 1e9:.1f} |")
  lines += ['', '- 6 x parameters x 48,000 rows x members FLOPs per epoch (forward 2, '
            'backward 4; the validation pass is not counted, so the epoch program\'s ratio '
            'is lower) over the rate of a 2048x2048 float32 matmul timed in the same '
            'repetitions; ratios are medians of the per-repetition ratios. The programs '
            'are engine.build_program\'s train_pass and epoch, on the layout run_program '
            'gives that many members (padding slots included in "slots").', '']
  return lines


def _checkpoint(out: dict) -> list[str]:
  """Section 4: what in-program checkpoints cost the baseline study."""
  c = out.get('checkpoint') or {}
  policies = {name: p for name, p in c.get('policies', {}).items() if 'epoch_s' in p}
  if not policies:
    return []
  lines = [f"| in-program checkpoints: baseline, {_count(c['members'], 'member')} "
           f"({_count(c['members_per_program'], 'slot')}), {c['rows']:,} rows, "
           f"{_count(c['epochs'], 'epoch')} "
           '| fit time per epoch | with / without | overhead | checkpoints saved '
           '| saving held training up (of fit time) |', '|---|---|---|---|---|---|']
  for name, p in policies.items():
    label = {'none': 'none (checkpoint=None)', 'auto': "Policy 'auto'",
             '1': "Policy '1' (every epoch)"}.get(name, f"Policy '{name}'")
    if name == 'none':
      lines.append(f"| {label} | {_fmt_s(p['epoch_s'])} | - | - | 0 | - |")
      continue
    saves = sorted({r['saves'] for r in p['runs']})
    saves = str(saves[0]) if len(saves) == 1 else f'{saves[0]}-{saves[-1]}'
    lines.append(f"| {label} | {_fmt_s(p['epoch_s'])} | {p['over_none']:.3f}x | "
                 f"{p['overhead_pct']:+.1f}% | {saves} | {p['saved_pct']:.2f}% "
                 f"({_fmt_s(p['saved_s'])}) |")
  lines += ['', '- engine.run_program of the baseline study\'s 3 seeds as the runner runs '
            'them (one program), its fit_time_s per epoch: training, validation, the '
            'host\'s bookkeeping between epochs, the saves and the final test pass '
            '(compiling excluded). Overhead: the median of the per-repetition ratios to '
            'the run without checkpoints, minus 1. Held up: the ProgramCheckpoint\'s '
            'saved_seconds (copying the state to the host and handing it to orbax; a '
            'program\'s first save also waits for its write, which \'auto\' times, the '
            'later writes go on in a background thread, the last one waited for outside '
            'the timed span), median over the repetitions; checkpoints go to '
            f"{c['directory']}. A save is never due after the last epoch.", '']
  return lines


def _invariance(out: dict) -> list[str]:
  """Section 5: the layout-invariant arithmetic against the vmapped one."""
  rows = out.get('invariance') or []
  if not rows:
    return []
  lines = ['| training pass, K members in one program | batch | rows | vmapped (batched) | '
           'one by one (invariant) | invariant / batched |', '|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| K={r['k']} | {r['batch']} | {r['rows']:,} | {_fmt_s(r['batched_s'])} | "
                 f"{_fmt_s(r['invariant_s'])} | {r['ratio']:.3f}x |")
  return lines + ['', '- Program.train_pass with `sequential` off (vmap: one batched matmul per '
                  'layer for the device\'s block) and on (lax.map: each member computed as '
                  'it is alone, bit for bit whatever K and the devices), laid out by '
                  'plan.cut over the CPU devices; a block of one is the same program '
                  'either way. Ratio: median of the per-repetition ratios.', '']
