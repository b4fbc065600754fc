"""Settings: explicit, from LINEAGE_* variables, refusing values that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage import ConfigurationError, Settings


def test_from_env_reads_prefixed_variables_and_overrides_win() -> None:
    """LINEAGE_* variables set fields; explicit overrides beat them; None overrides are ignored."""
    env = {"LINEAGE_TOPIC": "t1", "LINEAGE_CONNECT_TIMEOUT_S": "2.5", "LINEAGE_TAXONOMY_DIR": "/tmp/tax"}
    s = Settings.from_env(env, topic="t2", bootstrap_servers=None)
    assert s.topic == "t2" and s.connect_timeout_s == 2.5 and s.taxonomy_dir == Path("/tmp/tax")


def test_bad_number_names_the_variable() -> None:
    """A non-numeric timeout names the variable and the value."""
    with pytest.raises(ConfigurationError, match="LINEAGE_CONNECT_TIMEOUT_S.*'soon'"):
        Settings.from_env({"LINEAGE_CONNECT_TIMEOUT_S": "soon"})


def test_non_positive_timeout_is_refused() -> None:
    """A zero timeout could never succeed and is refused."""
    with pytest.raises(ConfigurationError, match="connect_timeout_s"):
        Settings(connect_timeout_s=0)
