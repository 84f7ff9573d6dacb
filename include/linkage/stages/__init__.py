"""Every stage a plan is made of, one module each (`preflight`, `backup`, `indexes`, `backfill`, `apply`,
`validate`, `conclude`, `rollback`, `suggest`, `housekeeping`, `retention`, a decisions run's `approval`),
and `executor`, which carries a plan out in this process (the CLI,
benches, tests; Airflow maps the same plan onto tasks in `linkage.airflow`).

Imports `review`, `validation` and below.
"""
