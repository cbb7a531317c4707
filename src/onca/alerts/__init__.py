"""Alerting: rule matches and rule errors become deduplicated alerts (manager.py), stored in the metadata
database, with the matched events written to the lake's rule-match and rule-error tables (lake.py)."""
