"""jaxmlp.evaluate reproduces a saved member on the data of its own run."""

import errno
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import flax.serialization
import numpy as np
import pytest

from jaxmlp.data import mnist as data
from jaxmlp.data import idx
from jaxmlp.common.errors import UserError
from jaxmlp.store import folders


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


# Damaged files: named, with how to regenerate them; never a traceback.

FIXTURE = Path(__file__).parent / 'store' / 'fixtures' / 'grid_member.json'


def _member(tmp_path):
  member = tmp_path / 'out' / 'study' / 'members' / 'm__seed0'
  member.mkdir(parents=True)
  shutil.copy(FIXTURE, member / folders.RESULT_FILE)
  weights = {'kernel': np.ones((3, 2), np.float32)}
  (member / folders.PARAMS_FILE).write_bytes(flax.serialization.msgpack_serialize(
      {'initial': weights, 'final': weights, 'best': weights}))
  return member


def _damaged_line(path):
  return (f'{path} is damaged (', f'): delete the folder {path.parent} and rerun the command '
          'that trained it (the same command) to train that member again')


@pytest.mark.parametrize('name', [folders.PARAMS_FILE, folders.RESULT_FILE])
def test_a_truncated_member_file_is_named_with_the_fix(tmp_path, name):
  member = _member(tmp_path)
  folders.load_member(member)   # intact: loads
  path = member / name
  path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
  with pytest.raises(UserError) as e:
    folders.load_member(member)
  start, end = _damaged_line(path)
  assert str(e.value).startswith(start) and str(e.value).endswith(end)


def test_evaluate_on_a_truncated_weight_file_is_one_line(tmp_path):
  member = _member(tmp_path)
  params = member / folders.PARAMS_FILE
  params.write_bytes(params.read_bytes()[:40])
  run = subprocess.run([sys.executable, '-m', 'jaxmlp.evaluate', f'--run={member}'],
                       capture_output=True, text=True, timeout=300)
  assert run.returncode == 2 and 'Traceback' not in run.stderr
  [line] = run.stderr.strip().splitlines()
  start, end = _damaged_line(params)
  assert line.startswith(f'error: {start}') and line.endswith(end)


def test_a_write_the_disk_refuses_keeps_the_previous_file(tmp_path, monkeypatch):
  path = tmp_path / 'summary.md'
  folders.write_atomic(path, 'before\n')

  def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(folders.os, 'fsync', full)
  with pytest.raises(UserError) as e:
    folders.write_atomic(path, 'after, half written\n')
  assert str(e.value).startswith(f'cannot write {path}: the disk is full')
  assert path.read_text() == 'before\n'
  assert [p.name for p in tmp_path.iterdir()] == ['summary.md']   # no temporary left


@pytest.mark.parametrize('flag, message', [
    ('--limit=-1', 'flag --limit=-1: -1 is not a non-negative integer'),
    ('--images={images}', 'holds 32x32 images; the network reads 28x28'),
])
def test_evaluate_refuses_a_bad_limit_or_image_size_in_one_line(tmp_path, flag, message):
  member = _member(tmp_path)
  images = tmp_path / 'images-idx3-ubyte'
  _write_idx(images, np.zeros((2, 32, 32), np.uint8))
  run = subprocess.run([sys.executable, '-m', 'jaxmlp.evaluate', f'--run={member}',
                        flag.format(images=images)], capture_output=True, text=True,
                       timeout=300)
  assert run.returncode == 2 and 'Traceback' not in run.stderr
  [line] = run.stderr.strip().splitlines()
  assert line.startswith('error: ') and message in line
