"""Avro binary encoders and decoders compiled from a schema into straight-line Python.

Why: profiling showed fastavro's generic C walk of our 26-field record at ~12 us to decode and
~12 us to encode, the largest item in both hot paths; code generated for the one schema runs in
about half that (figures in the README's performance section). It covers the types our schemas use
(records, named references, null, boolean, int, long, string, bytes, enum, arrays, and unions of
null with one other type) and refuses the rest at compile time, so the codec falls back to
fastavro for any schema it cannot compile. ``tests/test_avro_codegen.py`` checks the output is
byte-for-byte fastavro's on generated records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Decoder", "Encoder", "FieldTypeError", "UnsupportedSchema", "compile_decoder", "compile_encoder"]

Decoder = Callable[[bytes, int], tuple[dict[str, Any], int]]
Encoder = Callable[[dict[str, Any]], bytes]


class UnsupportedSchema(Exception):
    """The schema uses a type this generator does not handle; use the generic codec."""


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint at ``pos``: (value, position after it)."""
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


_SMALL = [bytes([i << 1]) for i in range(64)]  # zig-zag varints of 0..63 are one byte
# _long's continuation bits for a varint of k bytes: 0x80 on every byte but the last
_CONTINUED = [0] + [int.from_bytes(b"\x80" * (k - 1) + b"\x00", "little") for k in range(1, 9)]
# A memo of encoded strings keeps only strings of at most MEMO_MAX_BYTES, and is cleared when it
# reaches MEMO_LIMIT entries: at most ~0.7 MB per field, whatever a caller sends (a gateway's
# client may send a megabyte of free text in a remembered field, event after event).
MEMO_LIMIT = 1024
MEMO_MAX_BYTES = 256


def _long(n: int) -> bytes:
    """The zig-zag varint of ``n``."""
    if 0 <= n < 64:
        return _SMALL[n]
    if not -(1 << 63) <= n < (1 << 63):
        raise OverflowError(f"{n} does not fit in an Avro long")
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return bytes((z,))
    if z >= 1 << 56:  # 9 or 10 bytes: the plain loop
        out = bytearray()
        while z > 0x7F:
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        out.append(z)
        return bytes(out)
    # Spread the 7-bit groups into bytes with three masks instead of a loop per byte: a time in
    # microseconds takes 8 bytes, and the loop was a fifth of encoding an event (profiled).
    k = (z.bit_length() + 6) // 7
    x = (z & 0xFFFFFFF) | ((z & 0xFFFFFFF0000000) << 4)
    x = (x & 0x00003FFF00003FFF) | ((x & 0x0FFFC0000FFFC000) << 2)
    x = (x & 0x007F007F007F007F) | ((x & 0x3F803F803F803F80) << 1)
    return (x | _CONTINUED[k]).to_bytes(k, "little")


def _memo(table: dict[str, bytes], value: str, prefix: bytes) -> bytes:
    """Encode a string (after ``prefix``, its union branch); remember it in ``table`` if a short plain str."""
    data = value.encode()
    out = prefix + _long(len(data)) + data
    if len(data) <= MEMO_MAX_BYTES and value.__class__ is str:
        if len(table) >= MEMO_LIMIT:
            table.clear()
        table[value] = out
    return out


class _Gen:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {"_read_long": _read_long, "_long": _long, "_SMALL": _SMALL, "_memo": _memo}
        self.named: dict[str, Any] = {}
        self.n = 0
        self._collect_names(schema, schema.get("namespace", ""))

    def var(self, prefix: str = "v") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, value: Any) -> str:
        name = self.var("K")
        self.consts[name] = value
        return name

    def _collect_names(self, node: Any, namespace: str) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect_names(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "enum", "fixed"):
                ns = node.get("namespace", namespace)
                full = node["name"] if "." in node["name"] else f"{ns}.{node['name']}".lstrip(".")
                self.named[full] = node
                self.named[node["name"]] = node
                namespace = ns
            for field in node.get("fields", ()):
                self._collect_names(field["type"], namespace)
            if kind == "array":
                self._collect_names(node["items"], namespace)
            elif isinstance(kind, (dict, list)):
                self._collect_names(kind, namespace)

    def resolve(self, t: Any) -> Any:
        if isinstance(t, str) and t in self.named:
            return self.named[t]
        if isinstance(t, dict) and isinstance(t.get("type"), (dict, list)):
            return self.resolve(t["type"])
        if isinstance(t, dict) and t.get("type") in ("string", "long", "int", "boolean", "null", "bytes"):
            return t["type"]  # a primitive with attributes (logicalType...)
        return t


class _DecoderGen(_Gen):
    def emit(self, t: Any, target: str, ind: str) -> None:
        t = self.resolve(t)
        add = self.lines.append
        if t == "null":
            add(f"{ind}{target} = None")
        elif t == "boolean":
            add(f"{ind}{target} = d[pos]")
            add(f"{ind}pos += 1")
            add(f"{ind}if {target} > 1: raise ValueError('bad boolean')")
            add(f"{ind}{target} = {target} == 1")
        elif t in ("int", "long"):
            self._long(target, ind)
            if t == "int":
                add(f"{ind}if not -2147483648 <= {target} <= 2147483647: raise ValueError('int out of range')")
        elif t in ("string", "bytes"):
            n = self.var("n")
            self._long(n, ind)
            add(f"{ind}if {n} < 0 or pos + {n} > len(d): raise ValueError('bad length')")
            decode = ".decode()" if t == "string" else ""
            add(f"{ind}{target} = d[pos:pos + {n}]{decode}")
            add(f"{ind}pos += {n}")
        elif isinstance(t, dict) and t["type"] == "enum":
            symbols = self.const(tuple(t["symbols"]))
            i = self.var("i")
            self._long(i, ind)
            add(f"{ind}if {i} < 0: raise ValueError('bad enum index')")
            add(f"{ind}{target} = {symbols}[{i}]")
        elif isinstance(t, list):
            self._union(t, target, ind)
        elif isinstance(t, dict) and t["type"] == "array":
            c, out = self.var("c"), self.var("a")
            add(f"{ind}{out} = []")
            add(f"{ind}while True:")
            self._long(c, ind + "    ")
            add(f"{ind}    if {c} == 0: break")
            add(f"{ind}    if {c} < 0:")
            add(f"{ind}        {c} = -{c}")
            add(f"{ind}        _, pos = _read_long(d, pos)")
            add(f"{ind}    for _ in range({c}):")
            item = self.var()
            self.emit(t["items"], item, ind + "        ")
            add(f"{ind}        {out}.append({item})")
            add(f"{ind}{target} = {out}")
        elif isinstance(t, dict) and t["type"] == "record":
            names = []
            for field in t["fields"]:
                v = self.var()
                self.emit(field["type"], v, ind)
                names.append(f"{field['name']!r}: {v}")
            add(f"{ind}{target} = {{{', '.join(names)}}}")
        else:
            raise UnsupportedSchema(f"no generated decoder for {t!r}")

    def _long(self, target: str, ind: str) -> None:
        add = self.lines.append
        b = self.var("b")
        add(f"{ind}{b} = d[pos]")
        add(f"{ind}if {b} < 0x80:")
        add(f"{ind}    {target} = ({b} >> 1) ^ -({b} & 1)")
        add(f"{ind}    pos += 1")
        add(f"{ind}else:")
        add(f"{ind}    {target}, pos = _read_long(d, pos)")

    def _union(self, branches: list[Any], target: str, ind: str) -> None:
        add = self.lines.append
        i = self.var("u")
        self._long(i, ind)
        for k, branch in enumerate(branches):
            add(f"{ind}{'if' if k == 0 else 'elif'} {i} == {k}:")
            self.emit(branch, target, ind + "    ")
        add(f"{ind}else: raise ValueError('bad union index')")


class _EncoderGen(_Gen):
    """Writes ``w(bytes)`` calls; ``prefix`` is a union's branch index, written with the value's first bytes."""

    def emit(self, t: Any, value: str, ind: str, prefix: bytes = b"", memo: bool = False) -> None:
        t = self.resolve(t)
        add = self.lines.append
        if prefix and not (t in ("boolean", "string") or isinstance(t, dict) and t["type"] == "enum"):
            add(f"{ind}w({prefix!r})")
            prefix = b""
        if t == "null":
            add(f"{ind}if {value} is not None: raise TypeError('expected null')")
        elif t == "boolean":
            true, false = prefix + b"\x01", prefix + b"\x00"
            add(f"{ind}if {value} is True: w({true!r})")
            add(f"{ind}elif {value} is False: w({false!r})")
            add(f"{ind}else: raise TypeError('expected a boolean')")
        elif t in ("int", "long"):
            add(f"{ind}if type({value}) is not int: raise TypeError('expected an integer')")
            if t == "int":
                add(f"{ind}if not -(2**31) <= {value} < 2**31: raise OverflowError('outside the 32-bit int range')")
            add(f"{ind}w(_long({value}))")
        elif t == "string" and memo:
            # a value this field repeats (a system, a purpose, a category): encoded once, then looked up
            table, b = self.const({}), self.var("s")
            # only a plain str is looked up: a subclass may define equality otherwise (case-blind...)
            add(f"{ind}{b} = {table}.get({value}) if {value}.__class__ is str else None")
            add(f"{ind}if {b} is None: {b} = _memo({table}, {value}, {prefix!r})")
            add(f"{ind}w({b})")
        elif t == "string":
            b, n = self.var("s"), self.var("n")
            add(f"{ind}{b} = {value}.encode()")
            add(f"{ind}{n} = len({b})")
            if prefix:
                add(f"{ind}w({prefix!r})")
            add(f"{ind}w(_SMALL[{n}] if {n} < 64 else _long({n}))")
            add(f"{ind}w({b})")
        elif t == "bytes":
            add(f"{ind}w(_long(len({value})))")
            add(f"{ind}w(bytes({value}))")
        elif isinstance(t, dict) and t["type"] == "enum":
            table = self.const({s: prefix + _long(i) for i, s in enumerate(t["symbols"])})
            add(f"{ind}w({table}[{value}])")
        elif isinstance(t, list):
            non_null = [b for b in t if b != "null"]
            if len(t) != 2 or len(non_null) != 1:
                raise UnsupportedSchema(f"no generated encoder for union {t!r}")
            null_at = t.index("null")
            add(f"{ind}if {value} is None:")
            add(f"{ind}    w({_long(null_at)!r})")
            add(f"{ind}else:")
            self.emit(non_null[0], value, ind + "    ", _long(1 - null_at), memo)
        elif isinstance(t, dict) and t["type"] == "array":
            item = self.var("x")
            add(f"{ind}if isinstance({value}, (str, bytes)): raise TypeError('expected a list')")
            add(f"{ind}if {value}:")
            add(f"{ind}    w(_long(len({value})))")
            add(f"{ind}    for {item} in {value}:")
            self.emit(t["items"], item, ind + "        ", memo=memo)
            add(f"{ind}w(b'\\x00')")
        elif isinstance(t, dict) and t["type"] == "record":
            for field in t["fields"]:
                v = self.var()
                add(f"{ind}{v} = {value}[{field['name']!r}]")
                self.emit(field["type"], v, ind, memo=memo)
        else:
            raise UnsupportedSchema(f"no generated encoder for {t!r}")


def compile_decoder(schema: dict[str, Any]) -> Decoder:
    """A function ``(data, pos) -> (record, end)`` decoding one datum of ``schema`` from ``data[pos:]``.

    Malformed input raises ``IndexError`` (truncated), ``ValueError`` (bad length, index, boolean)
    or ``UnicodeDecodeError``; the codec turns them into ``DecodeError``.
    """
    gen = _DecoderGen(schema)
    gen.lines.append("def decode(d, pos):")
    gen.emit(schema, "result", "    ")
    gen.lines.append("    return result, pos")
    decoder: Decoder = _compile(gen, "decode")
    return decoder


def compile_encoder(schema: dict[str, Any], repeated: frozenset[str] = frozenset()) -> Encoder:
    """A function ``record -> bytes`` encoding one datum of ``schema``.

    The strings of the top-level fields named in ``repeated`` are remembered once encoded (at most
    ``MEMO_LIMIT`` per field, each of at most ``MEMO_MAX_BYTES``): name the fields whose values
    recur from one record to the next.
    A field whose value has the wrong type raises ``FieldTypeError`` naming the field.
    """
    gen = _EncoderGen(schema)
    if not (isinstance(schema, dict) and schema.get("type") == "record"):
        raise UnsupportedSchema("the top level must be a record")
    gen.lines.append("def encode(r):")
    gen.lines.append("    out = []")
    gen.lines.append("    w = out.append")
    gen.consts["FieldTypeError"] = FieldTypeError
    for field in schema["fields"]:
        gen.lines.append("    try:")
        v = gen.var()
        gen.lines.append(f"        {v} = r[{field['name']!r}]")
        gen.emit(field["type"], v, "        ", memo=field["name"] in repeated)
        gen.lines.append("    except (TypeError, AttributeError, KeyError, ValueError, OverflowError) as e:")
        gen.lines.append(f"        raise FieldTypeError({field['name']!r}, r.get({field['name']!r}), e) from e")
    gen.lines.append("    return b''.join(out)")
    encoder: Encoder = _compile(gen, "encode")
    return encoder


class FieldTypeError(Exception):
    """A record field's value does not fit its Avro type."""

    def __init__(self, field: str, value: object, cause: Exception) -> None:
        """Record the field, value and the underlying complaint."""
        self.field = field
        self.value = value
        super().__init__(f"{field}={value!r} does not fit the schema: {cause}")


def _compile(gen: _Gen, name: str) -> Any:
    namespace: dict[str, Any] = dict(gen.consts)
    exec(compile("\n".join(gen.lines), f"<lineage.avro_codegen {name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]
