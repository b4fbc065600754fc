"""Tests of the ``lineage`` command line."""
