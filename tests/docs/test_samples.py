"""Every code sample in README.md and docs/*.md runs, against a real broker and a small store.

Each fenced block is found by its language: ``python`` blocks are exec'd, ``sh`` blocks run in bash
(each command must exit 0, or the code its ``# exit N`` comment names), ``sql`` blocks run in DuckDB
over the store (``.read FILE`` lines load the file, as in the DuckDB CLI), ``toml`` blocks load as a
policy or a taxonomy extension, and ``text`` blocks are output, not run. A block that must not run is
preceded by a ``<!-- not-run: <reason> -->`` line; one test checks each of those has its reason.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from lineage import Emitter, Party, Settings, default_taxonomy
from lineage.codec.avro import Codec
from lineage.contract.policy import load_policy
from lineage.contract.records import make_record
from lineage.contract.taxonomy import Taxonomy
from lineage.gateway.mapping import load_mapping
from lineage.store import Store
from lineage.transport.kafka import create_topics
from tests.fixtures import T0

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
RUN = {"python", "sh", "sql", "toml"}
OUTPUT = {"text"}
NOT_RUN = re.compile(r"^<!--\s*not-run:(.*?)-->\s*$")
EXIT = re.compile(r"#.*\bexit (\d+)\b")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a markdown file."""

    file: str
    line: int
    lang: str
    text: str
    not_run: str | None  # the reason given, when marked not-run

    @property
    def id(self) -> str:
        """``file:line`` of the opening fence."""
        return f"{self.file}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    """The fenced blocks of one markdown file, with the not-run reason of the line before each."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    name = str(path.relative_to(REPO))
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if not fence.startswith("```"):
            i += 1
            continue
        start, lang = i, fence[3:].strip()
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marked = NOT_RUN.match(before)
        out.append(Block(name, start + 1, lang, "\n".join(body) + "\n", marked.group(1).strip() if marked else None))
        i += 1
    return out


BLOCKS = [b for path in DOCS for b in _blocks(path)]


def _runnable(lang: str) -> list[Block]:
    """The blocks of ``lang`` that run."""
    return [b for b in BLOCKS if b.lang == lang and b.not_run is None]


def _params(lang: str) -> list[object]:
    return [pytest.param(b, id=b.id) for b in _runnable(lang)]


def test_every_block_runs_or_says_why_not() -> None:
    """Each block is run, output-only, or marked not-run with a reason; no marker stands alone."""
    assert BLOCKS, "no code block found in README.md and docs/*.md"
    assert (REPO / "docs").is_dir()
    unknown = [f"{b.id} ```{b.lang}" for b in BLOCKS if b.lang not in RUN | OUTPUT]
    assert not unknown, f"blocks of a language no test runs (use python, sh, sql, toml or text): {unknown}"
    no_reason = [b.id for b in BLOCKS if b.not_run == ""]
    assert not no_reason, f"not-run blocks without a reason: {no_reason}"
    markers = sum(
        1 for path in DOCS for line in path.read_text(encoding="utf-8").splitlines() if NOT_RUN.match(line.strip())
    )
    skipped = [b for b in BLOCKS if b.not_run is not None]
    assert markers == len(skipped), "a not-run marker must come right before the block it is about"
    assert all(b.lang in RUN for b in skipped), "output-only text blocks need no not-run marker"
    assert len(_runnable("python")) + len(_runnable("sh")) + len(_runnable("sql")) > len(skipped)


# -- the store the samples ask questions of ------------------------------------------------------------


def _seed(emit: Emitter) -> None:
    """The identifiers the docs' samples use: user-42 (also device-9), user-7, child-7, alipay-sdk, chat-hk..."""
    at = {"occurred_at": T0}
    emit.collected(
        "user-42",
        ["user.contact.phone_number", "user.financial.bank_account"],
        purpose="essential.service.payment_processing",
        legal_basis="CONTRACT",
        subject_jurisdiction="CN",
        retention_days=365,
        linked_subject_ids=["device-9"],
        **at,
    )
    emit.collected(
        "user-7",
        ["user.contact.address", "user.behavior.access_log"],
        purpose="essential.service",
        legal_basis="CONTRACT",
        subject_jurisdiction="CN",
        retention_days=30,
        **at,
    )
    emit.shared(
        "user-42",
        ["user.financial.bank_account"],
        recipient=Party(name="alipay-sdk", role="processor", region="CN"),
        purpose="essential.service.payment_processing",
        occurred_at=T0 + timedelta(hours=1),
    )
    emit.transferred(
        "user-42",
        ["user.contact.phone_number"],
        recipient=Party(name="chat-hk", role="affiliate", region="HK"),
        purpose="essential.service",
        mechanism="gba.standard_contract",
        occurred_at=T0 + timedelta(hours=2),
    )
    emit.shared(
        None,
        ["user.contact.address"],
        bulk_as_of=T0 + timedelta(hours=3),
        recipient=Party(name="sf-express", role="third_party", region="CN"),
        purpose="essential.service",
        occurred_at=T0 + timedelta(hours=4),
    )
    emit.erased(
        "user-42",
        ["user.financial.bank_account"],
        outcome="HOLD",
        hold_reason="tax law: transaction records kept 10 years",
        occurred_at=T0 + timedelta(days=1),
    )
    emit.consent("child-7", ["user.childrens"], status="GRANTED", kind="GUARDIAN", purpose="essential.service",
                 age_band="CHILD_UNDER_14", **at)  # fmt: skip


def _archive(path: Path) -> None:
    """An Avro container file of two events, for the backfill sample (``--from-file archive.avro``)."""
    records = [
        make_record("COLLECTED", system="legacy-crm", system_region="CN", subject_id=f"old-{i}",
                    categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                    occurred_at=T0 - timedelta(days=30))
        for i in range(2)
    ]  # fmt: skip
    Codec().write_container(path, records)


@pytest.fixture(scope="module")
def seed_dir(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``lineage-store`` (the seed events, ingested through a real broker) and ``archive.avro``.

    Each test's workspace is this folder, restored in place from a pristine copy (``workspace``): a
    store copied elsewhere would still name this folder's files (Iceberg keeps absolute paths), and is
    refused; restored at the same place, the copy names its own.
    """
    folder = tmp_path_factory.mktemp("docs-seed") / "ws"
    folder.mkdir()
    name = f"docs.{uuid.uuid4().hex[:12]}"
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic=name, dead_letter_topic=name + ".dlq",
                        connect_timeout_s=20)  # fmt: skip
    create_topics(settings, [settings.topic, settings.dead_letter_topic], partitions=3)
    with Emitter(system="checkout", region="CN", settings=settings) as emit:
        _seed(emit)
    store = folder / "lineage-store"
    done = subprocess.run(
        [VENV_BIN / "lineage", "ingest", "--exit-when-idle", "2", "--store", str(store), "--group", name + ".group",
         "--bootstrap-servers", kafka_bootstrap, "--topic", name],
        env={**os.environ, "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Store(store).count() == 7
    _archive(folder / "archive.avro")
    shutil.copytree(folder, folder.with_name("pristine"))
    return folder


@pytest.fixture
def workspace(seed_dir: Path, kafka_settings: Settings) -> tuple[Path, dict[str, str]]:
    """A working folder as a reader of the docs has it (store, archive, the shipped folders) and its env.

    The seed folder itself, restored from its pristine copy: what an earlier sample wrote or forgot is gone.
    """
    ws = seed_dir
    shutil.rmtree(ws)
    shutil.copytree(seed_dir.with_name("pristine"), ws)
    for shipped in ("queries", "policies", "schemas"):
        (ws / shipped).symlink_to(REPO / shipped)
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "LINEAGE_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "LINEAGE_TOPIC": kafka_settings.topic,
        "LINEAGE_DEAD_LETTER_TOPIC": kafka_settings.dead_letter_topic,
        "LINEAGE_STORE_DIR": str(ws / "lineage-store"),
        "LINEAGE_GROUP_ID": kafka_settings.topic + ".group",
        "LINEAGE_CONNECT_TIMEOUT_S": "20",
        "LINEAGE_CACHE_DIR": os.environ.get("LINEAGE_CACHE_DIR", str(REPO / ".cache")),
    }
    return ws, env


# -- the samples ----------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("block", _params("python"))
def test_python_sample_runs(
    block: Block, kafka_settings: Settings, workspace: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python sample runs as written, with LINEAGE_* pointing at the test broker and store."""
    ws, env = workspace
    for key in ("LINEAGE_BOOTSTRAP_SERVERS", "LINEAGE_TOPIC", "LINEAGE_DEAD_LETTER_TOPIC", "LINEAGE_STORE_DIR",
                "LINEAGE_GROUP_ID", "LINEAGE_CONNECT_TIMEOUT_S", "PATH"):  # fmt: skip
        monkeypatch.setenv(key, env[key])
    monkeypatch.chdir(ws)
    exec(compile(block.text, block.id, "exec"), {"__name__": "__doc_sample__"})  # noqa: S102


def _commands(text: str) -> list[tuple[str, int]]:
    """A shell block's commands (continued lines and multi-line quotes joined) with the exit code each expects."""
    out: list[tuple[str, int]] = []
    pending = ""
    for line in text.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.rstrip().endswith("\\"):
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if words:
            code = EXIT.search(pending.splitlines()[-1])
            out.append((pending, int(code.group(1)) if code else 0))
        pending = ""
    assert not pending, f"unterminated command: {pending!r}"
    return out


def test_shell_commands_are_split_as_bash_would() -> None:
    """Continued lines and multi-line quotes make one command; '# exit N' sets the expected code."""
    text = "echo 'a\nb' | cat\nfalse \\\n  --x   # exit 1\n# a comment\ntrue  # it's fine\n"
    assert _commands(text) == [("echo 'a\nb' | cat", 0), ("false \\\n  --x   # exit 1", 1), ("true  # it's fine", 0)]


@pytest.mark.integration
@pytest.mark.parametrize("block", _params("sh"))
def test_shell_sample_runs(block: Block, workspace: tuple[Path, dict[str, str]]) -> None:
    """Each command of a shell sample exits with the code the doc says (0 unless '# exit N')."""
    ws, env = workspace
    commands = _commands(block.text)
    assert commands, f"{block.id}: an empty shell block"
    script = []
    for n, (command, expected) in enumerate(commands, start=1):
        script += [
            command,
            f'rc=$?; if [ $rc -ne {expected} ]; then echo "command {n} exited $rc, not {expected}" >&2; exit 99; fi',
        ]
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=ws, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (
        f"{block.id}\n{block.text}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    )


@pytest.mark.integration
@pytest.mark.parametrize("block", _params("sql"))
def test_sql_sample_runs(block: Block, workspace: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A SQL sample runs in DuckDB over the store, '.read FILE' loading the file as the DuckDB CLI does."""
    ws, _ = workspace
    monkeypatch.chdir(ws)
    con = Store(ws / "lineage-store").connect(default_taxonomy())
    try:
        pending: list[str] = []
        for line in block.text.splitlines():
            if line.startswith(".read "):
                text = "\n".join(pending).strip()
                if text:
                    con.execute(text).fetchall()
                pending = [(ws / line.removeprefix(".read ").strip()).read_text(encoding="utf-8")]
            else:
                pending.append(line)
        text = "\n".join(pending).strip()
        if text:
            con.execute(text).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("block", _params("toml"))
def test_toml_sample_loads(block: Block, tmp_path: Path) -> None:
    """A TOML sample is a policy file, an OpenLineage dataset mapping, or a taxonomy extension, and it loads."""
    if "[[datasets]]" in block.text:
        path = tmp_path / "mapping.toml"
        path.write_text(block.text, encoding="utf-8")
        assert load_mapping(path, default_taxonomy()).datasets
    elif "[organisation]" in block.text:
        path = tmp_path / "policy.toml"
        path.write_text(block.text, encoding="utf-8")
        assert load_policy(path, default_taxonomy()).name
    else:
        (tmp_path / "extra.toml").write_text(block.text, encoding="utf-8")
        assert Taxonomy.load([tmp_path])
