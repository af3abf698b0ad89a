"""The directory ``rerun-logging run`` prepends to ``PYTHONPATH``: only ``sitecustomize``.

A package only so that it ships like any other module of rerun_logging; nothing
imports it as ``rerun_logging.instrument._sitedir``.
"""
