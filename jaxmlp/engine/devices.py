"""Where members run: the devices (a CPU split into one per core), how a program's
members are laid out on them, the memory they have left, and moving data on and off.
"""

import os
import re
import resource
from pathlib import Path
from typing import NamedTuple

import jax
from jax._src import xla_bridge  # backends_are_initialized: not yet public
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmlp.common import numbers
from jaxmlp.common.errors import UserError


MEMBER_AXIS = 'members'


class DeviceData(NamedTuple):
  """The whole split, uint8 images, resident on (and replicated over) the devices."""
  x_train: jax.Array
  y_train: jax.Array
  x_val: jax.Array
  y_val: jax.Array
  x_test: jax.Array
  y_test: jax.Array


CGROUP_CPU_MAX = Path('/sys/fs/cgroup/cpu.max')  # "QUOTA PERIOD", or "max PERIOD"


def _affinity_cores() -> int:
  """The cores in this process's affinity mask (where the OS has one)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # macOS and Windows have no affinity call
    return os.cpu_count() or 1


def usable_cores() -> int:
  """The cores this process may use: its affinity mask, and at most a container's
  CPU quota (cgroup v2, e.g. docker --cpus=2)."""
  cores = _affinity_cores()
  try:
    quota, period = CGROUP_CPU_MAX.read_text().split()
    if quota != 'max':
      cores = min(cores, max(1, int(quota) // int(period)))
  except (OSError, ValueError):
    pass  # no cgroup v2 quota
  return cores


# XLA:CPU runs every dot on one Eigen thread pool of max($PJRT_NPROC (else $NPROC, else
# the cores), device count) threads, and Eigen splits a dot's sum over the batch among
# a number of threads it picks from that size, so the size decides a member's last
# bits (README, "What is guaranteed"). --cpu_threads pins it, for the same numbers on
# machines with other core counts.
THREADS_ENV = ('PJRT_NPROC', 'NPROC')
_DEVICE_COUNT_FLAG = re.compile(r'--xla_force_host_platform_device_count=(\d+)')


def _threads_given() -> str | None:
  """The variable that already sizes XLA's pool, as XLA reads it (a number)."""
  return next((name for name in THREADS_ENV if os.environ.get(name, '').strip().isdigit()),
              None)


def use_cpu_cores(devices: int = 0, threads: int = 0) -> int:
  """Splits the host CPU into `devices` JAX devices (0: one per core this process may
  use), so that members shard over the cores, and sizes XLA:CPU's thread pool to
  `threads` (0: XLA's own size, the cores, or the devices where they are more);
  returns the device count asked for.

  Devices run their members' programs side by side, while a single device spreads each
  of this model's small matmuls thinly over all cores: on 2 cores, 2 devices trained 4
  members 1.2x faster than 1 device at batch 256, and 1.45x at batch 1
  (benchmarks/RESULTS.md). Each device holds its own copy of the data (55 MB).
  The pool's size is part of what a member's numbers depend on: with the same
  `threads` (and as many devices or fewer) a 2-core laptop and a 64-core server give
  the same numbers. A size already given in $PJRT_NPROC or $NPROC wins, as does a
  device count already given in XLA_FLAGS (--xla_force_host_platform_device_count).
  Both take effect only before JAX starts its backends (returns 0 otherwise).
  Accelerators are untouched.
  """
  if devices < 0 or threads < 0:
    raise UserError(f'--cpu_devices={devices}, --cpu_threads={threads}: give whole numbers '
                    '>= 0 (0: one device per core; XLA\'s own pool)')
  started = xla_bridge.backends_are_initialized()
  if threads and not started and not _threads_given():
    os.environ[THREADS_ENV[0]] = str(threads)
  given = _DEVICE_COUNT_FLAG.search(os.environ.get('XLA_FLAGS', ''))
  if given:
    return 0
  devices = devices or usable_cores()
  try:
    jax.config.update('jax_num_cpu_devices', devices)
  except RuntimeError:
    return 0  # JAX already runs (say, inside a notebook): its devices stay as they are
  return devices


def cpu_threads() -> int | None:
  """The threads of XLA:CPU's pool in this process, by XLA's own rule; None where
  members run on an accelerator."""
  if jax.devices()[0].platform != 'cpu':
    return None
  given = _threads_given()
  size = int(os.environ[given]) if given else _affinity_cores()   # XLA reads no quota
  return max(size, len(jax.local_devices(backend='cpu')))


def member_mesh() -> Mesh:
  """Every device of every host: members never talk, so any layout will do."""
  return Mesh(np.array(jax.devices()), (MEMBER_AXIS,))


def program_layout(mesh: Mesh, n_members: int, chunk: int,
                   compact: bool = False) -> tuple[Mesh, int]:
  """The devices a program of `n_members` runs on, and the members each device takes.

  Members are padded to an equal block per device. On a CPU (one host), a program
  takes as few devices as give each device the same block (1 member on 4 devices: 1
  device; 6 on 4: 3 devices of 2, not 4 devices of 2 with 2 padding slots), since
  padding slots cost real time where devices share the cores. Accelerators and
  several hosts keep every device, and every program of a group takes the block of
  its full `chunk` (plan.members_per_program), so they share one compiled program;
  `compact` lays a program out as on a CPU anywhere (on one host): a search's slot
  programs have one shape each anyway.
  """
  devices = mesh.devices.ravel()
  if jax.process_count() > 1 or (devices[0].platform != 'cpu' and not compact):
    return mesh, chunk // len(devices)
  block = numbers.ceil_div(n_members, min(len(devices), n_members))
  return Mesh(devices[:numbers.ceil_div(n_members, block)], (MEMBER_AXIS,)), block


def to_devices(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """Host data onto the mesh; every process holds the same `x`, so each fills in its
  own devices' shards (this works on one host and on many)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def to_host(tree):
  """Member-axis results back on every host, whichever host's devices hold them."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
  return jax.tree.map(np.asarray, jax.device_get(tree))


def split_arrays(split) -> tuple[np.ndarray, ...]:
  """The split's arrays in DeviceData's order (each device holds all of them)."""
  return (split.x_train, split.y_train, split.x_val, split.y_val, split.x_test,
          split.y_test)


def put_data(split, mesh: Mesh) -> DeviceData:
  replicated = NamedSharding(mesh, P())
  return DeviceData(*(to_devices(a, replicated) for a in split_arrays(split)))


def data_on(data: DeviceData, mesh: Mesh) -> DeviceData:
  """The data on a program's devices: a subset of the devices it was put on."""
  if data.x_train.sharding.device_set == set(mesh.devices.flat):
    return data
  return jax.device_put(data, NamedSharding(mesh, P()))


MEMINFO = Path('/proc/meminfo')
PROCESS_STATUS = Path('/proc/self/status')
# A memory cgroup's limit and use: v2's files, then v1's (a container's own cgroup is
# mounted at /sys/fs/cgroup).
CGROUP_MEMORY = ((Path('/sys/fs/cgroup/memory.max'), Path('/sys/fs/cgroup/memory.current')),
                 (Path('/sys/fs/cgroup/memory/memory.limit_in_bytes'),
                  Path('/sys/fs/cgroup/memory/memory.usage_in_bytes')))
_NO_LIMIT = 1 << 60   # cgroup v1 writes "no limit" as a number near 2**63


def _meminfo_available() -> int:
  """MemAvailable (Linux), else the physical memory (sysconf: what macOS reports)."""
  try:
    for line in MEMINFO.read_text().splitlines():
      if line.startswith('MemAvailable:'):
        return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def _cgroup_available() -> int | None:
  """What this process's memory cgroup still allows, where it has a limit."""
  for limit_file, usage_file in CGROUP_MEMORY:
    try:
      limit = limit_file.read_text().strip()
      if limit == 'max' or int(limit) >= _NO_LIMIT:
        return None
      return max(0, int(limit) - int(usage_file.read_text().strip()))
    except (OSError, ValueError):
      continue
  return None


def _address_space_available() -> int | None:
  """What `ulimit -v` (RLIMIT_AS) still allows this process to map, where it is set:
  XLA's allocations count against it beside what is resident."""
  soft, _ = resource.getrlimit(resource.RLIMIT_AS)
  if soft == resource.RLIM_INFINITY:
    return None
  try:
    for line in PROCESS_STATUS.read_text().splitlines():
      if line.startswith('VmSize:'):
        return max(0, soft - int(line.split()[1]) * 1024)
  except (OSError, ValueError, IndexError):
    pass
  return soft


def host_limits() -> dict[str, int]:
  """Each limit on host memory that applies now: 'free memory', and 'the cgroup's
  limit' or 'ulimit -v' where set; the planner sizes against the least."""
  limits = {'free memory': _meminfo_available()}
  for name, value in (('the memory cgroup\'s limit', _cgroup_available()),
                      ('ulimit -v (RLIMIT_AS)', _address_space_available())):
    if value is not None:
      limits[name] = value
  return limits


def _host_available_bytes() -> int:
  """The host memory free for new allocations: the least of host_limits()."""
  return min(host_limits().values())


def available_bytes(device) -> int:
  """What one device can still allocate: an accelerator's limit less what it holds; a
  CPU device's share of the host's available memory (CPU devices share it)."""
  stats = device.memory_stats() if hasattr(device, 'memory_stats') else None
  if stats and stats.get('bytes_limit'):
    return int(stats['bytes_limit']) - int(stats.get('bytes_in_use', 0))
  cpu_devices = sum(d.platform == 'cpu' for d in jax.local_devices()) or 1
  return _host_available_bytes() // cpu_devices


def pad_members(x: np.ndarray, size: int) -> np.ndarray:
  """Fills the program's unused member slots with copies of the first member."""
  return np.concatenate([x, np.repeat(x[:1], size - len(x), axis=0)])
