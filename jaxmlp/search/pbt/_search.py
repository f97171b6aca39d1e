"""Population-based training (Jaderberg et al. 2017) run as one compiled program: the
population is the member axis of one program; every `pbt.interval` epochs the bottom
quantile copies a top member's weights, optimizer state and best-epoch tracker (one
gather on the devices) and explores its hyperparameters (new values in the same
traced arrays): nothing pauses, is written to disk or recompiles. The decisions:
_rules (or a search's own explore); the in-program part: _evolve; the files: _files;
the winner's schedule retrained: _replay; the report: _report.
"""

from collections.abc import Callable

import ml_collections
import numpy as np

from jaxmlp.engine import runner
from jaxmlp.common.errors import UserError
from jaxmlp.search import base
from jaxmlp.search.pbt import _evolve
from jaxmlp.search.pbt import _files
from jaxmlp.search.pbt import _report
from jaxmlp.search.pbt import _rules
from jaxmlp.studies import checks
from jaxmlp.studies import study as study_lib


def population(config: ml_collections.ConfigDict
               ) -> tuple[list[study_lib.Member], list[_rules.Dimension], np.ndarray]:
  """(members, explored dimensions, (n, F) starting values): member k is seed k at a
  point drawn from the space (from --config.search_seed)."""
  fields, dims = _rules.dimensions(config)
  values_MF = _rules.first_population(config.pbt.population, dims, config.search_seed)
  swept = tuple(d.field for d in dims)
  members = [study_lib.Member(f'member={k}', config.arm, k,
                              _rules.member_values(fields, dims, dict(zip(swept, row))),
                              swept)
             for k, row in enumerate(values_MF.tolist())]
  return members, dims, values_MF


def one_program(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config the runner plans the population with: one program of every member."""
  config = ml_collections.ConfigDict(config.to_dict(), type_safe=False)
  config.max_members_per_program = config.pbt.population
  return config


def validate(config: ml_collections.ConfigDict, rows: int) -> None:
  """Refuses a space PBT cannot explore in one program (see PBTSearch)."""
  members, dims, _ = population(config)
  edges = [_rules.member_values(_rules.dimensions(config)[0], dims,
                                   {d.field: d.edges[i] for d in dims}) for i in (0, 1)]
  checks.check_members([study_lib.Member(f'edge{i}', '', 0, v, ()) for i, v in
                        enumerate(edges)] + members[:1], rows)
  structures = {study_lib.Member('', '', 0, v, ()).structure for v in edges}
  if len(structures) > 1:
    raise UserError('--search=pbt: the space changes the network at its edges (a '
                    'penalty or dropout of 0 at one end): keep each range above 0')
  asked = config.max_members_per_program
  if asked and asked < config.pbt.population:
    raise UserError(f'--config.max_members_per_program={asked} would cut the population '
                    f'of {config.pbt.population} into several programs: PBT trains it as '
                    'one (leave it at 0 or lower --config.pbt.population)')


def configurations(config: ml_collections.ConfigDict) -> list[study_lib.Member]:
  """The space's two corners (what a final model may be retrained with)."""
  fields, dims = _rules.dimensions(config)
  return [study_lib.Member(config.name, '', 0, _rules.member_values(
      fields, dims, {d.field: d.edges[i] for d in dims}), ()) for i in (0, 1)]


def program_demands(config: ml_collections.ConfigDict) -> list[base.Demand]:
  """One program holding the whole population (refused in one line if a device
  cannot hold its share)."""
  structure = population(config)[0][0].structure
  return [base.Demand(frozenset([structure]), config.pbt.population, 'pbt.population')]


def run(config: ml_collections.ConfigDict, settings: runner.Settings,
        data: runner.LazyDeviceData, explore: Callable | None = None) -> _report.PBTOutcome:
  """The population trained and evolved; `explore(population, scores_M, generation)`
  decides each generation's exploits (default: _rules.decide, PBT's own)."""
  members, dims, values_MF = population(config)
  n = len(members)
  written = {}   # what the population last wrote: pbt.json's object and the lineage

  def on_generation(p, done):
    written['pbt'], written['lineage'] = _files.write(settings.study_dir, p, done)

  def evolve_for(planned):
    if len(planned.members) != n:   # the planner cut it: PBT ranks one population
      raise UserError(f'the population of {n} would run as several programs: lower '
                      '--config.pbt.population or use a smaller network')
    mesh, block = planned.layout(data.mesh)
    rows = list(planned.members)
    return _evolve.Population(
        [members[k] for k in rows], dims, values_MF[rows], members[0].epochs, mesh,
        block * mesh.size, config, explore=explore,
        on_generation=on_generation)

  trained = runner.train_members(members, data, config=one_program(config),
                                 settings=settings, folder='members', title=config.name,
                                 evolve_for=evolve_for)
  records = [record for record, _ in trained]
  # Trained now: what it wrote, from memory; found complete on disk: its files.
  pbt = written['pbt'] if written else _files.read(settings.study_dir)
  if pbt is None or 'winner' not in pbt:
    raise UserError(f'{settings.study_dir / _files.PBT_FILE} is missing or incomplete: '
                    'delete the study folder and run it again')
  best = _files.winner_member(config, pbt)
  lineage = written['lineage'] if written else _files.read_lineage(settings.study_dir)
  return _report.PBTOutcome(best, records, pbt, lineage)

