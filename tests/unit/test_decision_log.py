"""The decision log: JSON lines written off the request path; a full log drops and counts, never blocks."""

from __future__ import annotations

import errno
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from strata.cli import main
from strata.config import Settings
from strata.decisionlog import JsonLinesLog
from strata.decisions import DecideRequest, DecisionService
from strata.engine.schema import parse_datetime
from tests.fakes import AS_OF, PROFILES, default_rules
from tests.scrape import wait_for


class StuckFile:
    """A file whose writes wait until released: a disk that has stopped keeping up."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lines: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self.release.wait(10)
        self.lines.extend(bytes(data).splitlines())
        return len(data)

    def close(self) -> None:
        self.closed = True


def stuck_log(tmp_path: Path) -> tuple[JsonLinesLog, StuckFile]:
    """A log of capacity 3 whose writer has taken its first entry and is stuck writing it."""
    log = JsonLinesLog(tmp_path / "decisions.jsonl", capacity=3)
    stuck = StuckFile()
    log._file.close()
    log._file = stuck  # type: ignore[assignment]
    assert log.record({"n": 0})
    deadline = time.monotonic() + 5
    while log._queue.qsize():
        assert time.monotonic() < deadline
        time.sleep(0.001)
    return log, stuck


def test_a_full_log_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    log, stuck = stuck_log(tmp_path)

    accepted = [log.record({"n": n}) for n in range(1, 1001)]
    assert stuck.lines == []  # every record returned while the disk was still stuck: none waited for it
    assert accepted == [True] * 3 + [False] * 997
    assert log.dropped == 997

    stuck.release.set()
    log.close()
    assert [orjson.loads(line)["n"] for line in stuck.lines] == [0, 1, 2, 3]
    assert log.written == 4 and stuck.closed


def test_close_gives_up_on_a_stuck_disk_when_its_time_is_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, stuck = stuck_log(tmp_path)
    assert all(log.record({"n": n}) for n in range(1, 4))  # and three more are queued: full

    assert not log.close(timeout=0.1)  # a shutdown is not held past its grace period
    assert "3 entries not written" in caplog.text and not stuck.closed
    stuck.release.set()
    assert log.close()  # given time, it still writes them all
    assert [orjson.loads(line)["n"] for line in stuck.lines] == [0, 1, 2, 3] and stuck.closed


class FullDisk:
    """A file whose first write fails as a full disk does; later ones succeed."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.failed = False

    def write(self, data: bytes) -> int:
        if not self.failed:
            self.failed = True
            raise OSError(errno.ENOSPC, "No space left on device")
        self.lines.extend(bytes(data).splitlines())
        return len(data)

    def close(self) -> None:
        pass


def test_a_failed_write_loses_its_lines_not_the_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = JsonLinesLog(tmp_path / "decisions.jsonl")
    disk = FullDisk()
    log._file.close()
    log._file = disk  # type: ignore[assignment]
    assert log.record({"n": 0})
    wait_for(lambda: log.dropped == 1, "the failed write counted as dropped")
    assert log.record({"n": 1})
    assert log.close()
    assert [orjson.loads(line)["n"] for line in disk.lines] == [1]
    assert (log.written, log.dropped) == (1, 1)
    assert "1 entries not written: [Errno 28]" in caplog.text


ENTRIES_PER_WRITER = 5000


def write_entries(path: Path, writer: int, go: Any) -> None:
    """One serving process's log: entries of about 500 bytes, queued as fast as it can once ``go``
    is set (so that both processes write at once), never dropped."""
    log = JsonLinesLog(path, capacity=ENTRIES_PER_WRITER)
    go.wait(60)
    for n in range(ENTRIES_PER_WRITER):
        assert log.record({"writer": writer, "n": n, "result": "x" * 500})
    assert log.close(timeout=60)


def test_serving_processes_sharing_a_log_file_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    writers = [context.Process(target=write_entries, args=(path, writer, go)) for writer in (1, 2)]
    for process in writers:
        process.start()
    go.set()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    entries = [orjson.loads(line) for line in path.read_bytes().splitlines()]  # each line whole
    for writer in (1, 2):
        assert [e["n"] for e in entries if e["writer"] == writer] == list(range(ENTRIES_PER_WRITER))


def test_every_decision_is_logged_with_its_version_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = JsonLinesLog(path)
    service = DecisionService.from_files(default_rules(), log=log)
    request = DecideRequest(
        profile=PROFILES["u-current"], as_of=parse_datetime(AS_OF), rulesets=("lifecycle", "segment")
    )
    result = service.decide(request)
    log.close()
    entries: list[dict[str, Any]] = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [(e["user_id"], e["ruleset"], e["version"], e["version_reason"]) for e in entries] == [
        (result.user_id, "lifecycle.duolingo", None, None),
        (result.user_id, "segment.rfm", None, None),
    ]
    assert entries[0]["result"]["stage"] == result.decisions[0].decision.to_dict()["stage"]
    assert all(entry["latency_ms"] >= 0 for entry in entries) and log.dropped == 0


def test_a_share_of_the_calls_is_logged_all_of_a_calls_decisions_or_none(tmp_path: Path) -> None:
    request = DecideRequest(
        profile=PROFILES["u-current"], as_of=parse_datetime(AS_OF), rulesets=("lifecycle", "segment")
    )
    for share, calls, expected in ((0.0, 50, 0), (1.0, 5, 10)):
        path = tmp_path / f"decisions-{share}.jsonl"
        log = JsonLinesLog(path)
        service = DecisionService.from_files(default_rules(), log=log, log_share=share)
        for index in range(calls):
            service.decide(request, request_id=f"r{index}")
        log.close()
        entries = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        assert len(entries) == expected
        assert [entry["request_id"] for entry in entries] == [
            f"r{i}" for i in range(calls) for _ in range(2)
        ][:expected]


def test_the_decision_log_is_configured_by_strata_decision_log() -> None:
    assert Settings.from_env({"STRATA_DECISION_LOG": "/var/log/strata/decisions.jsonl"}).decision_log == (
        "/var/log/strata/decisions.jsonl"
    )
    assert Settings.from_env({}).decision_log == ""


def test_strata_decisions_tail_prints_the_newest_entries(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"n": n}) + b"\n" for n in range(30)))
    env = {"STRATA_DECISION_LOG": str(path)}
    result = CliRunner().invoke(main, ["decisions", "tail", "-n", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["n"] for line in result.stdout.splitlines()] == [27, 28, 29]
    missing = CliRunner().invoke(main, ["decisions", "tail"], env={"STRATA_DECISION_LOG": ""})
    assert missing.exit_code != 0 and "no decision log" in missing.stderr
