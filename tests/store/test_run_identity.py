"""run.json: a rerun resumes what matches, adds what only adds work, refuses the rest;
a run.json of the release before sections (flat search settings) reads the same."""

import json
import pathlib
import shutil

import pytest

from jaxmlp.common.errors import UserError
from jaxmlp.search import registry
from jaxmlp.store import run_identity
from jaxmlp.studies import overrides
from jaxmlp.studies import study as study_lib

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'


def _config(name: str, overridden: list[tuple[str, str]]):
  """A study as the command line configures it (--config.FIELD=VALUE)."""
  config = registry.complete(study_lib.load_config(name))
  return overrides.apply(config, overridden, registry.renamed_fields())


# What made the fixtures (the release before sections): ../acc/ref.sh's runs. That
# release vmapped a program's members: member_arithmetic 'batched'.
BATCHED = [('member_arithmetic', 'batched')]
PBT_RUN = ('finetune_pbt', [('epochs', '6'), ('pbt.population', '4'), ('pbt.interval', '2'),
                            ('data_limit', '3000'), ('final_epochs', '6')] + BATCHED)
OPTUNA_RUN = ('finetune_optuna', [('optuna.trials', '6'), ('epochs', '3'),
                                  ('data_limit', '3000'), ('final_epochs', '3')] + BATCHED)


def _folder_of(tmp_path, fixture: str, name: str) -> pathlib.Path:
  folder = tmp_path / name
  folder.mkdir()
  shutil.copy(FIXTURES / fixture, folder / run_identity.RUN_FILE)
  return folder


@pytest.mark.parametrize('fixture, run', [('run_pbt.json', PBT_RUN),
                                          ('run_optuna.json', OPTUNA_RUN)])
def test_a_run_json_with_flat_search_settings_resumes_as_the_same_run(tmp_path, fixture,
                                                                      run):
  assert 'config' in json.loads((FIXTURES / fixture).read_text())
  name, overridden = run
  config = _config(name, overridden)
  folder = _folder_of(tmp_path, fixture, name)
  before = (folder / run_identity.RUN_FILE).read_text()
  run_identity.claim(folder, config, registry.identity_rules(config.search))
  assert (folder / run_identity.RUN_FILE).read_text() == before   # nothing to add


def test_an_old_run_resumed_with_another_arithmetic_is_refused(tmp_path):
  """It vmapped its members; 'auto' on a CPU computes them alone, which rounds
  differently: resuming would mix the two."""
  name, overridden = PBT_RUN
  config = _config(name, overridden[:-1])
  folder = _folder_of(tmp_path, 'run_pbt.json', name)
  with pytest.raises(UserError, match=r'\(member_arithmetic: batched there, auto now\)'):
    run_identity.claim(folder, config, registry.identity_rules(config.search))


def test_a_changed_setting_of_an_old_run_is_refused_by_its_new_name(tmp_path):
  name, overridden = PBT_RUN
  config = _config(name, overridden + [('pbt.population', '8')])
  folder = _folder_of(tmp_path, 'run_pbt.json', name)
  with pytest.raises(UserError, match=r'\(pbt\.population: 4 there, 8 now\)'):
    run_identity.claim(folder, config, registry.identity_rules(config.search))


def test_more_optuna_trials_on_an_old_run_add_work_and_another_searchs_settings_do_not_matter(
    tmp_path):
  name, overridden = OPTUNA_RUN
  config = _config(name, overridden + [('optuna.trials', '9'), ('pbt.population', '5'),
                                       ('optuna.slots', '2')])
  folder = _folder_of(tmp_path, 'run_optuna.json', name)
  run_identity.claim(folder, config, registry.identity_rules(config.search))
  stored = json.loads((folder / run_identity.RUN_FILE).read_text())['config']
  assert stored['optuna'] == {'trials': 9, 'sampler': 'tpe', 'pruner': 'median'}
  assert 'pbt' not in stored and 'pbt_population' not in stored


@pytest.mark.parametrize('flat, new', [('pbt_population', 'pbt.population'),
                                       ('hyperband_max_epochs', 'hyperband.max_epochs'),
                                       ('optuna_trials', 'optuna.trials'),
                                       ('pbt_replay', 'pbt_replay.study')])
def test_an_old_flat_flag_names_its_new_spelling(flat, new):
  config = registry.complete(study_lib.load_config('finetune_pbt'))
  with pytest.raises(UserError) as refused:
    overrides.apply(config, [(flat, '8')], registry.renamed_fields())
  assert str(refused.value) == f'--config.{flat} is now --config.{new}: pass --config.{new}=8'


def test_a_rerun_with_another_cpu_pool_is_refused_naming_the_setting(tmp_path):
  """The pool's size decides the last bits: resuming with another would mix them."""
  config = _config('baseline', [])
  folder = tmp_path / 'baseline'
  run_identity.claim(folder, config, cpu_threads=2)
  assert json.loads((folder / run_identity.RUN_FILE).read_text())['cpu_threads'] == 2
  run_identity.claim(folder, config, cpu_threads=2)   # the same pool resumes
  run_identity.claim(folder, config, cpu_threads=None)   # an accelerator: no pool
  with pytest.raises(UserError, match='pool of 2 XLA:CPU threads.*--cpu_threads=2'):
    run_identity.claim(folder, config, cpu_threads=4)
