-- Each event file's highest offset in each source partition: a holdings refresh reads only the files
-- holding an event after the offsets it applied (lineage.store.engine.Scan, file_bounds.files_after).
-- Files are never rewritten in place, so the maintainer asks this once per file it has not seen.
-- A row with no origin or partition makes a group of its own (a NULL key: the file is always read).
-- Parameters: $files (the files to look at).
SELECT data_file, origin, kafka_partition, max(kafka_offset) AS highest
FROM events_by_file
WHERE list_contains($files::VARCHAR[], data_file)
GROUP BY data_file, origin, kafka_partition
