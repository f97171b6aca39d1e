"""--search=NAME -> the search that runs a study.

Each search lives in its own module, imported only when chosen: a grid run (or
`--help`) never imports Optuna. Adding a search: its module, with a base.Search
subclass, and one line here.
"""

import importlib

# name -> (module, class): a subclass of jaxmlp.search.base.Search.
SEARCHES = {
    'grid': ('jaxmlp.search.grid', 'GridSearch'),
    'hyperband': ('jaxmlp.search.hyperband', 'HyperbandSearch'),
    'optuna': ('jaxmlp.search.optuna_search', 'OptunaSearch'),
    'pbt': ('jaxmlp.search.pbt', 'PBTSearch'),
    'pbt_replay': ('jaxmlp.search.pbt_replay', 'ReplaySearch'),
}


def search_named(name: str):
  """The base.Search registered as `name` (KeyError for another name)."""
  module, cls = SEARCHES[name]
  return getattr(importlib.import_module(module), cls)()

