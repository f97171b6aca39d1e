"""--search=pb2: PBT's exploit with a GP-UCB explore; its data rebuilt from the
population's arrays; a study end to end, killed with kill -9 and rerun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxmlp.common import faults
from jaxmlp.common.errors import UserError
from jaxmlp.search import registry
from jaxmlp.search.pb2 import PB2Search
from jaxmlp.search.pb2 import _explore
from jaxmlp.search.pbt import PBTSearch
from jaxmlp.search.pbt import _files
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib

TINY = dict(name='tiny_pb2', optimizer='rmsprop', kernel_init='he_normal',
            hidden_sizes=(16,), l2=space.log_uniform(1e-7, 1e-1),
            learning_rate=space.log_uniform(1e-4, 1e-2), epochs=5, seeds=1, search='pb2',
            pb2=dict(population=4, interval=2), final_epochs=0, data_limit=600)


def test_intervals_follow_each_slots_weights_through_its_exploits():
  # 3 slots, 2 generations of interval 2; at generation 1 slot 2 copied slot 0 and got
  # new values.
  initial_MF = np.array([[1.0], [2.0], [3.0]])
  score_GM = np.array([[0.5, 0.4, 0.1], [0.7, 0.6, 0.65]])
  donor_GM = np.array([[-1, -1, 0], [-1, -1, -1]])
  new_GMF = np.full((2, 3, 1), np.nan)
  new_GMF[0, 2] = [9.0]
  X, t, y, r = _explore.intervals(initial_MF, score_GM, donor_GM, new_GMF, 2, 2, 1.0)
  assert X[:, 0].tolist() == [1, 2, 3, 1, 2, 9]
  assert t.tolist() == [2, 2, 2, 4, 4, 4]
  assert r.tolist() == [0, 0, 0, 0.5, 0.4, 0.5]    # slot 2 starts from its donor's 0.5
  np.testing.assert_allclose(y, [0.25, 0.2, 0.05, 0.1, 0.1, 0.075])
  # A loss is minimized: the bandit maximizes its fall.
  _, _, y_loss, _ = _explore.intervals(initial_MF, score_GM, donor_GM, new_GMF, 1, 2, -1.0)
  np.testing.assert_allclose(y_loss, [-0.25, -0.2, -0.05])


class _Population:
  """What _explore reads of pbt._evolve.Population."""

  def __init__(self, config, dims, values_MF, generation):
    n = len(values_MF)
    rng = np.random.default_rng(0)
    self.config, self.dims, self.values_MF, self.n = config, dims, values_MF, n
    self.score_GM = rng.uniform(0.1, 0.9, (generation, n)).astype(np.float32)
    self.donor_GM = np.full((generation, n), -1)
    self.new_GMF = np.full((generation, n, len(dims)), np.nan, np.float32)
    self.violation_M = None   # one objective: no constraints


def _config(**pb2):
  config = registry.complete(study_lib.make_config(**{**TINY, 'pb2': {
      **TINY['pb2'], **pb2}}))
  return PB2Search().pbt_config(config)


def test_the_bandit_keeps_pbts_donors_and_chooses_inside_the_space_deterministically():
  config = _config(population=8)
  search = PB2Search()
  dims = search.dimensions(config)
  values_MF = search.first_values(config, dims)
  population = _Population(config, dims, values_MF, 3)
  scores = population.score_GM[-1]
  pbt = PBTSearch().explore(config, population, scores, 3)
  first = search.explore(config, population, scores, 3)
  again = search.explore(config, population, scores, 3)
  assert [(t, d) for t, d, _ in first] == [(t, d) for t, d, _ in pbt]   # PBT's exploit
  assert len(first) == 2
  for (_, _, a), (_, _, b) in zip(first, again):
    np.testing.assert_array_equal(a, b)
  for _, _, new in first:
    assert new.dtype == np.float32
    for d, value in zip(dims, new):
      assert d.low <= value <= d.high
  assert not np.array_equal(first[0][2], first[1][2])   # a batch spreads out


def test_choices_and_flat_flags_are_refused():
  config = registry.complete(study_lib.make_config(**{**TINY, 'l2': (1e-6, 1e-4)}))
  with pytest.raises(UserError, match="--search=pb2 explores ranges"):
    PB2Search().validate_config(config, 1000)
  assert not [name for name in registry.renamed_fields() if registry.renamed_fields()[
      name].startswith('pb2.')]


def _launch(config_file: Path, out: Path, fault: str | None = None):
  env = {k: v for k, v in os.environ.items() if k != faults.ENV}
  if fault:
    env[faults.ENV] = fault
  return subprocess.run([sys.executable, '-m', 'jaxmlp.launch', f'--study={config_file}',
                         f'--output_dir={out}', '--progress=false', '--checkpoint_every=1',
                         '--tensorboard=false'], capture_output=True, text=True,
                        timeout=600, env=env)


def test_a_pb2_study_killed_mid_run_reruns_to_the_same_lineage_and_weights(tmp_path):
  config_file = tmp_path / 'tiny_pb2.py'
  config_file.write_text('from jaxmlp.studies.study import make_config\n\n\n'
                         f'def get_config():\n  return make_config(**{TINY!r})\n')
  clean = _launch(config_file, tmp_path / 'clean')
  assert clean.returncode == 0, clean.stderr
  killed = _launch(config_file, tmp_path / 'killed', 'epoch:3:KILL')  # after generation 1
  assert killed.returncode == -9, killed.stderr
  rerun = _launch(config_file, tmp_path / 'killed')
  assert rerun.returncode == 0 and 'resumed at epoch' in rerun.stdout, rerun.stderr
  a, b = tmp_path / 'clean' / 'tiny_pb2', tmp_path / 'killed' / 'tiny_pb2'
  lineage = _files.read_lineage(a)
  assert [row['epoch'] for row in lineage] == [2, 4]
  assert (a / _files.LINEAGE_FILE).read_text() == (b / _files.LINEAGE_FILE).read_text()
  timing = ('fit_time_s', 'compile_time_s')
  for member in sorted((a / 'members').iterdir()):
    mine, theirs = (json.loads((s / 'members' / member.name / 'result.json').read_text())
                    for s in (a, b))
    assert {k: v for k, v in mine.items() if k not in timing} == {
        k: v for k, v in theirs.items() if k not in timing}
    assert (member / 'params.msgpack').read_bytes() == (
        b / 'members' / member.name / 'params.msgpack').read_bytes()
  assert _files.read(a)['winner'] == _files.read(b)['winner']
  assert (a / 'report.md').is_file()
