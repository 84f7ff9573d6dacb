"""linkage: repair and keep MongoDB cross-collection references linked, safely.

The engine (this package) needs no Airflow; the DAGs in `dags/` are thin
wiring over `linkage.pipeline`.
"""

__version__ = "0.1.0"
