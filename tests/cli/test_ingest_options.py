"""The ingest consumer's public entry: options as data, and the options a supervisor's children start with."""

from __future__ import annotations

import argparse
import inspect

import consumers.ingest
from lineage.cli.ingest import IngestOptions, add_ingest_options


def _parsed(argv: list[str]) -> IngestOptions:
    parser = argparse.ArgumentParser()
    add_ingest_options(parser)
    return IngestOptions.from_args(parser.parse_args(argv))


def test_a_childs_options_parse_back_to_the_same_options() -> None:
    """``argv()`` of any options gives them again: a supervisor's child runs exactly what was asked for."""
    full = IngestOptions(store="/data/store 1", catalog_uri="postgresql+psycopg2://u@h/db", warehouse="s3://b/p",
                         bootstrap_servers="k1:9092,k2:9092", topic="t.events", group="g", instance_id="host-0",
                         from_file="/in/events.avro", commit_rows=7, commit_interval=0.25, exit_when_idle=6.0,
                         holdings=False)  # fmt: skip
    for options in (full, IngestOptions(), IngestOptions(store="s", exit_when_idle=0.1)):
        assert _parsed(options.argv()) == options


def test_the_old_option_name_and_the_defaults_read_as_before() -> None:
    """``--segment-rows`` still sets the commit size; nothing given is the documented defaults, holdings on."""
    assert _parsed(["--segment-rows", "9"]).commit_rows == 9
    assert _parsed([]) == IngestOptions(commit_rows=50_000, commit_interval=2.0, holdings=True)


def test_only_given_store_options_reach_a_child_command_line() -> None:
    """A setting left to the environment (a catalog URI that may hold a user) is never written on a command line."""
    options = _parsed(["--store", "s", "--no-holdings"])
    assert options.store_argv() == ["--store=s"]
    assert not any(a.startswith(("--catalog-uri", "--warehouse", "--bootstrap-servers")) for a in options.argv())


def test_the_supervisor_builds_children_from_options_not_by_rewriting_argv() -> None:
    """``consumers.ingest`` imports no private CLI helper and keeps no argv-editing function."""
    source = inspect.getsource(consumers.ingest)
    assert "_common" not in source and "_without" not in source
    assert list(inspect.signature(consumers.ingest.supervise).parameters)[0] == "options"
