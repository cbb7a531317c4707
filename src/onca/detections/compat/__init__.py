"""Modules that detection code imports under panther_core / panther_detection_helpers names."""
