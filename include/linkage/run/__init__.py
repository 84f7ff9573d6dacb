"""One run: the engine handle `session.Linkage` (the databases, the bookkeeping stores, the guarded write path,
the lease, the events), what a run is asked (`params`), its plan of stages (`plan`), its record (`record`,
`record_parts`), how it starts or resumes and how it closes (`lifecycle`), its events and alerts, and whether
its drift pages (`paging`).

Imports `dev` and below; the stages that use the handle live above it.
"""
