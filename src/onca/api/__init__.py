"""Onca's HTTP API (FastAPI, under /api/v1) and the application that also serves the web console."""
