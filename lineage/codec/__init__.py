"""The Avro codec: single-object encoding with a schema fingerprint. The only package importing fastavro.

- ``avro``     ``Codec``: encode, decode, read and write Avro container files
- ``codegen``  straight-line encoders and decoders generated from the schemas (twice fastavro's speed)
"""

from lineage.codec.avro import MAGIC, Codec, SchemaVersion, schema_dir

__all__ = ["MAGIC", "Codec", "SchemaVersion", "schema_dir"]
