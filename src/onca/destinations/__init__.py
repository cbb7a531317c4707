"""Alert destinations: ten kinds, their configs and payloads, routing, and the delivery outbox.

- `registry.KINDS`, `registry.validate(kind, raw)`: the kinds and their validated configs (ConfigError
  names each bad field).
- `base.Alert`, `base.Result`: what a kind sends and what the attempt returned (success / transient / permanent).
- `routing.route(alert, destinations, rule_outputs, rule_destinations)`: who receives an alert.
- `outbox.enqueue(...)`, `outbox.deliver_due(session, now, fernet=...)`: queued, retried, recorded delivery.
- `store`: configured destinations in the metadata database (encrypted with `secrets`).
"""
