"""Apache Spark (local mode) with the Iceberg runtime, for tests that read and compact our tables.

``spark_jars`` asks Maven for the Iceberg Spark runtime, the AWS bundle (``S3FileIO``) and the
PostgreSQL JDBC driver once, into ``<cache_dir>/spark-iceberg/lib``. ``spark_session`` starts a
``local[1]`` session whose catalog ``lineage`` is Iceberg's JdbcCatalog on the same database as
pyiceberg's SQL catalog of that name, so both see the same tables.

``openlineage_spark_jar`` fetches the OpenLineage listener for Spark the same way, into
``<cache_dir>/spark-openlineage``. Run as ``python -m tests.spark`` it fetches them all and prints how
long that took (``./run``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "CATALOG", "ICEBERG_VERSION", "OPENLINEAGE_SPARK", "S3Access", "openlineage_spark_jar", "spark_jars",
    "spark_session", "stop_spark",
]  # fmt: skip

ICEBERG_VERSION = "1.12.0"
SPARK_RUNTIME = "iceberg-spark-runtime-4.1_2.13"  # pyspark 4.1.x: no runtime exists for 4.2 yet
POSTGRESQL_JDBC_VERSION = "42.7.14"
CATALOG = "lineage"  # must equal pyiceberg's catalog name: JdbcCatalog filters iceberg_tables by it
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
# the OpenLineage listener for Spark (Scala 2.13, as pyspark 4.1), one shaded jar: what pipelines run
OPENLINEAGE_SPARK = "io.openlineage:openlineage-spark_2.13:1.53.0"

# The runtime and the AWS bundle are shaded jars and the driver needs nothing at run time, so
# transitive dependencies are left out (they would only add duplicate classes).
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lineage.local</groupId><artifactId>spark-iceberg</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>{runtime}</artifactId><version>{iceberg}</version></dependency>
    <dependency><groupId>org.apache.iceberg</groupId><artifactId>iceberg-aws-bundle</artifactId><version>{iceberg}</version></dependency>
    <dependency><groupId>org.postgresql</groupId><artifactId>postgresql</artifactId><version>{pg}</version></dependency>
  </dependencies>
</project>
"""


@dataclass(frozen=True)
class S3Access:
    """An S3 endpoint and its keys, for Iceberg's ``S3FileIO``."""

    endpoint: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"


def spark_jars(cache_dir: Path) -> list[Path]:
    """Return the jars Spark needs for our Iceberg tables, asking Maven for them the first time."""
    lib = cache_dir / "spark-iceberg" / "lib"
    marker = lib / ".complete"
    if not marker.exists():
        _fetch(lib)
        marker.touch()
    return sorted(lib.glob("*.jar"))


def _fetch(lib: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError(
            "mvn", "Apache Maven is needed to fetch the Spark jars; install it (apt-get install maven)"
        )
    lib.mkdir(parents=True, exist_ok=True, mode=0o700)
    pom = lib.parent / "pom.xml"
    pom.write_text(
        _POM.format(runtime=SPARK_RUNTIME, iceberg=ICEBERG_VERSION, pg=POSTGRESQL_JDBC_VERSION), encoding="utf-8"
    )
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), _DEPENDENCY_PLUGIN, "-DexcludeTransitive=true", f"-DoutputDirectory={lib}"],
        capture_output=True,
        text=True,
        check=False,
    )
    wanted = (f"{SPARK_RUNTIME}-{ICEBERG_VERSION}.jar", f"iceberg-aws-bundle-{ICEBERG_VERSION}.jar")
    if proc.returncode != 0 or not all((lib / name).exists() for name in wanted):
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise ConfigurationError(
            "mvn", f"fetching the Spark Iceberg jars failed (exit {proc.returncode}):\n" + "\n".join(tail)
        )


def openlineage_spark_jar(cache_dir: Path) -> Path:
    """The OpenLineage Spark listener's jar, asked of Maven the first time, into ``<cache_dir>/spark-openlineage``."""
    lib = cache_dir / "spark-openlineage"
    _, artifact, version = OPENLINEAGE_SPARK.split(":")
    jar = lib / f"{artifact}-{version}.jar"
    if jar.exists():
        return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError("mvn", "Apache Maven is needed to fetch the OpenLineage Spark listener")
    lib.mkdir(parents=True, exist_ok=True, mode=0o700)
    copy = _DEPENDENCY_PLUGIN.removesuffix("copy-dependencies") + "copy"
    proc = subprocess.run([mvn, "-q", "-B", copy, f"-Dartifact={OPENLINEAGE_SPARK}", f"-DoutputDirectory={lib}"],
                          capture_output=True, text=True, check=False, cwd=lib)  # fmt: skip
    if proc.returncode != 0 or not jar.exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise ConfigurationError(
            "mvn", f"fetching {OPENLINEAGE_SPARK} failed (exit {proc.returncode}):\n" + "\n".join(tail)
        )
    return jar


def spark_session(
    jdbc_url: str,
    user: str,
    password: str,
    warehouse: str,
    s3: S3Access | None = None,
    *,
    jars: Sequence[Path],
) -> SparkSession:
    """A ``local[1]`` session (1 GB driver, no UI) whose catalog ``lineage`` is our JDBC catalog."""
    from pyspark.sql import SparkSession

    prefix = f"spark.sql.catalog.{CATALOG}"
    # Python workers (Arrow functions) run PYSPARK_PYTHON, read when the context starts: this
    # interpreter, whose environment has pyarrow and lineage, not whatever python3 is on the PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Everything given to the builder before the JVM exists becomes a spark-submit `--conf` argument
    # (pyspark's launch_gateway), visible in `ps`: only settings without secrets go there.
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("lineage-tests")
        .config("spark.jars", ",".join(str(jar) for jar in jars))
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")  # else Spark picks the machine's outward address
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    # The catalog is built on its first use from the session's conf at that moment, so the secrets
    # set here, in-process, reach it without ever being on a command line.
    catalog = {
        "": "org.apache.iceberg.spark.SparkCatalog",
        ".type": "jdbc",
        ".uri": jdbc_url,
        ".jdbc.user": user,
        ".jdbc.password": password,
        ".warehouse": warehouse,
    }
    if s3 is not None:
        catalog |= {
            ".io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            ".s3.endpoint": s3.endpoint,
            ".s3.path-style-access": "true",
            ".s3.access-key-id": s3.access_key_id,
            ".s3.secret-access-key": s3.secret_access_key,
            ".client.region": s3.region,
        }
    for key, value in catalog.items():
        spark.conf.set(prefix + key, value)
    return spark


def stop_spark(spark: SparkSession) -> None:
    """Stop the session and end its JVM by pid: pyspark alone keeps the JVM until Python exits."""
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    proc = gateway.proc  # the spark-submit process, which execs the JVM
    if proc.stdin is not None:
        proc.stdin.close()  # the JVM also ends when this pipe closes (pyspark's own exit path)
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # the next spark_session then launches a JVM of its own, with its own jars and settings
    SparkContext._gateway = None
    SparkContext._jvm = None


def main() -> int:
    """Fetch the jars (Iceberg's, the OpenLineage listener) into LINEAGE_CACHE_DIR (default .cache); print how long."""
    cache = Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parent.parent / ".cache"))
    started = time.monotonic()
    try:
        jars = [*spark_jars(cache), openlineage_spark_jar(cache)]
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{len(jars)} Spark jars in {cache} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
