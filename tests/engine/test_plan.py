"""The planner: programs cut as the runner resumes them, sized to the devices' memory,
and a run that cannot fit refused in one line before anything is allocated."""

import contextlib
import dataclasses
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import Phase, given, settings, strategies as st
from jax.sharding import Mesh

from jaxmlp.core import train
from jaxmlp.engine import devices
from jaxmlp.engine import plan
from jaxmlp.engine import program as program_lib
from jaxmlp.common.errors import UserError
from jaxmlp.studies import study

STRUCTURE = train.Structure(hidden_sizes=(32, 16), batch_size=128, optimizer='rmsprop',
                            use_l2=True)
ROWS, DATA_BYTES = 2000, 4_000_000
ROOMY = 1 << 40   # a budget nothing here comes near


def _cut(done, requested=0, structure=STRUCTURE):
  return [(p.number, list(p.members), p.slots)
          for p in plan.cut(structure, done, requested, DATA_BYTES, ROWS)]


def test_a_batched_group_is_cut_as_if_none_had_run_and_leftovers_run_after(monkeypatch):
  monkeypatch.setenv(plan.MEMORY_ENV, str(ROOMY))
  monkeypatch.setattr(plan.jax, 'devices', lambda: [None])   # one device: programs of 2
  batched = dataclasses.replace(STRUCTURE, arithmetic='batched')
  assert _cut([False] * 5, 2, batched) == [(0, [0, 1], 2), (1, [2, 3], 2), (2, [4], 2)]
  # Program 0 is finished, program 1 half (work added to the run): its other member
  # and the unfinished members of no program run in extra programs numbered after.
  done = [True, True, True, False, False]
  assert _cut(done, 2, batched) == [(2, [4], 2), (3, [3], 2)]


def test_members_computed_alone_run_what_is_left_packed(monkeypatch):
  """Their numbers do not depend on the program (test_invariance.py): what is left
  is cut anew, as densely as the slots allow, and as a killed run cut it."""
  monkeypatch.setenv(plan.MEMORY_ENV, str(ROOMY))
  monkeypatch.setattr(plan.jax, 'devices', lambda: [None])
  assert STRUCTURE.alone('cpu')
  assert _cut([False] * 5, requested=2) == [(0, [0, 1], 2), (1, [2, 3], 2), (2, [4], 2)]
  assert _cut([True, True, True, False, False], requested=2) == [(0, [3, 4], 2)]
  # Killed during program 1 of the first cut: the rerun's program 0 is that program.
  assert _cut([True, True, False, False, False], requested=2) == [(0, [2, 3], 2),
                                                                   (1, [4], 2)]
  # Memory changed: 3 a program now, the same members left.
  assert _cut([True, True, False, False, False], requested=3) == [(0, [2, 3, 4], 3)]


def test_members_per_program_follows_the_request_the_devices_and_the_group(monkeypatch):
  monkeypatch.setenv(plan.MEMORY_ENV, str(ROOMY))
  n = len(jax.devices())
  size = lambda requested, members: plan.members_per_program(STRUCTURE, requested, members,
                                                             DATA_BYTES, ROWS)
  assert size(0, 3) == -(-3 // n) * n                   # what the group needs
  assert size(0, 1000) == plan.CPU_MEMBERS_PER_DEVICE * n
  assert size(3, 7) == -(-3 // n) * n                   # what was asked
  # Memory, not the CPU's cap, bounds a wide network's programs.
  wide = train.Structure(hidden_sizes=(4096, 4096), batch_size=256)
  three = DATA_BYTES + 3 * plan.slot_bytes(wide, ROWS)
  monkeypatch.setenv(plan.MEMORY_ENV, str(three))
  assert plan.members_per_program(wide, 0, 1000, DATA_BYTES, ROWS) == 3 * len(jax.devices())


def _line(error) -> str:
  text = str(error.value)
  assert '\n' not in text
  return text


def test_what_cannot_fit_is_refused_in_one_line(monkeypatch):
  slot = plan.slot_bytes(STRUCTURE, ROWS)
  monkeypatch.setenv(plan.MEMORY_ENV, str(DATA_BYTES + slot - 1))
  with pytest.raises(UserError) as refused:
    plan.cut(STRUCTURE, [False] * 3, 0, DATA_BYTES, ROWS)
  assert _line(refused).startswith('hidden_sizes (32, 16) (rmsprop, batch 128): one '
                                   'member needs ')
  assert 'use smaller layers' in _line(refused)
  monkeypatch.setenv(plan.MEMORY_ENV, str(DATA_BYTES + 2 * slot))
  many = 3 * len(jax.devices())
  with pytest.raises(UserError, match='3 members need .*ask for fewer with '
                     '--config.optuna.slots$') as refused:
    plan.require_fit([STRUCTURE], many, DATA_BYTES, ROWS, flag='optuna.slots')
  _line(refused)


def test_the_command_line_refuses_it_in_one_line_without_a_traceback(tmp_path):
  out = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.launch', '--study=baseline', '--epochs=1',
       '--data_limit=2000', "--config.hidden_sizes=(100000000, 256)",
       f'--output_dir={tmp_path}'], capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr
  assert 'Traceback' not in out.stderr
  assert re.fullmatch(r'error: hidden_sizes \(100000000, 256\) \(adam, batch 256\): one '
                      r'member needs [\d.]+ GB on a device \(the data included\), which has '
                      r'[\d.]+ GB available; use smaller layers, a smaller batch_size or '
                      r'fewer rows \(--data_limit\)', out.stderr.strip().splitlines()[-1])


# -- the estimate against XLA's own figure, and plans against a budget ---------------

structures = st.builds(
    train.Structure,
    hidden_sizes=st.lists(st.integers(1, 96), min_size=1, max_size=3).map(tuple),
    optimizer=st.sampled_from(['adam', 'rmsprop', 'sgd']),
    use_dropout=st.booleans(), use_l2=st.booleans(), shuffle=st.booleans(),
    batch_size=st.integers(1, 64))


def _xla_bytes(structure: train.Structure, block: int, rows: int) -> int:
  """XLA's arguments + outputs + temporaries of the compiled epoch program."""
  mesh = Mesh(np.array(jax.devices()[:1]), (devices.MEMBER_AXIS,))
  spec = jax.ShapeDtypeStruct
  data = devices.DeviceData(spec((rows, 784), jnp.uint8), spec((rows,), jnp.int32),
                            spec((rows, 784), jnp.uint8), spec((rows,), jnp.int32),
                            spec((rows, 784), jnp.uint8), spec((rows,), jnp.int32))
  hparams = {k: spec((block,), jnp.float32) for k in study.hparams_of(study.baseline())}
  one = {k: jnp.float32(0.5) for k in hparams}
  state = jax.eval_shape(jax.vmap(lambda seed: train.init_state(seed, one, structure)),
                         spec((block,), jnp.uint32))
  tracker = jax.eval_shape(jax.vmap(lambda p: train.init_tracker(p, train.Tracking())),
                           state.params)
  program = program_lib.build_program(structure, train.Tracking(), mesh, block)
  memory = program.epoch.lower(state, tracker, hparams, data).compile().memory_analysis()
  return (memory.argument_size_in_bytes + memory.output_size_in_bytes +
          memory.temp_size_in_bytes), sum(np.prod(a.shape) * a.dtype.itemsize for a in data)


# Each example compiles a program: no shrinking (minutes), the failing example is shown.
@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(structure=structures, block=st.integers(1, 3), rows=st.integers(64, 300))
def test_the_estimate_bounds_what_xla_allocates(structure, block, rows):
  xla, data_bytes = _xla_bytes(structure, block, rows)
  assert block * plan.slot_bytes(structure, rows) + data_bytes >= xla


@contextlib.contextmanager
def _budget(value: int):
  """plan.MEMORY_ENV for one hypothesis example (pytest's monkeypatch would be shared
  by all of them)."""
  before = os.environ.get(plan.MEMORY_ENV)
  os.environ[plan.MEMORY_ENV] = str(value)
  try:
    yield
  finally:
    if before is None:
      del os.environ[plan.MEMORY_ENV]
    else:
      os.environ[plan.MEMORY_ENV] = before


@settings(max_examples=60, deadline=None)
@given(structure=structures, members=st.integers(1, 40), slots=st.floats(0.3, 6.0),
       requested=st.integers(0, 12))
def test_a_plan_never_exceeds_its_budget(structure, members, slots, requested):
  slot = plan.slot_bytes(structure, ROWS)
  budget = DATA_BYTES + int(slots * slot)
  with _budget(budget):
    try:
      programs = plan.cut(structure, [False] * members, requested, DATA_BYTES, ROWS)
    except UserError as e:
      assert '\n' not in str(e) and 'available' in str(e)
      asked = min(requested, members)
      per_device = -(-asked // len(jax.devices())) if asked else 1
      assert DATA_BYTES + per_device * slot > budget   # refused only what cannot fit
      return
  assert sorted(k for p in programs for k in p.members) == list(range(members))
  for p in programs:
    _, block = p.layout(devices.member_mesh())
    assert DATA_BYTES + block * slot <= budget
