"""The `linkage` command: `main` (the parser and the entry point), `commands` (the run and server commands),
`review` (the review queue's CSV round trip) and `accept` (accepting suggestions).

Imports everything below it but `airflow`.
"""
