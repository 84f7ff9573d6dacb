"""linkage's Airflow layer: the only part of the package that imports Airflow.

`tasks` holds the task functions (module level, one call into
`linkage.pipeline` each), `dag_factory` only wires them, `params` builds the
trigger forms from `MigrationParams`, `notifier` delivers alerts, `notes`
writes each DAG run's one-line note, and `view` is the Linkage page served by
the plugin in `plugins/`. The engine (`linkage.*` outside this package) never
imports from here.
"""
