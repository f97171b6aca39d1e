"""The package's structure, scanned from its source by tools/layout_scan.py."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'tools'))
import layout_scan  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_the_scan_finds_a_cycle_and_a_lazy_import(tmp_path):
  package = tmp_path / 'jaxmlp'
  (package / 'sub').mkdir(parents=True)
  (package / '__init__.py').write_text('')
  (package / 'sub' / '__init__.py').write_text('')
  (package / 'a.py').write_text('from jaxmlp.sub import b\n')
  (package / 'sub' / 'b.py').write_text('def f():\n  from jaxmlp import a\n')
  (package / 'c.py').write_text('import os\n')
  found = layout_scan.scan(package)
  assert found['cycles'] == [['jaxmlp.a', 'jaxmlp.sub.b']]
  assert found['subpackages'] == ['jaxmlp.sub']


def test_the_scan_finds_an_import_against_the_layers_and_a_subpackage_cycle(tmp_path):
  package = tmp_path / 'jaxmlp'
  for sub in ('engine', 'report', 'search', 'search/pbt'):
    (package / sub).mkdir(parents=True, exist_ok=True)
    (package / sub / '__init__.py').write_text('')
  (package / '__init__.py').write_text('')
  (package / 'engine' / 'runner.py').write_text('from jaxmlp.report import board\n')
  (package / 'report' / 'board.py').write_text('def f():\n  from jaxmlp.engine import runner\n')
  (package / 'search' / 'pbt' / '_rules.py').write_text('')
  (package / 'report' / 'figures.py').write_text('from jaxmlp.search.pbt import _rules\n')
  found = layout_scan.scan(package)
  assert found['upward'] == ['jaxmlp.engine.runner -> jaxmlp.report.board',
                             'jaxmlp.report.figures -> jaxmlp.search.pbt._rules']
  assert found['layer_cycles'] == [['engine', 'report']]
  assert found['cycles'] == [['jaxmlp.engine.runner', 'jaxmlp.report.board']]
  assert found['private'] == ['jaxmlp.report.figures -> jaxmlp.search.pbt._rules']


def test_the_package_has_no_import_cycles():
  assert layout_scan.scan()['cycles'] == []


def test_every_import_follows_the_declared_layers():
  found = layout_scan.scan()
  assert found['upward'] == []
  assert found['layer_cycles'] == []
  assert found['private'] == []


def test_subpackages_with_one_job_each():
  assert len(layout_scan.scan()['subpackages']) >= 4


def test_no_module_is_too_long():
  assert layout_scan.scan()['over_limit'] == {}


def test_the_objectives_direction_is_decided_in_one_place():
  assert len(layout_scan.scan()['direction_sites']) == 1
