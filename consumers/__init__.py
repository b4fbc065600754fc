"""Kafka consumer processes that build the lineage store (see the ingest issue)."""
