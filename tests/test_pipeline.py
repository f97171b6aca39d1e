"""A study end to end: what it refuses before anything is put on the devices."""

import pytest

from jaxmlp import pipeline
from jaxmlp.common.errors import UserError
from jaxmlp.studies import study


def test_a_run_too_big_for_the_host_is_refused_at_its_start(tmp_path, small_split):
  huge = study.make_config(name='huge', epochs=1, hidden_sizes=(100_000_000, 256))
  with pytest.raises(UserError, match=r'^hidden_sizes \(100000000, 256\) \(adam, batch '
                     r'256\): one member needs [\d.]+ GB on a device .*use smaller layers'):
    pipeline.run_study(huge, small_split, output_dir=tmp_path, command='', progress=False)
  assert not (tmp_path / 'huge').exists()   # nothing claimed, nothing allocated
  search = study.load_config('finetune_optuna')
  search.optuna.slots = 10**9
  with pytest.raises(UserError, match='ask for fewer with --config.optuna.slots$'):
    pipeline.run_study(search, small_split, output_dir=tmp_path, command='', progress=False)
  assert not (tmp_path / 'finetune_optuna').exists()
