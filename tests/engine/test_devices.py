"""Devices: a CPU split into one per core, program layouts, memory budgets."""

import json
import os
import subprocess
import sys

import jax
import pytest

from jaxmlp.engine import devices
from jaxmlp.core import train

STRUCTURE = train.Structure(hidden_sizes=(32, 16), batch_size=128, optimizer='rmsprop',
                            use_l2=True)


def _python(script: str, xla_flags: str, *args: str) -> dict:
  """The JSON last printed by `script`, run in a fresh process (its own JAX backends)."""
  out = subprocess.run([sys.executable, '-c', script, *args],
                       # CPU devices, also where an accelerator is present.
                       env={**os.environ, 'XLA_FLAGS': xla_flags, 'JAX_PLATFORMS': 'cpu'},
                       capture_output=True, text=True, check=True, timeout=300)
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_members_per_program_fits_the_memory():
  assert devices.members_per_program(STRUCTURE, 0, 3, 0) == 3
  assert devices.members_per_program(STRUCTURE, 0, 7, 0) == devices.CPU_MEMBERS_PER_DEVICE
  assert devices.members_per_program(STRUCTURE, 3, 7, 0) == 3
  assert devices.members_per_program(STRUCTURE, 7, 7, 0) == 7
  big = train.Structure(hidden_sizes=(4096, 4096), batch_size=48_000)
  per_member = devices.bytes_per_member(big)
  memory = devices.device_memory_bytes(jax.devices()[0])
  fits = devices.members_per_program(big, 0, 10_000, 0)
  assert 1 <= fits < 10_000
  assert fits * per_member <= memory // 2


CPU_CORES = r'''
import json, sys, jax
from jaxmlp.engine import devices
asked = devices.use_cpu_cores(int(sys.argv[1]))
print(json.dumps(dict(asked=asked, devices=len(jax.devices()),
                      cores=devices.usable_cores())))
'''


@pytest.mark.parametrize('cpu_max, cores', [
    ('max 100000', 2),            # no quota
    ('150000 100000', 1),         # docker --cpus=1.5: 1 whole core
    ('800000 100000', 2),         # a quota above the affinity mask's 2 cores
    (None, 2),                    # no cgroup v2 file
])
def test_usable_cores_honours_a_container_quota(monkeypatch, tmp_path, cpu_max, cores):
  monkeypatch.setattr(devices.os, 'sched_getaffinity', lambda pid: {0, 1}, raising=False)
  monkeypatch.setattr(devices, 'CGROUP_CPU_MAX', tmp_path / 'cpu.max')
  if cpu_max is not None:
    devices.CGROUP_CPU_MAX.write_text(cpu_max + '\n')
  assert devices.usable_cores() == cores


@pytest.mark.parametrize('xla_flags, asked, devices', [
    ('', 0, 'cores'),      # the default: one device per core
    ('', 3, 3),
    ('--xla_force_host_platform_device_count=2', 3, 2),  # XLA_FLAGS wins
])
def test_cpu_cores_split_into_devices(xla_flags, asked, devices):
  out = _python(CPU_CORES, xla_flags, str(asked))
  assert out['asked'] == (0 if xla_flags else out['devices'])
  assert out['devices'] == (out['cores'] if devices == 'cores' else devices)


def test_program_layout_takes_as_few_cpu_devices_as_give_equal_blocks():
  mesh = devices.member_mesh()
  for n in range(1, 10):
    program_mesh, block = devices.program_layout(mesh, n, chunk=4 * mesh.size)
    assert program_mesh.size * block >= n
    assert program_mesh.size * (block - 1) < n   # no device is left all padding
