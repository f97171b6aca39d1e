"""When a program saves a checkpoint, that a checkpoint round-trips exactly, and that a
damaged one is moved aside, never read wrong."""

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxmlp.engine import checkpoint
from jaxmlp.common.errors import UserError


@pytest.mark.parametrize('text, policy', [
    ('auto', checkpoint.Policy('auto')),
    ('5', checkpoint.Policy('epochs', 5)),
    ('5e', checkpoint.Policy('epochs', 5)),
    ('10m', checkpoint.Policy('seconds', 600)),
    ('30s', checkpoint.Policy('seconds', 30)),
    ('0', checkpoint.Policy('never')),
])
def test_policies_parse(text, policy):
  assert checkpoint.Policy.parse(text) == policy


@pytest.mark.parametrize('text', ['often', '-1', '2.5', '5h'])
def test_bad_policies_are_one_line_errors(text):
  with pytest.raises(UserError, match='checkpoint'):
    checkpoint.Policy.parse(text)


def test_when_a_checkpoint_is_due():
  every_2 = checkpoint.Policy('epochs', 2)
  assert [every_2.due(e, 0.0, 0.1) for e in (1, 2, 3, 4)] == [False, True, False, True]
  minute = checkpoint.Policy('seconds', 60)
  assert not minute.due(7, 59.0, 0.1) and minute.due(7, 60.0, 0.1)
  auto = checkpoint.Policy('auto')
  assert auto.due(1, 0.0, None)          # the first save measures what saving costs
  ratio = checkpoint.AUTO_RATIO
  assert not auto.due(5, ratio * 0.1 - 0.01, 0.1) and auto.due(5, ratio * 0.1, 0.1)
  assert not checkpoint.Policy('never').due(100, 1e9, 0.1)


def test_a_checkpoint_round_trips_exactly(tmp_path):
  rng = np.random.default_rng(0)
  tree = {'w': rng.normal(size=(3, 5)).astype(np.float32),
          'key': rng.integers(0, 2**32, (3, 2), dtype=np.uint32),
          'history': np.array([[0.5, np.nan]], np.float32)}
  saver = checkpoint.ProgramCheckpoint(tmp_path / 'p', checkpoint.Policy('auto'))
  assert saver.restore(tree) is None
  saver.save(4, lambda: tree, dict(fit_time_s=1.5))
  saver.wait()
  restored, meta = checkpoint.ProgramCheckpoint(tmp_path / 'p',
                                                checkpoint.Policy('auto')).restore(tree)
  for name in tree:
    np.testing.assert_array_equal(restored[name], tree[name])
    assert restored[name].dtype == tree[name].dtype
  assert meta == {'fit_time_s': 1.5, 'epochs_done': 4}
  saver.delete()
  assert not (tmp_path / 'p').exists()


# Damaged checkpoints: every kind of file orbax writes, cut or corrupted at each position.

_TREE = {'w': np.arange(15, dtype=np.float32).reshape(3, 5),
         'key': np.arange(6, dtype=np.uint32).reshape(3, 2)}


def _saved(folder, *steps):
  saver = checkpoint.ProgramCheckpoint(folder, checkpoint.Policy('auto'))
  for step in steps:
    saver.save(step, lambda: {k: v + step for k, v in _TREE.items()}, dict(fit_time_s=step))
    saver.wait()
  return saver


@pytest.fixture(scope='module')
def one_step(tmp_path_factory):
  """A program's checkpoint folder (under a study's checkpoints/) holding step 2."""
  folder = tmp_path_factory.mktemp('saved') / 'checkpoints' / 'members' / 'abc'
  _saved(folder, 2)
  return folder


def _files(folder):
  return sorted(str(p.relative_to(folder)) for p in folder.rglob('*') if p.is_file())


def _damage(path, how):
  data = bytearray(path.read_bytes())
  if how == 'emptied':
    data = b''
  elif how == 'cut in half':
    data = data[:len(data) // 2]
  elif how == 'first byte flipped':
    data[0] ^= 0xff
  else:  # a byte in the middle flipped
    data[len(data) // 2] ^= 0xff
  path.write_bytes(bytes(data))


@pytest.mark.parametrize('how', ['emptied', 'cut in half', 'first byte flipped',
                                 'middle byte flipped'])
def test_a_damaged_file_of_any_kind_restores_exactly_or_starts_over(tmp_path, one_step, how):
  files = _files(one_step)
  assert len(files) >= 10 and any('ocdbt' in f for f in files) and \
      '2/_CHECKPOINT_METADATA' in files
  outcomes = {}
  for i, name in enumerate(files):
    folder = tmp_path / str(i) / 'checkpoints' / 'members' / 'abc'
    shutil.copytree(one_step, folder)
    _damage(folder / name, how)
    lines = []
    restored = checkpoint.ProgramCheckpoint(folder, checkpoint.Policy('auto'),
                                            log=lines.append).restore(_TREE)
    if restored is None:   # found damaged: moved aside (kept whole), one line
      aside = tmp_path / str(i) / 'checkpoints.damaged' / 'members' / 'abc'
      [moved] = list(aside.iterdir())
      assert moved.name.startswith('2.damaged-') and (moved / name[2:]).is_file()
      assert not (folder / '2').exists()
      assert len(lines) == 1 and f'checkpoint step 2 in {folder} is damaged (' in lines[0]
      assert lines[0].endswith(f'moved it to {moved} and starting the program over')
      outcomes[name] = 'moved aside'
    else:                  # the damage is in a file the read does not need
      tree, meta = restored
      for k, v in _TREE.items():
        np.testing.assert_array_equal(tree[k], v + 2)
      assert meta == {'fit_time_s': 2, 'epochs_done': 2} and not lines
      outcomes[name] = 'exact'
  # The files that hold the numbers are always caught.
  assert outcomes['2/meta/metadata'] == outcomes['2/state/_METADATA'] == 'moved aside'
  assert outcomes['2/state/manifest.ocdbt'] == 'moved aside'


def test_a_damaged_latest_step_falls_back_to_the_previous_good_one(tmp_path):
  folder = tmp_path / 'checkpoints' / 'members' / 'abc'
  _saved(folder, 2)
  shutil.copytree(folder / '2', tmp_path / 'keep')
  _saved(folder, 4)                       # max_to_keep=1: step 2 is gone...
  shutil.copytree(tmp_path / 'keep', folder / '2')   # ...as a kill between the two leaves it
  _damage(folder / '4' / 'state' / 'manifest.ocdbt', 'emptied')
  lines = []
  saver = checkpoint.ProgramCheckpoint(folder, checkpoint.Policy('auto'), log=lines.append)
  tree, meta = saver.restore(_TREE)
  np.testing.assert_array_equal(tree['w'], _TREE['w'] + 2)
  assert meta['epochs_done'] == 2
  assert lines[0].endswith('and resuming from step 2')
  saver.save(3, lambda: _TREE, dict(fit_time_s=3))   # and the program saves on
  saver.wait()
  assert checkpoint.ProgramCheckpoint(folder, checkpoint.Policy('auto')).restore(
      _TREE)[1]['epochs_done'] == 3


def test_a_save_cut_short_leaves_only_the_previous_step(tmp_path):
  """orbax writes a step into a temporary folder and renames it: a kill mid-write
  leaves that folder, which is never taken for a step."""
  folder = tmp_path / 'p'
  _saved(folder, 2)
  shutil.copytree(folder / '2', folder / '4.orbax-checkpoint-tmp-1234')
  _damage(folder / '4.orbax-checkpoint-tmp-1234' / 'state' / 'manifest.ocdbt', 'emptied')
  tree, meta = checkpoint.ProgramCheckpoint(folder, checkpoint.Policy('auto')).restore(_TREE)
  assert meta['epochs_done'] == 2


def test_damaged_steps_go_beside_the_checkpoints_folder_which_a_finished_run_deletes():
  assert checkpoint.aside_folder(Path('/s/study/checkpoints/members/abc')) == \
      Path('/s/study/checkpoints.damaged/members/abc')
  assert checkpoint.aside_folder(Path('/tmp/p')) == Path('/tmp/p.damaged')


def test_a_write_the_disk_refuses_is_one_line(tmp_path, monkeypatch):
  saver = checkpoint.ProgramCheckpoint(tmp_path / 'p', checkpoint.Policy('auto'))

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(saver, '_open', full)
  with pytest.raises(UserError) as e:
    saver.save(1, lambda: _TREE, {})
  assert str(e.value).startswith(f'cannot write {tmp_path / "p"}: the disk is full')


def test_a_study_folder_deleted_mid_run_is_one_line_without_orbax_logs(tmp_path, caplog):
  study = tmp_path / 'study'
  saver = checkpoint.ProgramCheckpoint(study / 'checkpoints' / 'p', checkpoint.Policy('auto'))
  saver.save(1, lambda: _TREE, {})
  saver.wait()
  shutil.rmtree(study)
  with pytest.raises(UserError) as e:
    saver.save(2, lambda: _TREE, {})
    saver.wait()
    saver.delete()
  assert str(e.value) == (f'{study} does not exist (deleted while this wrote in it, its disk '
                          'unmounted, or a folder that cannot be made): check that path, '
                          'then rerun the same command, or pass another --output_dir')
  assert not [r for r in caplog.records if '/orbax/' in r.pathname and r.levelname != 'INFO']
