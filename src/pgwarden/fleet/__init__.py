"""`pgwarden fleet`: one plan rolled out over many databases in waves, gated by health.

Layer above `upgrade` and `apply`: every target is applied by apply's guarded
runner (`pgwarden.apply.api.apply_plan`) with its own identity stamp,
environment check and advisory lock. Modules: `config` (the
`[tool.pgwarden.fleet.<name>]` table), `targets` (where the databases come
from; DSNs are secrets), `waves` (canary first, then counts or percentages),
`gates` (health between waves), `journal` (the local rollout journal),
`rollout` (runs the waves), `status` (what each database's own history says,
and drift), `control` (resume and cancel).
"""
