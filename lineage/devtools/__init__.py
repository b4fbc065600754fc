"""Development tooling, shipped for ``lineage broker`` and the demo but never loaded by a running service.

- ``local_broker``  a real single-node Kafka broker from the official jars, for the demo, the tests and
                    ``lineage broker``

Only the CLI (and the tests and benchmarks) import this package: the SDK, the transport, the
consumers and the console never do (``pyproject.toml``'s import-linter contract ``devtools``).
"""
