"""Who can change this database: roles x capabilities, the verdict against the declared
role policy, the fix as a plan, and the role check apply runs (docs/audit.md)."""
