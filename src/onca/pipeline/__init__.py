"""The real-time pipeline: intake (HTTP push, syslog, a watched directory) into a durable spool, and what
consumes it. Each module is usable on its own; `onca serve` wires them together.
"""
