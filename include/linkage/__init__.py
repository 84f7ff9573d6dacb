"""linkage: repair and keep MongoDB cross-collection references linked, safely.

The engine (this package) needs no Airflow. Its subpackages are its layers, top first, each importing only
the ones below it (`.importlinter`, checked by `make lint`): `airflow` (the only one that imports Airflow),
`cli`, `report`, `stages`, `review` and `validation`, `run`, `dev`, `relations`, `engine`, `store`, `mongo`,
`core`. A run is a plan (`run.plan`) of stages (`stages`) over the registered relations (`relations`), carried
out in this process by `stages.executor` or mapped onto Airflow tasks by `linkage.airflow`; the DAGs in
`dags/` are thin wiring over that.
"""

__version__ = "0.1.0"
