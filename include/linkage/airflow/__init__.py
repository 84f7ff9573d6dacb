"""linkage's Airflow layer: the only part of the package that imports Airflow.

`tasks` holds the task functions (module level, one call into the engine's
stages each), `dag_factory` maps the run's plan onto them, `params` builds the
trigger forms from `MigrationParams` and the registry, `notifier` delivers
alerts (a subscriber of the runs' events), `notes`
writes each DAG run's one-line note, and `view` is the Linkage page served by
the plugin in `plugins/`. The engine (`linkage.*` outside this package) never
imports from here.
"""
