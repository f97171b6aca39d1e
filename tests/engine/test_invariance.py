"""A member's numbers depend only on its configuration and seed (member_arithmetic
'alone', 'auto' on a CPU): not on how many members share its program, where in it it
sits, what else trains beside it, or how many devices the program spans. (The searches'
decisions: tests/search/test_layout_decisions.py.)

The matrix runs in one process per simulated device count (1, 2, 3), each training
the same two target members in programs of 1 to 8 slots, in different orders and
mixed with other configurations, and printing a SHA-256 of each target's per-epoch
history, test scores and params.msgpack bytes. A chaotic configuration (RMSprop, lr
0.01, batch 1), where a last-bit difference grows to a visible one, and the baseline
(Adam, batch 256) are both in it. 'batched' (vmap) is shown to differ, so the test
can fail."""

import json
import os
import subprocess
import sys

import pytest

MATRIX = r'''
import hashlib, json, sys
import flax.serialization, numpy as np
from jaxmlp import api
from jaxmlp.core import train
from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import devices, program

arithmetic, slot_counts = sys.argv[1], [int(s) for s in sys.argv[2].split(',')]
cases = sys.argv[3].split(',')
devices.use_cpu_cores(0, int(sys.argv[4]))   # the devices: XLA_FLAGS'
full = data_lib.split(data_lib.load('idx', None))
def rows(n):
  return devices.put_data(data_lib.Split(full.x_train[:n], full.y_train[:n], full.x_val[:200],
                                         full.y_val[:200], full.x_test[:200],
                                         full.y_test[:200]), devices.member_mesh())
CASES = {'chaotic': (dict(optimizer='rmsprop', learning_rate=0.01, batch_size=1), 150),
         'baseline': (dict(), 1000)}
out = {}
for case in cases:
  fields, n = CASES[case]
  data = rows(n)
  members = api.members_of('baseline', seeds=2, epochs=2, member_arithmetic=arithmetic,
                           **fields)
  others = api.members_of('baseline', seeds=1, epochs=2, member_arithmetic=arithmetic,
                          **{**fields, 'learning_rate': (0.003, 0.0003, 0.03, 0.05, 0.07, 0.09)})
  for slots in slot_counts:
    if slots == 1:   # each target alone in its program
      programs = [[m] for m in members]
    else:   # the targets first, or last behind other configurations
      programs = [(members + others)[:slots] if slots % 2 else (others + members)[-slots:]]
    for group in programs:
      where = {id(m): k for k, m in enumerate(group)}
      mesh, block = devices.program_layout(devices.member_mesh(), len(group), len(group))
      result = program.run_program(
          group[0].structure, group[0].tracking,
          {f: np.array([m.hparams[f] for m in group]) for f in group[0].hparams},
          np.array([m.seed for m in group]), data, 2, (mesh, block))
      for m in members:
        if id(m) not in where:
          continue
        k = where[id(m)]
        digest = hashlib.sha256()
        for name in sorted(result.history):
          digest.update(result.history[name][k].tobytes())
        for scores in (result.test_loss, result.test_accuracy, result.test_f1):
          digest.update(scores[k].tobytes())
        digest.update(flax.serialization.msgpack_serialize(program.member(result, k)))
        out.setdefault(f'{case} seed {m.seed}', {})[
            f'{slots} slots as {mesh.size}x{block}'] = digest.hexdigest()
print(json.dumps(out))
'''

# Simulated devices -> the program sizes tried there: alone, 2, 3 and 8 slots on one
# device; 2 and 4 slots over 2 devices (1 and 2 a device); 3 and 6 over 3; 4 and 8 over
# 4. Every process has XLA:CPU's pool of THREADS (--cpu_threads): a member's last bits
# depend on the pool's size (README, "What is guaranteed"), which is otherwise the
# device count.
LAYOUTS = {1: '1,2,3,8', 2: '2,4', 3: '3,6', 4: '4,8'}
THREADS = 4


def _matrix(device_count: int, arithmetic: str = 'auto', slots: str | None = None,
            cases: str = 'chaotic,baseline', platform: str = 'cpu') -> dict:
  """member -> {layout: digest}; on another `platform` (launch/device_check.sh runs it
  on a GPU), its own devices."""
  env = {k: v for k, v in os.environ.items() if k not in ('PJRT_NPROC', 'NPROC')}
  env['JAX_PLATFORMS'] = platform
  if platform == 'cpu':
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={device_count}'
  run = subprocess.run([sys.executable, '-c', MATRIX, arithmetic,
                        slots or LAYOUTS[device_count], cases, str(THREADS)],
                       env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr
  return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def digests() -> dict[str, dict[str, str]]:
  """member -> {'devices x block': digest} over every layout of every device count."""
  merged: dict[str, dict[str, str]] = {}
  for count in LAYOUTS:
    for member, by_layout in _matrix(count).items():
      merged.setdefault(member, {}).update({f'{count} devices: {k}': v
                                            for k, v in by_layout.items()})
  return merged


def test_every_packing_gives_a_member_the_same_bits(digests):
  assert len(digests) == 4   # two members of each configuration
  for member, by_layout in digests.items():
    assert len(by_layout) == 10, by_layout   # 4 + 2 + 2 + 2 programs
    assert len(set(by_layout.values())) == 1, (member, by_layout)


def test_batched_arithmetic_does_depend_on_the_packing():
  """What 'alone' removes (so the test above can fail): vmapped, a member of the
  chaotic configuration gets other bits in a block of 2 than alone."""
  batched = _matrix(1, 'batched', '1,2', 'chaotic')
  assert len(set(batched['chaotic seed 0'].values())) == 2, batched
