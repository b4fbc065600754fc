"""A Spark job with the OpenLineage Spark listener reports its copy to the gateway, which makes it a flow event."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from lineage import Settings
from lineage.codec.avro import Codec
from lineage.transport.kafka import read_messages
from tests.gateway.conftest import post_json, running_gateway
from tests.gateway.test_openlineage import _cli, _collected
from tests.spark import openlineage_spark_jar, stop_spark

pytestmark = pytest.mark.integration

_MAPPING = """
[defaults]
purpose = "essential.service"

[[datasets]]
namespace = "file"
name = "{source}"
holder = {{ name = "shop", role = "internal", region = "CN" }}
categories = ["user.contact.email"]

[[datasets]]
namespace = "file"
name = "{target}"
holder = {{ name = "crm-cn", role = "processor", region = "CN" }}
"""


def test_a_spark_job_with_the_openlineage_listener_becomes_a_shared_flow(
    kafka_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark copies shop's customers to crm-cn: one SHARED bulk event, in user-42's access and crm-cn's breach."""
    from pyspark.sql import SparkSession

    jar = openlineage_spark_jar(Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache")))
    source, target = tmp_path / "customers", tmp_path / "crm-import"
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(_MAPPING.format(source=source, target=target), encoding="utf-8")
    with running_gateway(kafka_settings, tmp_path, "--rate", "0", "--openlineage", str(mapping)) as gateway:
        token = gateway.token("shop-etl", "shop")
        status, collected = post_json(gateway.url, _collected("user-42", ["user.contact.email"], 1), token)
        assert status == 202, collected
        # the token goes in a private spark-defaults.conf, never on spark-submit's command line (visible in ps)
        conf = tmp_path / "spark-conf"
        conf.mkdir(mode=0o700)
        fd = os.open(conf / "spark-defaults.conf", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"spark.openlineage.transport.auth.apiKey {token}\n")
        monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("openlineage-tests")
            .config("spark.jars", str(jar))
            .config("spark.extraListeners", "io.openlineage.spark.agent.OpenLineageSparkListener")
            .config("spark.openlineage.namespace", "spark-tests")
            .config("spark.openlineage.transport.type", "http")
            .config("spark.openlineage.transport.url", gateway.url)
            .config("spark.openlineage.transport.endpoint", "/api/v1/lineage")
            .config("spark.openlineage.transport.auth.type", "api_key")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate()
        )
        try:
            # a session left by another test would be returned as is, without the listener: say so, not a missing flow
            assert spark.sparkContext.getConf().get("spark.extraListeners", "").endswith("OpenLineageSparkListener")
            rows = [(1, "a@example.com"), (2, "b@example.com")]
            spark.createDataFrame(rows, ["id", "email"]).write.parquet(str(source))
            spark.read.parquet(str(source)).select("email").write.parquet(str(target))
        finally:
            stop_spark(spark)  # the listener has sent every event once the session stopped
        with urllib.request.urlopen(gateway.url + "/health", timeout=30) as answer:
            health = json.loads(answer.read())
    log = next(tmp_path.glob("gateway-*.log")).read_text(encoding="utf-8")
    codec = Codec()
    events = [codec.decode(m.value) for m in read_messages(kafka_settings, kafka_settings.topic, idle_timeout_s=5)
              if m.value is not None]  # fmt: skip
    events.sort(key=lambda e: e.event_type.value)  # the topic's partitions do not keep order between subjects
    assert [(e.event_type, e.holder.name, e.recipient and e.recipient.name, e.categories) for e in events] == [
        ("COLLECTED", "shop", None, ("user.contact.email",)),
        ("SHARED", "shop", "crm-cn", ("user.contact.email",))], (health, log)  # fmt: skip
    assert health["openlineage"]["runs"] >= 1 and health["openlineage"]["flows"] >= 1, health
    # the pipeline's flow in the answers: ingested, then user-42's access request and a breach at crm-cn
    store = str(tmp_path / "store")
    ingest = _cli(kafka_settings, "ingest", "--store", store, "--exit-when-idle", "5", "--group", kafka_settings.topic)
    assert ingest.returncode == 0, ingest.stderr
    access = _cli(kafka_settings, "access", "user-42", "--store", store, "--format", "json")
    assert access.returncode == 0, access.stderr
    assert ("crm-cn", "user.contact.email") in {
        (h["holder"], h["category"]) for h in json.loads(access.stdout)["data_held"]
    }
    flow_at = events[1].occurred_at
    breach = _cli(kafka_settings, "breach", "--node", "crm-cn", "--from", (flow_at - timedelta(hours=1)).isoformat(),
                  "--to", (flow_at + timedelta(hours=1)).isoformat(), "--store", store, "--format", "json")  # fmt: skip
    assert breach.returncode == 0, breach.stderr
    impact = json.loads(breach.stdout)
    assert (impact["subjects"], [c["category"] for c in impact["by_category"]]) == (1, ["user.contact.email"])
