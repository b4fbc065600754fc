"""Settings: explicit, from LINEAGE_* variables, refusing values that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage import ConfigurationError, Settings


def test_from_env_reads_prefixed_variables_and_overrides_win() -> None:
    """LINEAGE_* variables set fields; explicit overrides beat them; None overrides are ignored."""
    env = {"LINEAGE_TOPIC": "t1", "LINEAGE_CONNECT_TIMEOUT_S": "2.5", "LINEAGE_TAXONOMY_DIR": "/tmp/tax"}
    s = Settings.from_env(env, topic="t2", bootstrap_servers=None)
    assert s.topic == "t2" and s.connect_timeout_s == 2.5 and s.taxonomy_dir == Path("/tmp/tax")


def test_bad_number_names_the_variable() -> None:
    """A non-numeric timeout names the variable and the value."""
    with pytest.raises(ConfigurationError, match="LINEAGE_CONNECT_TIMEOUT_S.*'soon'"):
        Settings.from_env({"LINEAGE_CONNECT_TIMEOUT_S": "soon"})


def test_non_positive_timeout_is_refused() -> None:
    """A zero timeout could never succeed and is refused."""
    with pytest.raises(ConfigurationError, match="connect_timeout_s"):
        Settings(connect_timeout_s=0)


def test_security_settings_come_from_env_and_the_password_from_a_file(tmp_path: Path) -> None:
    """SASL/TLS settings are read from LINEAGE_* variables; the password may come from a file."""
    secret = tmp_path / "password"
    secret.write_text("s3cret-pw\n", encoding="utf-8")
    s = Settings.from_env(
        {
            "LINEAGE_SECURITY_PROTOCOL": "SASL_SSL",
            "LINEAGE_SASL_MECHANISM": "SCRAM-SHA-512",
            "LINEAGE_SASL_USERNAME": "emitter",
            "LINEAGE_SASL_PASSWORD_FILE": str(secret),
            "LINEAGE_SSL_CAFILE": str(tmp_path / "ca.pem"),
            "LINEAGE_SSL_CHECK_HOSTNAME": "false",
        }
    )
    assert (s.security_protocol, s.sasl_mechanism, s.sasl_username) == ("SASL_SSL", "SCRAM-SHA-512", "emitter")
    assert s.sasl_password == "s3cret-pw" and s.ssl_cafile == tmp_path / "ca.pem"
    assert s.ssl_check_hostname is False


def test_the_password_never_appears_in_the_settings_repr() -> None:
    """repr(Settings) (which may reach a log) never shows the SASL password."""
    s = Settings(security_protocol="SASL_SSL", sasl_username="emitter", sasl_password="s3cret-pw")
    assert "s3cret-pw" not in repr(s) and "emitter" in repr(s)


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u", "sasl_password": "p"},
         "sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_password": "p"}, "sasl_username"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u"}, "sasl_password"),
        ({"sasl_username": "u", "sasl_password": "p"}, "sasl_username"),
        ({"ssl_cafile": Path("ca.pem")}, "ssl_cafile"),
        ({"security_protocol": "SSL", "ssl_keyfile": Path("k.pem")}, "ssl_keyfile"),
    ],
)
def test_impossible_security_combinations_name_the_setting(kwargs: dict[str, object], setting: str) -> None:
    """A security setting that cannot work (or would be silently ignored) is refused by name."""
    with pytest.raises(ConfigurationError) as err:
        Settings(**kwargs)  # type: ignore[arg-type]
    assert err.value.setting == setting


def test_password_from_both_variable_and_file_is_refused(tmp_path: Path) -> None:
    """Two sources for the password are ambiguous and refused without echoing either."""
    secret = tmp_path / "password"
    secret.write_text("from-file", encoding="utf-8")
    env = {"LINEAGE_SASL_PASSWORD": "from-env", "LINEAGE_SASL_PASSWORD_FILE": str(secret)}
    with pytest.raises(ConfigurationError, match="LINEAGE_SASL_PASSWORD_FILE") as err:
        Settings.from_env(env)
    assert "from-env" not in str(err.value) and "from-file" not in str(err.value)


def test_unreadable_password_file_names_the_variable(tmp_path: Path) -> None:
    """A missing password file is one line naming the variable, not a traceback."""
    with pytest.raises(ConfigurationError, match="LINEAGE_SASL_PASSWORD_FILE"):
        Settings.from_env({"LINEAGE_SASL_PASSWORD_FILE": str(tmp_path / "absent")})


def test_paths_given_as_text_are_paths() -> None:
    """``Settings(spool_dir="/tmp/x")`` works like a Path: a str for a folder is not a crash later."""
    settings = Settings(spool_dir="/tmp/x", store_dir="s")  # type: ignore[arg-type]
    assert settings.spool_dir == Path("/tmp/x") and settings.store_dir == Path("s")


def test_store_secrets_come_from_the_environment_or_files_and_stay_out_of_repr(tmp_path: Path) -> None:
    """The catalog password and S3 keys come from variables or 0600 files; repr shows none of them."""
    secret = tmp_path / "pw"
    secret.write_text("catalog-secret\n")
    env = {
        "LINEAGE_CATALOG_URI": "postgresql+psycopg2://lineage@db:5432/lineage",
        "LINEAGE_CATALOG_PASSWORD_FILE": str(secret),
        "LINEAGE_WAREHOUSE": "s3://lake/lineage",
        "AWS_ACCESS_KEY_ID": "key-id",
        "AWS_SECRET_ACCESS_KEY": "s3-secret",
    }
    s = Settings.from_env(env)
    assert (s.catalog_password, s.s3_access_key_id, s.s3_secret_access_key) == ("catalog-secret", "key-id", "s3-secret")
    assert not {"catalog-secret", "key-id", "s3-secret"} & set(repr(s).replace("'", " ").split())


@pytest.mark.parametrize(
    ("kwargs", "setting", "words"),
    [
        ({"catalog_uri": "postgresql://u:pw@db/x", "warehouse": "s3://l/w"}, "catalog_uri", "holds a password"),
        ({"catalog_uri": "postgresql://u@db/x"}, "warehouse", "is required with a shared catalog_uri"),
        ({"catalog_uri": "mysql://u@db/x"}, "catalog_uri", "must start with"),
        ({"namespace": "a.b"}, "namespace", "characters"),
        ({"warehouse": "gs://bucket/x"}, "warehouse", "must be s3://"),
        ({"warehouse": "s3://l/w", "s3_access_key_id": "k"}, "s3_secret_access_key", "together"),
        ({"commit_retries": 0}, "commit_retries", "1 to 1000"),
    ],
)
def test_store_settings_that_cannot_work_name_the_setting(kwargs: dict[str, object], setting: str, words: str) -> None:
    """A password in the catalog URI, a shared catalog without a shared warehouse, and the like are refused."""
    with pytest.raises(ConfigurationError, match=words) as info:
        Settings(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting and "pw" not in str(info.value)


def test_a_password_in_the_catalog_uri_query_is_refused() -> None:
    """``?password=`` in the URI would reach logs and messages: refused, without echoing it."""
    with pytest.raises(ConfigurationError, match="holds a password") as info:
        Settings(catalog_uri="postgresql://u@db/x?sslmode=require&PassWord=hunter2", warehouse="s3://l/w")
    assert "hunter2" not in str(info.value)


def test_the_kafka_client_comes_from_its_variable() -> None:
    """LINEAGE_KAFKA_CLIENT chooses the client; confluent is the default."""
    assert Settings().kafka_client == "confluent"
    assert Settings.from_env({}).kafka_client == "confluent"
    assert Settings.from_env({"LINEAGE_KAFKA_CLIENT": "kafka-python"}).kafka_client == "kafka-python"
    assert Settings.from_env({"LINEAGE_KAFKA_CLIENT": "confluent"}).kafka_client == "confluent"


def test_an_unknown_kafka_client_is_one_line_naming_the_setting_and_the_choices() -> None:
    """A client name that is neither kafka-python nor confluent is refused naming kafka_client and both choices."""
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({"LINEAGE_KAFKA_CLIENT": "librdkafka"})
    assert err.value.setting == "kafka_client"
    assert str(err.value) == "kafka_client: must be one of kafka-python, confluent, got 'librdkafka'"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("0", "must be 1 to"), ("-5", "must be 1 to"), ("a year", "a number"), ("36501", "must be 1 to 36500")],
)
def test_keep_events_days_must_be_a_positive_number(raw: str, problem: str) -> None:
    """LINEAGE_KEEP_EVENTS_DAYS (store retention) is a whole number of days, 1 to 36,500: anything else names it."""
    with pytest.raises(ConfigurationError, match="(?i)keep_events_days") as caught:
        Settings.from_env({"LINEAGE_KEEP_EVENTS_DAYS": raw})
    assert problem in str(caught.value)
    assert Settings.from_env({"LINEAGE_KEEP_EVENTS_DAYS": "30"}).keep_events_days == 30
