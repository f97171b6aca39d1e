"""Devices: a CPU split into one per core, program layouts, the memory they have."""

import json
import os
import subprocess
import sys

import jax
import pytest

from jaxmlp.engine import devices


def _no_limits(monkeypatch, tmp_path):
  monkeypatch.setattr(devices, 'CGROUP_MEMORY', ((tmp_path / 'no.max', tmp_path / 'no.current'),))
  monkeypatch.setattr(devices.resource, 'getrlimit',
                      lambda which: (devices.resource.RLIM_INFINITY,) * 2)


def test_a_cpu_device_has_its_share_of_the_hosts_available_memory(monkeypatch, tmp_path):
  _no_limits(monkeypatch, tmp_path)
  monkeypatch.setattr(devices, 'MEMINFO', tmp_path / 'meminfo')
  devices.MEMINFO.write_text('MemTotal:  8000000 kB\nMemAvailable:  6000000 kB\n')
  cpu = jax.devices('cpu')[0]
  shares = len(jax.devices('cpu'))
  assert devices.available_bytes(cpu) == 6000000 * 1024 // shares
  devices.MEMINFO.unlink()   # no /proc/meminfo (macOS): the physical memory
  assert devices.available_bytes(cpu) == (
      devices.os.sysconf('SC_PAGE_SIZE') * devices.os.sysconf('SC_PHYS_PAGES') // shares)


@pytest.mark.parametrize('cgroup, rlimit, least', [
    (None, None, 'free memory'),
    (('max', '0'), None, 'free memory'),                        # v2 without a limit
    ((str(2 * 2**30), str(2**30)), None, "the memory cgroup's limit"),   # 1 GiB left
    ((str(2**63 - 4096), '5'), None, 'free memory'),            # v1's "no limit"
    (None, 3 * 2**30 + 512 * 2**20, 'ulimit -v (RLIMIT_AS)'),   # 512 MiB above VmSize
])
def test_host_memory_is_the_least_of_free_memory_the_cgroup_and_ulimit(
    monkeypatch, tmp_path, cgroup, rlimit, least):
  _no_limits(monkeypatch, tmp_path)
  monkeypatch.setattr(devices, 'MEMINFO', tmp_path / 'meminfo')
  devices.MEMINFO.write_text('MemAvailable:  6000000 kB\n')
  if cgroup is not None:
    (tmp_path / 'memory.max').write_text(cgroup[0] + '\n')
    (tmp_path / 'memory.current').write_text(cgroup[1] + '\n')
    monkeypatch.setattr(devices, 'CGROUP_MEMORY',
                        ((tmp_path / 'memory.max', tmp_path / 'memory.current'),))
  if rlimit is not None:
    monkeypatch.setattr(devices, 'PROCESS_STATUS', tmp_path / 'status')
    devices.PROCESS_STATUS.write_text(f'VmSize:\t{3 * 2**20} kB\n')
    monkeypatch.setattr(devices.resource, 'getrlimit', lambda which: (rlimit, rlimit))
  limits = devices.host_limits()
  assert min(limits, key=limits.get) == least
  expected = {'free memory': 6000000 * 1024, "the memory cgroup's limit": 2**30,
              'ulimit -v (RLIMIT_AS)': 512 * 2**20}[least]
  assert devices._host_available_bytes() == expected   # pylint: disable=protected-access


CPU_CORES = r'''
import json, os, sys, jax
from jaxmlp.engine import devices
asked = devices.use_cpu_cores(int(sys.argv[1]), int(sys.argv[2]))
jax.numpy.ones(3).block_until_ready()   # the backend and its pool start
pool = [t for t in os.listdir('/proc/self/task')
        if open(f'/proc/self/task/{t}/comm').read().strip().endswith('XLAEigen')]
print(json.dumps(dict(asked=asked, devices=len(jax.devices()), cores=devices.usable_cores(),
                      threads=devices.cpu_threads(), pool=len(pool))))
'''


def _split_cpu(xla_flags: str, asked: int, threads: int, **environ: str) -> dict:
  env = {k: v for k, v in os.environ.items() if k not in devices.THREADS_ENV}
  out = subprocess.run([sys.executable, '-c', CPU_CORES, str(asked), str(threads)],
                       env={**env, 'XLA_FLAGS': xla_flags, 'JAX_PLATFORMS': 'cpu', **environ},
                       capture_output=True, text=True, check=True, timeout=300)
  return json.loads(out.stdout.strip().splitlines()[-1])


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
  out = _split_cpu(xla_flags, asked, 0)
  assert out['asked'] == (0 if xla_flags else out['devices'])
  assert out['devices'] == (out['cores'] if devices == 'cores' else devices)


@pytest.mark.skipif(not os.path.isdir('/proc/self/task'), reason='counts threads in /proc')
@pytest.mark.parametrize('asked, threads, environ, pool', [
    (1, 0, {}, 'cores'),                 # XLA's own: the cores
    (5, 0, {}, 5),                       # ... or the devices, where they are more
    (1, 4, {}, 4),                       # --cpu_threads
    (1, 1, {}, 1),
    (3, 2, {}, 3),                       # never fewer than the devices (XLA's rule)
    (1, 4, {'PJRT_NPROC': '5'}, 5),      # the user's own setting wins
    (1, 4, {'NPROC': '6'}, 6),
    (1, 3, {'PJRT_NPROC': ''}, 3),       # an empty one is no setting (XLA ignores it)
])
def test_xla_cpu_pool_is_the_one_recorded(asked, threads, environ, pool):
  out = _split_cpu('', asked, threads, **environ)
  expected = max(len(os.sched_getaffinity(0)), asked) if pool == 'cores' else pool
  assert out['pool'] == out['threads'] == expected


def test_negative_counts_are_refused():
  with pytest.raises(devices.UserError, match='whole numbers >= 0'):
    devices.use_cpu_cores(0, -1)


def test_program_layout_takes_as_few_cpu_devices_as_give_equal_blocks():
  mesh = devices.member_mesh()
  for n in range(1, 10):
    program_mesh, block = devices.program_layout(mesh, n, chunk=4 * mesh.size)
    assert program_mesh.size * block >= n
    assert program_mesh.size * (block - 1) < n   # no device is left all padding
