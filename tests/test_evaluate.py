"""jaxmlp.evaluate reproduces a saved member on the data of its own run."""

import gzip
import json
import subprocess
import sys

import numpy as np

from jaxmlp.data import mnist as data
from jaxmlp.data import idx


def _write_idx(path, array):
  magic = 0x0803 if array.ndim == 3 else 0x0801
  header = magic.to_bytes(4, 'big') + b''.join(d.to_bytes(4, 'big') for d in array.shape)
  path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_a_run_on_another_idx_dataset_evaluates_with_that_runs_settings(tmp_path,
                                                                        mnist_split):
  """Not MNIST (inverted digits, fewer rows): only loadable without the checksums,
  which the run recorded and evaluate follows."""
  folder = tmp_path / 'inverted'
  folder.mkdir()
  train_x = np.concatenate([mnist_split.x_train[:1500], mnist_split.x_val[:500]])
  train_y = np.concatenate([mnist_split.y_train[:1500], mnist_split.y_val[:500]])
  for name, array in (('train-images-idx3-ubyte', 255 - train_x.reshape(-1, 28, 28)),
                      ('train-labels-idx1-ubyte', train_y),
                      ('t10k-images-idx3-ubyte', 255 - mnist_split.x_test[:400].reshape(-1, 28, 28)),
                      ('t10k-labels-idx1-ubyte', mnist_split.y_test[:400])):
    _write_idx(folder / f'{name}.gz', array)
  assert set(idx.FILES.values()) == {p.name[:-3] for p in folder.iterdir()}

  run = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.launch', '--study=init', '--epochs=1', '--seeds=1',
       '--nodata_checksums', f'--data_dir={folder}', '--progress=false',
       f'--output_dir={tmp_path}/out'], capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr
  member = tmp_path / 'out' / 'init' / 'members' / 'init__seed0'
  evaluated = subprocess.run(
      [sys.executable, '-m', 'jaxmlp.evaluate', f'--run={member}', f'--data_dir={folder}'],
      capture_output=True, text=True, timeout=300)
  assert evaluated.returncode == 0, evaluated.stderr
  answer = json.loads(evaluated.stdout.strip().splitlines()[-1])
  assert answer['identical'] is True
  # The 400 inverted test rows, not MNIST's 10,000.
  split = data.load_split(dict(data_source='idx', data_checksums=False,
                               validation_split=0.2, data_limit=0), str(folder))
  assert len(split.x_test) == 400 and len(split.x_train) == 1600
