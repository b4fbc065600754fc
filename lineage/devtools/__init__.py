"""Development tooling, shipped for ``lineage broker`` and the demo but never loaded by a running service.

- ``local_broker``  a real single-node Kafka broker from the official jars, for the demo, the tests and
                    ``lineage broker``
- ``ports``         free loopback ports for them, from ``LINEAGE_PORT_RANGE`` when set

Only the CLI (and the tests and benchmarks) import this package: the SDK, the transport, the
consumers and the console never do (``pyproject.toml``'s import-linter contract ``devtools``).
"""
