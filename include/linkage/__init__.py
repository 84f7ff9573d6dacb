"""linkage: repair and keep MongoDB cross-collection references linked, safely.

The engine (this package) needs no Airflow. A run is a plan (`plan`) of stages
(`stages`, `backfill`, `judge`, `verdict`, `rollback`) over the registered steps
(`steps`), carried out in this process by `runner` or mapped onto Airflow tasks
by `linkage.airflow`; the DAGs in `dags/` are thin wiring over that.
"""

__version__ = "0.1.0"
