"""Peers: the same workloads on procrastinate, pgqueuer, huey and django-tasks.

The adapters (``*_peer.py``) and :mod:`bench.peers.run` run inside
``bench/.venv-peers`` (installed from ``bench/requirements-peers.txt``) and
import neither tasktable nor SQLAlchemy; :mod:`bench.peers.host` runs them from
the main harness, one fresh database per run.
"""
