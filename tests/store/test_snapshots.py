"""Data file locations as any engine writes them map to the file our reader and cleaner open."""

from __future__ import annotations

import pytest

from lineage.store.snapshots import file_path


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("file:///data/store[1]/warehouse/a.parquet", "/data/store[1]/warehouse/a.parquet"),
        ("file:/data/w/a.parquet", "/data/w/a.parquet"),  # Spark's Hadoop file IO writes one slash
        ("s3://lake/wh/a.parquet", "lake/wh/a.parquet"),
        ("s3a://lake/wh/a.parquet", "lake/wh/a.parquet"),
        ("/data/w/a.parquet", "/data/w/a.parquet"),
    ],
)
def test_a_location_becomes_the_filesystem_path(location: str, path: str) -> None:
    """pyiceberg's, Spark's and plain locations all name the same file to pyarrow."""
    assert file_path(location) == path
