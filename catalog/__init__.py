"""The kernel: task specs, the record contract and settings. Imports no other package of the project."""

from catalog.errors import CatalogError, Problem
from catalog.loader import Catalog, load_catalog
from catalog.spec import LANGS, TaskSpec

__all__ = ["LANGS", "Catalog", "CatalogError", "Problem", "TaskSpec", "load_catalog"]
