"""The generated Avro encoder and decoder agree byte for byte with fastavro."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import Codec, DecodeError, InvalidEventError
from lineage.codec.avro import _REPEATED as REPEATED
from lineage.codec.avro import MAGIC
from lineage.codec.codegen import MEMO_LIMIT, MEMO_MAX_BYTES, UnsupportedSchema, _long, compile_decoder, compile_encoder
from lineage.contract.records import to_record
from tests.fixtures import examples, sample_events

CODEC = Codec()
RAW = CODEC.current.raw


def _strategy(t: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(t, str) and t in named:
        return _strategy(named[t], named)
    if isinstance(t, list):
        return st.one_of(*[_strategy(b, named) for b in t])
    kind = t["type"] if isinstance(t, dict) else t
    if isinstance(kind, (dict, list)):
        return _strategy(kind, named)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "string": st.text(max_size=12),
        "long": st.integers(-(2**63), 2**63 - 1),
        "int": st.integers(-(2**31), 2**31 - 1),
        "boolean": st.booleans(),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        named["lineage." + t["name"]] = t
        return st.sampled_from(t["symbols"])
    if kind == "array":
        return st.lists(_strategy(t["items"], named), max_size=4)
    if kind == "record":
        named["lineage." + t["name"]] = t
        return st.fixed_dictionaries({f["name"]: _strategy(f["type"], named) for f in t["fields"]})
    raise AssertionError(kind)


RECORDS = _strategy(RAW, {})


def _fastavro_bytes(record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, CODEC.current.parsed, record)
    return buf.getvalue()


@settings(max_examples=examples(300))
@given(RECORDS)
def test_encoder_matches_fastavro(record: dict[str, Any]) -> None:
    """Any record of the schema encodes to exactly fastavro's bytes."""
    assert compile_encoder(RAW)(record) == _fastavro_bytes(record)


@settings(max_examples=examples(300))
@given(RECORDS)
def test_decoder_matches_fastavro(record: dict[str, Any]) -> None:
    """The bytes fastavro writes for any record decode to the same record with the generated decoder."""
    data = _fastavro_bytes(record)
    decoded, end = compile_decoder(RAW)(data, 0)
    assert end == len(data)
    assert decoded == fastavro.schemaless_reader(io.BytesIO(data), CODEC.current.parsed, None)


@settings(max_examples=examples(500))
@given(st.binary(max_size=300))
def test_garbage_after_the_header_raises_only_decode_error(body: bytes) -> None:
    """Random bytes behind a valid header either decode or raise DecodeError, never anything else."""
    try:
        CODEC.decode_record(MAGIC + CODEC.current.fingerprint + body)
    except DecodeError:
        pass


def test_wrong_type_names_the_field() -> None:
    """A value of the wrong type is refused naming its field, not with a bare TypeError."""
    record = to_record(sample_events()[0])
    with pytest.raises(InvalidEventError, match="retention_days='365'"):
        CODEC.encode_record({**record, "retention_days": "365"})
    with pytest.raises(InvalidEventError, match="categories"):
        CODEC.encode_record({**record, "categories": "user.contact.email"})


def test_unsupported_types_are_refused_at_compile_time() -> None:
    """A schema with a map is refused, so the codec falls back to fastavro."""
    with pytest.raises(UnsupportedSchema):
        compile_decoder(
            {"type": "record", "name": "R", "fields": [{"name": "m", "type": {"type": "map", "values": "string"}}]}
        )


def test_int_fields_keep_to_32_bits() -> None:
    """An int field outside 32 bits is refused on encode, as fastavro does, and on decode."""
    record = to_record(sample_events()[0])
    with pytest.raises(InvalidEventError, match="retention_days"):
        CODEC.encode_record({**record, "retention_days": 2**31})
    too_big = compile_encoder(
        {
            **RAW,
            "fields": [{**f, "type": ["null", "long"]} if f["name"] == "retention_days" else f for f in RAW["fields"]],
        }
    )
    data = MAGIC + CODEC.current.fingerprint + too_big({**record, "retention_days": 2**40})
    with pytest.raises(DecodeError, match="int out of range"):
        CODEC.decode_record(data)


def _reference_long(n: int) -> bytes:
    """The bytes fastavro writes for ``n`` as an Avro long: an independent reading of the zig-zag varint."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema("long"), n)
    return buf.getvalue()


@settings(max_examples=examples(2000))
@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**20), 2**20), st.integers(2**50, 2**56)))
def test_long_matches_the_plain_varint(n: int) -> None:
    """The masked varint writes exactly fastavro's bytes, at every length."""
    assert _long(n) == _reference_long(n)


def test_long_at_each_length_boundary() -> None:
    """Each length from 1 to 10 bytes begins and ends where fastavro's varint does."""
    for k in range(64):
        for n in (2**k - 1, 2**k, 2**k + 1, -(2**k) - 1, -(2**k), -(2**k) + 1):
            if -(2**63) <= n < 2**63:
                assert _long(n) == _reference_long(n), n


@settings(max_examples=examples(300))
@given(RECORDS)
def test_encoder_with_repeated_fields_matches_fastavro(record: dict[str, Any]) -> None:
    """With the codec's repeated fields remembered, any record still encodes to exactly fastavro's bytes."""
    encode = compile_encoder(RAW, REPEATED)
    assert encode(record) == _fastavro_bytes(record)
    assert encode(record) == _fastavro_bytes(record)  # the second time from the memo


def test_the_memo_of_repeated_strings_is_bounded() -> None:
    """Many distinct values of a remembered field keep each memo at most MEMO_LIMIT entries, and encode right."""
    encode = compile_encoder(RAW, REPEATED)
    record = to_record(sample_events()[0])
    for i in range(MEMO_LIMIT + MEMO_LIMIT // 2):  # past the bound once, then half way again
        varied = {**record, "system": f"system-{i}", "purpose": f"purpose.{i}"}
        assert encode(varied) == _fastavro_bytes(varied)
    memos = [v for v in encode.__globals__.values() if isinstance(v, dict) and v and isinstance(next(iter(v)), str)]
    assert memos and all(len(m) <= MEMO_LIMIT for m in memos)
    assert any(len(m) >= MEMO_LIMIT // 2 for m in memos)  # they did remember, up to the bound


def test_a_repeated_field_of_the_wrong_type_still_names_the_field() -> None:
    """A remembered field given a list (unhashable) or a lone surrogate is refused naming that field."""
    record = to_record(sample_events()[0])
    with pytest.raises(InvalidEventError, match="purpose"):
        CODEC.encode_record({**record, "purpose": ["a"]})
    with pytest.raises(InvalidEventError, match="system"):
        CODEC.encode_record({**record, "system": "bad\ud800"})


def _memos(encode: Any) -> list[dict[str, bytes]]:
    return [v for v in encode.__globals__.values() if isinstance(v, dict) and all(isinstance(k, str) for k in v)]


def test_long_strings_are_encoded_but_not_remembered() -> None:
    """A remembered field's value over MEMO_MAX_BYTES is encoded right and kept nowhere: memory stays bounded."""
    encode = compile_encoder(RAW, REPEATED)
    record = to_record(sample_events()[0])
    for i in range(50):
        long = {**record, "source": f"{i}-" + "x" * MEMO_MAX_BYTES}
        assert encode(long) == _fastavro_bytes(long)
    assert all(len(k.encode()) <= MEMO_MAX_BYTES for memo in _memos(encode) for k in memo)


class _CaseBlind(str):
    """A str whose equality ignores case: equal to, but not the same text as, another spelling."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.lower())


def test_a_str_subclass_with_its_own_equality_does_not_change_what_is_encoded() -> None:
    """'Direct' as a case-blind str, then plain 'direct': each is encoded as its own text."""
    encode = compile_encoder(RAW, REPEATED)
    record = to_record(sample_events()[0])
    first, second = {**record, "source": _CaseBlind("Direct")}, {**record, "source": "direct"}
    assert encode(first) == _fastavro_bytes(first)
    assert encode(second) == _fastavro_bytes(second)
    assert encode(first) == _fastavro_bytes(first)
