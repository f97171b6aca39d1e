"""The package list, found rather than listed, so that a new subpackage (a search is
one) needs no edit here; the study configs in configs/ ship as jaxmlp.configs
(pyproject.toml's package-dir)."""

import setuptools

setuptools.setup(packages=setuptools.find_packages(include=['jaxmlp', 'jaxmlp.*'])
                 + ['jaxmlp.configs'])
