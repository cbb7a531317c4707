"""Onca: self-hosted security monitoring with detections as Python code."""

__version__ = "0.1.0"
