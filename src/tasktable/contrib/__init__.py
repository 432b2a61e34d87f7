"""Integrations with web frameworks: ``django``, ``flask`` and ``fastapi`` (Starlette).

Each subpackage imports its framework; importing ``tasktable`` never does.
"""
