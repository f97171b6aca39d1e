"""--search=NAME: each name is a base.Search in its own module, imported only when
chosen (Optuna, slow to import, stays out of --help and of grid and Hyperband runs)."""

import subprocess
import sys

import pytest

from jaxmlp.search import base
from jaxmlp.search import registry
from jaxmlp.common.errors import UserError
from jaxmlp import pipeline
from jaxmlp.studies import study as study_lib


@pytest.mark.parametrize('name', list(registry.SEARCHES))
def test_each_name_is_a_search_of_that_name(name):
  search = registry.search_named(name)
  assert isinstance(search, base.Search) and search.name == name


def test_a_study_may_ask_only_for_a_registered_search():
  config = registry.complete(study_lib.make_config(search='bayes'))
  with pytest.raises(UserError, match='search=bayes is impossible: choose one of grid, '):
    pipeline.check_study(config, 48_000)


def _loaded_after_grid_and_hyperband() -> list[str]:
  """The modules loaded once the pipeline has looked up the grid and Hyperband."""
  code = ('import sys; from jaxmlp import pipeline; from jaxmlp.search import registry; '
          "[registry.search_named(n) for n in ('grid', 'hyperband')]; "
          "print(' '.join(sys.modules))")
  found = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
  assert found.returncode == 0, found.stderr
  return found.stdout.split()


def test_a_grid_or_hyperband_run_loads_no_optuna_search_module():
  loaded = _loaded_after_grid_and_hyperband()
  assert 'jaxmlp.search.grid' in loaded and 'jaxmlp.search.hyperband' in loaded
  assert not [m for m in loaded if m.startswith('jaxmlp.search.optuna')]


def test_a_grid_or_hyperband_run_does_not_import_optuna():
  assert 'optuna' not in _loaded_after_grid_and_hyperband()


def test_the_configurations_of_a_search():
  config = study_lib.load_config('finetune')
  grid = registry.search_named('grid').configurations(config)
  assert len(grid) > 1 and all(m.seed == 0 for m in grid)
  hyperband = registry.search_named('hyperband').configurations(config)
  assert [m.label for m in hyperband] == [m.label for m in grid]
