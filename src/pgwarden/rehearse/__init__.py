"""Rehearse a migration on a throwaway copy under synthetic traffic (`pgwarden rehearse`).

Modules: `api` (the entry point), `target` (where it runs), `schema` (what it
starts from), `datagen` (synthetic rows), `sampler`/`probes`/`trace` (what
each step does and whom it blocks), `blast` (blocking and production
estimates), `workload` (before/after EXPLAIN ANALYZE), `verdict` (findings),
`record` (the rehearsal record apply can require), `report_text`,
`report_html` and `charts` (rendering).
"""
