"""No Django models: tasktable's tables are its own (``tasktable.storage.schema``).

This module exists so that Django sends ``post_migrate`` for this app, which is
when tasktable's migrations are applied (see ``apps.py``).
"""
