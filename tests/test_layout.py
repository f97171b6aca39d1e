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


def test_the_package_has_no_import_cycles():
  assert layout_scan.scan()['cycles'] == []


def test_subpackages_with_one_job_each():
  assert len(layout_scan.scan()['subpackages']) >= 4


def test_no_module_is_too_long():
  assert layout_scan.scan()['over_limit'] == {}


def test_the_objectives_direction_is_decided_in_one_place():
  assert len(layout_scan.scan()['direction_sites']) == 1
