"""The vmapped, sharded, chunked engine gives each member what it would get alone."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxmlp import engine, study, train

STRUCTURE = train.Structure(hidden_sizes=(32, 16), batch_size=128, optimizer='rmsprop',
                            use_l2=True)


def _hparams(learning_rates, l2=1e-3):
  base = {k: v for k, v in study.baseline().items() if k in study.HPARAM_FIELDS}
  n = len(learning_rates)
  hp = {k: np.full(n, v, np.float32) for k, v in base.items()}
  hp['learning_rate'] = np.asarray(learning_rates, np.float32)
  hp['l2'] = np.full(n, l2, np.float32)
  return hp


def _select(hp, k):
  return {name: v[k:k + 1] for name, v in hp.items()}


@pytest.fixture(scope='module')
def device_data(small_split):
  return engine.put_data(small_split, engine.member_mesh())


def _run(hp, seeds, data, epochs=2, **kw):
  return engine.run_group(STRUCTURE, hp, np.asarray(seeds), data, epochs,
                          engine.member_mesh(), **kw)


def _assert_same(a, ka, b, kb, rtol=2e-5):
  for name in a.history:
    np.testing.assert_allclose(a.history[name][ka], b.history[name][kb], rtol=rtol,
                               atol=1e-6, err_msg=name)
  np.testing.assert_allclose(a.test_loss[ka], b.test_loss[kb], rtol=rtol)
  np.testing.assert_allclose(a.test_accuracy[ka], b.test_accuracy[kb], rtol=rtol)


def test_member_k_equals_the_same_configuration_trained_alone(device_data):
  hp = _hparams([1e-3, 3e-3, 1e-2])
  seeds = [5, 6, 7]
  together = _run(hp, seeds, device_data)
  assert together.members_per_program[0] == 3
  for k in range(3):
    alone = _run(_select(hp, k), seeds[k:k + 1], device_data)
    _assert_same(together, k, alone, 0)
  # Different seeds and learning rates really are different runs.
  assert len({float(v) for v in together.test_loss}) == 3
  assert list(together.weight_updates) == [2 * 16] * 3  # 2000 rows / 128 -> 16 per epoch


def test_chunked_group_equals_one_program(device_data):
  hp = _hparams([1e-3, 2e-3, 3e-3, 4e-3, 5e-3])
  seeds = [0, 1, 2, 3, 4]
  whole = _run(hp, seeds, device_data)
  chunked = _run(hp, seeds, device_data, max_members=2)
  # On a CPU the last program's one member runs alone; an accelerator pads it to 2,
  # so that every program of the group shares one compiled shape.
  last = 1 if engine.jax.devices()[0].platform == 'cpu' else 2
  assert list(chunked.members_per_program) == [2, 2, 2, 2, last]
  for k in range(5):
    _assert_same(whole, k, chunked, k)


def test_a_diverging_member_does_not_disturb_the_others(device_data):
  hp = _hparams([1e-3, 1e30, 2e-3])
  result = _run(hp, [0, 1, 2], device_data)
  assert not np.isfinite(result.history['train_loss'][1]).all()
  calm = _run(_hparams([1e-3, 2e-3]), [0, 2], device_data)
  _assert_same(result, 0, calm, 0)
  _assert_same(result, 2, calm, 1)


def test_members_per_program_fits_the_memory():
  assert engine.members_per_program(STRUCTURE, 0, 3, 0) == 3
  assert engine.members_per_program(STRUCTURE, 0, 7, 0) == engine.CPU_MEMBERS_PER_DEVICE
  assert engine.members_per_program(STRUCTURE, 3, 7, 0) == 3
  assert engine.members_per_program(STRUCTURE, 7, 7, 0) == 7
  big = train.Structure(hidden_sizes=(4096, 4096), batch_size=48_000)
  per_member = engine.bytes_per_member(big)
  memory = engine._device_memory_bytes(engine.jax.devices()[0])
  fits = engine.members_per_program(big, 0, 10_000, 0)
  assert 1 <= fits < 10_000
  assert fits * per_member <= memory // 2


SHARDED_RUN = r'''
import json, sys, numpy as np, jax
from jaxmlp import data, engine, study, train
split = data.split(data.load_idx())
split = data.Split(split.x_train[:1000], split.y_train[:1000], split.x_val[:500],
                   split.y_val[:500], split.x_test[:500], split.y_test[:500])
base = {k: v for k, v in study.baseline().items() if k in study.HPARAM_FIELDS}
hp = {k: np.full(6, v, np.float32) for k, v in base.items()}
hp['learning_rate'] = np.linspace(1e-3, 6e-3, 6).astype(np.float32)
s = train.Structure(hidden_sizes=(32,), batch_size=100, shuffle=True)
mesh = engine.member_mesh()
device_data = engine.put_data(split, mesh)
r = engine.run_group(s, hp, np.arange(6), device_data, 2, mesh)
# Programs of at most 4: on 4 devices the last 2 members run on 2 of them.
chunked = engine.run_group(s, hp, np.arange(6), device_data, 2, mesh, max_members=4)
layouts = {}
for n in range(1, 10):
  program_mesh, block = engine.program_layout(mesh, n, chunk=4 * mesh.size)
  layouts[n] = [program_mesh.size, block]
print(json.dumps(dict(devices=len(jax.devices()), per_program=int(r.members_per_program[0]),
                      val=r.history['val_loss'].tolist(), test=r.test_loss.tolist(),
                      chunked_per_program=chunked.members_per_program.tolist(),
                      chunked_val=chunked.history['val_loss'].tolist(), layouts=layouts)))
'''


def _python(script: str, xla_flags: str, *args: str) -> dict:
  """The JSON last printed by `script`, run in a fresh process (its own JAX backends)."""
  out = subprocess.run([sys.executable, '-c', script, *args],
                       # CPU devices, also where an accelerator is present.
                       env={**os.environ, 'XLA_FLAGS': xla_flags, 'JAX_PLATFORMS': 'cpu'},
                       capture_output=True, text=True, check=True, timeout=300)
  return json.loads(out.stdout.strip().splitlines()[-1])


def _sharded(devices):
  return _python(SHARDED_RUN, f'--xla_force_host_platform_device_count={devices}')


CPU_CORES = r'''
import json, sys, jax
from jaxmlp import engine
asked = engine.use_cpu_cores(int(sys.argv[1]))
print(json.dumps(dict(asked=asked, devices=len(jax.devices()),
                      cores=engine.usable_cores())))
'''


@pytest.mark.parametrize('cpu_max, cores', [
    ('max 100000', 2),            # no quota
    ('150000 100000', 1),         # docker --cpus=1.5: 1 whole core
    ('800000 100000', 2),         # a quota above the affinity mask's 2 cores
    (None, 2),                    # no cgroup v2 file
])
def test_usable_cores_honours_a_container_quota(monkeypatch, tmp_path, cpu_max, cores):
  monkeypatch.setattr(engine.os, 'sched_getaffinity', lambda pid: {0, 1}, raising=False)
  monkeypatch.setattr(engine, 'CGROUP_CPU_MAX', tmp_path / 'cpu.max')
  if cpu_max is not None:
    engine.CGROUP_CPU_MAX.write_text(cpu_max + '\n')
  assert engine.usable_cores() == cores


@pytest.mark.parametrize('xla_flags, asked, devices', [
    ('', 0, 'cores'),      # the default: one device per core
    ('', 3, 3),
    ('--xla_force_host_platform_device_count=2', 3, 2),  # XLA_FLAGS wins
])
def test_cpu_cores_split_into_devices(xla_flags, asked, devices):
  out = _python(CPU_CORES, xla_flags, str(asked))
  assert out['asked'] == (0 if xla_flags else out['devices'])
  assert out['devices'] == (out['cores'] if devices == 'cores' else devices)


def test_members_shard_over_four_devices_with_the_same_numbers(mnist_split):
  one, four = _sharded(1), _sharded(4)
  assert (one['devices'], four['devices']) == (1, 4)
  # One CPU device takes 4 members a program (then the other 2); 6 members on 4
  # devices run on 3 of them, 2 each, rather than on 4 with 2 padding slots.
  assert (one['per_program'], four['per_program']) == (4, 6)
  # members: [devices, members per device]
  assert four['layouts'] == {'1': [1, 1], '2': [2, 1], '3': [3, 1], '4': [4, 1],
                             '5': [3, 2], '6': [3, 2], '7': [4, 2], '8': [4, 2],
                             '9': [3, 3]}
  assert all(layout == [1, n] for n, layout in zip(range(1, 10), one['layouts'].values()))
  np.testing.assert_allclose(one['val'], four['val'], rtol=2e-5)
  assert four['chunked_per_program'] == [4, 4, 4, 4, 2, 2]
  np.testing.assert_allclose(one['val'], four['chunked_val'], rtol=2e-5)
  np.testing.assert_allclose(one['test'], four['test'], rtol=2e-5)


SGD = train.Structure(hidden_sizes=(32, 16), batch_size=128, optimizer='sgd')


def _sgd_hparams(learning_rates):
  return _hparams(learning_rates, l2=0.0)


def test_continuing_from_saved_weights_equals_training_straight_through(device_data):
  """SGD keeps no state, so reloaded weights continue exactly where they stopped."""
  hp, seeds, mesh = _sgd_hparams([0.05, 0.1]), np.array([0, 1]), engine.member_mesh()
  straight = engine.run_group(SGD, hp, seeds, device_data, 5, mesh)
  first = engine.run_group(SGD, hp, seeds, device_data, 2, mesh)
  rest = engine.run_group(SGD, hp, seeds, device_data, 3, mesh,
                          initial_params=first.final_params, first_epoch=2)
  jax_tree_allclose(rest.final_params, straight.final_params)
  np.testing.assert_allclose(rest.history['val_loss'], straight.history['val_loss'][:, 2:],
                             rtol=1e-5)
  np.testing.assert_allclose(rest.test_loss, straight.test_loss, rtol=1e-5)


def jax_tree_allclose(a, b, rtol=1e-5):
  engine.jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-6),
                      a, b)


def test_early_stopped_members_freeze_and_best_weights_are_kept(device_data):
  hp, mesh = _sgd_hparams([0.05, 3.0]), engine.member_mesh()
  tracking = train.Tracking(objective='val_accuracy', monitor='val_loss', patience=1)
  result = engine.run_group(SGD, hp, np.array([0, 1]), device_data, 6, mesh,
                            tracking=tracking)
  trained = result.epochs_trained
  assert trained[0] == 6 and 1 <= trained[1] < 6   # lr 3.0 stops, lr 0.05 goes on
  assert np.isnan(result.history['val_loss'][1, trained[1]:]).all()
  # The stopped member is exactly what training it alone for that long gives.
  alone = engine.run_group(SGD, _select(hp, 1), np.array([1]), device_data,
                           int(trained[1]), mesh)
  jax_tree_allclose(engine.jax.tree.map(lambda x: x[1:], result.final_params),
                    alone.final_params)
  # The other member did not notice.
  calm = engine.run_group(SGD, _select(hp, 0), np.array([0]), device_data, 6, mesh)
  _assert_same(result, 0, calm, 0)
  # Best weights: those of the best validation-accuracy epoch.
  best = int(result.best_epoch[0])
  assert result.history['val_accuracy'][0, best] == np.nanmax(result.history['val_accuracy'][0])
  upto = engine.run_group(SGD, _select(hp, 0), np.array([0]), device_data, best + 1, mesh)
  jax_tree_allclose(engine.jax.tree.map(lambda x: x[:1], result.best_params),
                    upto.final_params)


def test_a_group_ends_when_every_member_has_stopped(device_data):
  hp = _sgd_hparams([3.0, 4.0])
  tracking = train.Tracking(monitor='val_loss', patience=1)
  calls = []
  result = engine.run_group(SGD, hp, np.array([0, 1]), device_data, 50,
                            engine.member_mesh(), tracking=tracking,
                            on_epoch=lambda done, total, m: calls.append(done))
  assert max(result.epochs_trained) < 50 and len(calls) == max(result.epochs_trained)
