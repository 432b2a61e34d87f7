"""Runnable examples (``make example``)."""
