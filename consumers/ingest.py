"""The ingest consumer process: ``python -m consumers.ingest [options]`` is ``lineage ingest [options]``.

Run one per core on the host that holds the store, all in one consumer group; each stores the
partitions it is assigned.
"""

from __future__ import annotations

import logging
import sys

from lineage.cli import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sys.exit(main(["ingest", *sys.argv[1:]]))
