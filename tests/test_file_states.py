"""Say what it is not reading: every ``--file`` gets a state (``llm_exporter_file_state{file, state}``),
a bad one is named at start-up with what to do, ``--require-files`` makes it fatal, ``CannotOpenFile``
fires on a lasting error; and the per-file counters never go down across a restart."""

from __future__ import annotations

import logging
import os
import re
import signal
import time

import pytest
import yaml
from click.testing import CliRunner

from llm_log_exporter.cli import main
from llm_log_exporter.tailing.discovery import FILE_STATES
from tests.helpers import ROOT, ExporterProcess, parse_exposition, request_line, value
from tests.pipeline import Pipeline, append, lines

RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "rules_test.yml"


def states(p: Pipeline) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (name, labels), v in p.samples().items():
        if name == "llm_exporter_file_state":
            d = dict(labels)
            out.setdefault(d["file"], {})[d["state"]] = v
    return out


def current(p: Pipeline) -> dict[str, str]:
    return {pattern: next(s for s, v in by_state.items() if v == 1) for pattern, by_state in states(p).items()}


def test_each_file_pattern_has_a_state_and_bad_ones_are_named_with_what_to_do(tmp_path, caplog):
    good = tmp_path / "logs" / "a.jsonl"
    good.parent.mkdir()
    good.write_bytes(request_line())
    directory = tmp_path / "logs"
    loop = tmp_path / "loop.jsonl"
    os.symlink(loop, loop)  # ELOOP: a path that exists and cannot be opened, even by root
    patterns = [str(good.parent / "*.jsonl"), str(directory), str(tmp_path / "typo.jsonl"),
                str(tmp_path / "nothing" / "*.jsonl"), str(loop)]
    with caplog.at_level(logging.INFO, logger="llm_log_exporter"):
        p = Pipeline(*patterns).tick()
    assert current(p) == {patterns[0]: "following", patterns[1]: "not_a_file", patterns[2]: "missing",
                          patterns[3]: "missing", patterns[4]: "unreadable"}
    for by_state in states(p).values():  # one series per pattern and state, 1 for the current one
        assert set(by_state) == set(FILE_STATES) and sorted(by_state.values()) == [0, 0, 0, 1]
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert any(str(directory) in w and "*.jsonl" in w for w in warnings)  # suggests naming the files
    assert any(patterns[2] in w and "matches no file" in w and "--require-files" in w for w in warnings)
    assert any(patterns[4] in w and "cannot be read" in w for w in warnings)
    assert f"following {good}" in caplog.text  # every path followed is logged
    # A file appearing later is followed, and the state (and the log) say so.
    (tmp_path / "typo.jsonl").write_bytes(request_line())
    with caplog.at_level(logging.INFO, logger="llm_log_exporter"):
        p.tick()
    assert current(p)[patterns[2]] == "following" and p.total("llm_requests_total") == 2
    assert f"--file {patterns[2]}: following 1 file(s)" in caplog.text


def test_ready_means_the_initial_read_is_done_not_that_files_exist(tmp_path):
    p = Pipeline(tmp_path / "absent.jsonl")
    assert p.total("llm_exporter_ready") == 0 and not p.exp.store.ready.is_set()
    p.tick()
    assert p.total("llm_exporter_ready") == 1
    assert current(p) == {str(tmp_path / "absent.jsonl"): "missing"}


def test_require_files_refuses_to_start_naming_every_bad_pattern(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_bytes(request_line())
    result = CliRunner().invoke(main, ["--file", str(good), "--file", str(tmp_path / "b.jsonl"), "--file",
                                       str(tmp_path), "--require-files", "--port", "0"])
    assert result.exit_code == 1, result.output
    assert f"--file {tmp_path / 'b.jsonl'} matches no file" in result.output
    assert f"--file {tmp_path} is not a regular file" in result.output
    assert str(good) not in result.output.replace(str(tmp_path / "b.jsonl"), "")


def without_dac_override() -> None:
    """In the child before exec: root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH obeys file modes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: exec gives root no more than the bounding set
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
def test_an_unreadable_file_stays_unreadable_in_the_gauge_while_open_errors_count_once(tmp_path):
    """The alert's case: permission denied for good (as root, the daemon runs without DAC override)."""
    log = tmp_path / "usage.jsonl"
    log.write_bytes(request_line())
    log.chmod(0)
    drop = without_dac_override if os.geteuid() == 0 else None
    with ExporterProcess(["--file", str(log), "--poll-interval", "0.1"], preexec_fn=drop) as exp:
        exp.wait_ready()
        time.sleep(1.0)  # ten polls, all failing
        samples = exp.scrape()
        assert value(samples, "llm_exporter_file_state", file=str(log), state="unreadable") == 1
        assert value(samples, "llm_exporter_file_state", file=str(log), state="following") == 0
        assert value(samples, "llm_exporter_open_errors_total") == 1  # an increase() alert missed this
        log.chmod(0o644)
        exp.wait_value("llm_exporter_file_state", 1, file=str(log), state="following")
        exp.wait_value("llm_requests_total", 1)
        exp.stop()
        assert re.search(rf"WARNING .*--file {re.escape(str(log))} cannot be read \(.*Permission denied",
                         exp.stderr)


def test_the_alert_unit_test_feeds_the_series_shape_the_exporter_exports(tmp_path):
    """rules_test.yml's llm_exporter_file_state input series carry exactly the exporter's labels and states."""
    p = Pipeline(tmp_path / "usage.jsonl").tick()
    exported = {frozenset(labels) for (name, labels), _ in p.samples().items() if name == "llm_exporter_file_state"}
    exported_names = {name for labels in exported for name, _ in labels}
    exported_states = {v for labels in exported for n, v in labels if n == "state"}
    fed = []
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for series in test.get("input_series", []):
            match = re.fullmatch(r"llm_exporter_file_state\{(.*)\}", series["series"])
            if match:
                fed.append(dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))))
    assert fed, "no llm_exporter_file_state series in rules_test.yml"
    by_file: dict[str, set[str]] = {}
    for labels in fed:
        assert set(labels) - {"job", "instance"} == exported_names == {"file", "state"}
        by_file.setdefault(labels["file"], set()).add(labels["state"])
    assert all(found == exported_states == set(FILE_STATES) for found in by_file.values()), by_file


# ----------------------------------------------------------------- counters never go down


def test_per_file_counters_are_not_served_below_what_a_killed_process_served(log, tmp_path):
    state = tmp_path / "state.json"
    append(log, lines("a", 5))
    p = Pipeline(log, state=state).tick().save()
    append(log, lines("b", 3))
    p.tick()  # read, not saved: a SIGKILL now loses them from the state
    served = {name: p.total(name) for name in ("llm_exporter_lines_total", "llm_exporter_read_bytes_total")}
    assert served["llm_exporter_lines_total"] == 8
    p.crash()
    p.start()  # the state is restored (5 lines); the re-read has not run yet
    before_ready = p.samples()
    assert not [k for k in before_ready if k[0].startswith(("llm_exporter_lines", "llm_exporter_read_bytes"))]
    p.tick()
    for name, was in served.items():
        assert p.total(name) == was  # back where it was, never lower
    assert p.total("llm_exporter_state_load_info", result="restored") == 1


@pytest.mark.slow
def test_counters_never_decrease_across_sigkill_and_restart(tmp_path):
    log, state = tmp_path / "usage.jsonl", tmp_path / "state.json"
    log.write_bytes(request_line("a") * 20_000)
    # Saved once after the initial read, then not for a minute: the lines appended next are read, not saved.
    args = ["--file", str(log), "--state-file", str(state), "--state-interval", "60", "--log-level", "warning"]
    names = ("llm_exporter_lines_total", "llm_exporter_read_bytes_total")
    with ExporterProcess(args) as first:
        first.wait_ready(60)
        first.wait_until(lambda: state.exists(), 10, "the save after the initial read")
        append(log, request_line("b") * 30_000)  # read again after the restart: a window for a dip
        samples = first.wait_value("llm_exporter_lines_total", 50_000, timeout=120)
        served = {name: value(samples, name) for name in names}
        first.stop(signal.SIGKILL)
    seen: list[dict[str, float]] = []
    with ExporterProcess(args) as second:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # every scrape from the first answer on
            code, text = second.get("/metrics")
            if code == 200:
                samples = parse_exposition(text)
                seen.append({name: sum(v for (n, _), v in samples.items() if n == name) for name in names})
                if seen[-1]["llm_exporter_lines_total"] >= served["llm_exporter_lines_total"]:
                    break
    assert seen and seen[-1]["llm_exporter_lines_total"] == served["llm_exporter_lines_total"]
    for scrape in seen:
        for name, was in served.items():
            assert scrape[name] in (0, was), (name, scrape, served)  # absent until ready, then never lower
