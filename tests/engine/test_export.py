"""The training and evaluation programs lower for GPUs and TPUs (jax.export), so a
change that cannot run on an accelerator fails here, on a CPU-only machine."""

import json
import os
import subprocess
import sys

EXPORT = r'''
import itertools, json, jax, jax.numpy as jnp
from jax import export
from jaxmlp.engine import devices
from jaxmlp.engine import program as program_lib
from jaxmlp.studies import study
from jaxmlp.core import train

mesh = devices.member_mesh()
block, members = 2, 2 * len(jax.devices())
spec = jax.ShapeDtypeStruct
hparams = {k: spec((members,), jnp.float32) for k in study.hparams_of(study.baseline())}
data = devices.DeviceData(spec((300, 784), jnp.uint8), spec((300,), jnp.int32),
                          spec((50, 784), jnp.uint8), spec((50,), jnp.int32),
                          spec((60, 784), jnp.uint8), spec((60,), jnp.int32))
structures = [
    train.Structure(),                                           # the original
    train.Structure(hidden_sizes=(16,), optimizer='rmsprop', use_l2=True, batch_size=1),
    train.Structure(hidden_sizes=(8, 16, 8), optimizer='sgd', use_l1=True, use_l2=True,
                    use_dropout=True, shuffle=True, batch_size=32, kernel_init='normal'),
    train.Structure(hidden_sizes=(16, 8), kernel_init='he_normal', batch_size=100),
]
exported = []
for structure, platform in itertools.product(structures, ('cuda', 'tpu')):
  program = program_lib.build_program(structure, train.Tracking(patience=3), mesh, block)
  init_args = (spec((members,), jnp.uint32), hparams, spec((members,), jnp.int32))
  state = jax.eval_shape(program.init, *init_args)
  state, tracker = jax.eval_shape(program.start, state, state.params)
  take = spec((members,), jnp.bool_)
  calls = dict(init=(program.init, init_args),
               start=(program.start, (state, state.params)),
               epoch=(program.epoch, (state, tracker, hparams, data)),
               test=(program.test, (state.params, data.x_test, data.y_test, hparams)),
               select=(program.select, (take, state, state)),
               train_pass=(program.train_pass, (state, hparams, data.x_train, data.y_train)))
  for name, (fn, args) in calls.items():
    out = export.export(fn, platforms=(platform,))(*args)
    assert out.platforms == (platform,) and out.nr_devices == len(jax.devices())
    assert 'stablehlo' in out.mlir_module()
    exported.append(f'{name}/{platform}')
print(json.dumps(dict(devices=len(jax.devices()), exported=exported)))
'''


def test_every_program_exports_for_cuda_and_tpu_over_four_devices():
  result = subprocess.run(
      [sys.executable, '-c', EXPORT], capture_output=True, text=True, timeout=300,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu',
           'XLA_FLAGS': '--xla_force_host_platform_device_count=4'})
  assert result.returncode == 0, result.stderr
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert out['devices'] == 4
  assert len(out['exported']) == 4 * 2 * 6
