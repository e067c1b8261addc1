"""iter_objects: the whole-file reader replay uses (.jsonl, .ndjson, .json object/array, .gz)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from llm_log_exporter.events import InvalidLine
from llm_log_exporter.history.sources import iter_objects
from llm_log_exporter.parsers import get_parser
from tests.helpers import FIXTURES

SLO = FIXTURES / "litellm-1.81.10_slo.jsonl"


def reasons(items: list) -> list:  # type: ignore[type-arg]
    return [(pos, obj.reason if isinstance(obj, InvalidLine) else obj.get("model")) for pos, obj in items]


def test_json_lines_with_blank_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'{"model":"a"}\n\n[1]\nnot json\n{"model":"b"}\n')
    assert reasons(list(iter_objects(path))) == [(1, "a"), (3, "not_object"), (4, "not_json"), (5, "b")]


def test_json_document_object_and_array(tmp_path: Path) -> None:
    slos = [json.loads(line) for line in SLO.read_text().splitlines()]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(slos[0], indent=2))  # LiteLLM's s3 logger: one pretty SLO per object
    assert [pos for pos, _ in iter_objects(one)] == [1]
    many = tmp_path / "many.json"
    many.write_text(json.dumps([slos[0], 7, slos[1]]))
    items = list(iter_objects(many))
    assert reasons(items) == [(1, "gpt-4o-mini"), (2, "not_object"), (3, "gpt-4o-mini")]
    parse = get_parser("auto")
    events = [parse(obj)[0] for _, obj in items if isinstance(obj, dict)]
    assert [e.request.tenant_id for e in events] == ["team-1", "acme"]  # LiteLLM payloads: parts of calls


def test_json_lines_under_a_json_name(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_bytes(SLO.read_bytes())
    assert len(list(iter_objects(path))) == 10


def test_gzip(tmp_path: Path) -> None:
    lines = tmp_path / "u.jsonl.gz"
    with gzip.open(lines, "wb") as f:
        f.write(SLO.read_bytes())
    assert [pos for pos, _ in iter_objects(lines)] == list(range(1, 11))
    doc = tmp_path / "u.json.gz"
    with gzip.open(doc, "wb") as f:
        f.write(b'[{"model": "x"}, {"model": "y"}]')
    assert reasons(list(iter_objects(doc))) == [(1, "x"), (2, "y")]


def test_scalar_document(tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    path.write_text("42")
    assert reasons(list(iter_objects(path))) == [(1, "not_object")]
