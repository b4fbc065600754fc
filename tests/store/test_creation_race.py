"""Several consumers opening a new store at once: every one of them gets the table."""

from __future__ import annotations

import threading
from pathlib import Path

from lineage.store import StoreLocation


def test_writers_creating_a_new_embedded_store_at_once_all_get_its_table(tmp_path: Path) -> None:
    """Four threads create the catalog, namespace and table of a fresh store together, eight times: none fails."""
    for round_ in range(8):
        root = tmp_path / f"store{round_}"
        start = threading.Barrier(4)
        failures: list[BaseException] = []

        def create() -> None:
            location = StoreLocation.embedded(root)  # noqa: B023 - the threads are joined within the round
            start.wait()  # noqa: B023
            try:
                location.load(create=True)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
                failures.append(exc)  # noqa: B023

        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert failures == [], f"round {round_}: {failures}"
        assert StoreLocation.embedded(root).load().properties["commit.retry.num-retries"] == "0"
