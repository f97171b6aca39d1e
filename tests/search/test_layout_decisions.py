"""A search decides the same whatever the layout: a member's numbers do not depend on
its packing (member_arithmetic 'auto', alone on a CPU: tests/engine/test_invariance.py),
so neither do Hyperband's promotions nor PBT's exploits and lineage."""

import json
import subprocess
import sys

import pytest

_TINY = ['--data_limit=600', '--progress=false', '--tensorboard=false']
_LAYOUT_FREE = ('fit_time_s', 'compile_time_s', 'members_per_program', 'program')


def _launch(out, *args):
  run = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *args, *_TINY,
                        f'--output_dir={out}'], capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr
  return out


def _records(folder):
  """Every member's result.json, less what says where and how fast it ran."""
  return {p.parent.name: {k: v for k, v in json.loads(p.read_text()).items()
                          if k not in _LAYOUT_FREE}
          for p in sorted(folder.glob('*/result.json'))}


@pytest.mark.parametrize('search, args, files', [
    ('hyperband', ['--study=finetune', '--search=hyperband', '--seeds=1',
                   "--config.hidden_sizes=(64, 256)", '--config.hyperband.max_epochs=3',
                   '--config.final_epochs=0'],
     ('trials.csv',)),
    ('pbt', ['--study=finetune_pbt', '--epochs=4', '--config.pbt.population=4',
             '--config.pbt.interval=2', '--config.final_epochs=0'],
     ('pbt_lineage.jsonl',)),
])
def test_a_search_decides_the_same_whatever_the_layout(tmp_path, search, args, files):
  """Hyperband's trials and promotions, PBT's exploits and lineage: the same with one
  member a program on one device as with the planner's programs over two devices."""
  packed = _launch(tmp_path / 'packed', *args, '--cpu_devices=2')
  alone = _launch(tmp_path / 'alone', *args, '--cpu_devices=1',
                  *(['--config.max_members_per_program=1'] if search == 'hyperband' else []))
  name = args[0].split('=')[1]
  for file in files:
    assert (packed / name / file).read_text() == (alone / name / file).read_text(), file
  for folder in ('trials', 'members'):
    assert _records(packed / name / folder) == _records(alone / name / folder)
  if search == 'pbt':
    a, b = (json.loads((o / name / 'pbt.json').read_text()) for o in (packed, alone))
    assert a['devices'] == 2 and b['devices'] == 1
    for key in ('members', 'winner', 'dimensions'):
      assert a[key] == b[key], key
