"""The self-hosted lifecycle: parameters, ledger, stacks of resources, preflight, rollback, upgrades."""
