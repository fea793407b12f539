"""The run store: a real SQLite file, content-keyed scores, invocations and failures."""

from __future__ import annotations

import sqlite3

import pytest

from anibench.errors import InputError
from anibench.results import load_results
from anibench.store import RunLock, RunLockedError, RunStore, ScoreKey


def key(sha="a" * 64, scorer="s", inputs="i"):
    return ScoreKey(sha, scorer, "1", "p", inputs)


def test_scores_are_keyed_by_content_and_linked_to_items(tmp_path):
    store = RunStore.in_dir(tmp_path)
    store.begin_invocation("test")
    store.put_item("m/c/seed0/x", case_id="x", model="m", status="generated", video_sha256="a" * 64)
    store.put_item("m/c/seed0/y", case_id="y", model="m", status="generated", video_sha256="a" * 64)
    store.put_score("m/c/seed0/x", key(), 0.5, {"detail": [1, 2]}, 0.01)
    assert store.has_score(key()) and not store.has_score(key(inputs="other"))
    store.link_score("m/c/seed0/y", key())
    rows = store.item_scores()
    assert [(r["item_id"], r["value"], r["details"]) for r in rows] == [
        ("m/c/seed0/x", 0.5, {"detail": [1, 2]}), ("m/c/seed0/y", 0.5, {"detail": [1, 2]})]
    store.end_invocation()
    (inv,) = store.invocations()
    assert (inv["computed"], inv["reused"], inv["command"]) == (1, 1, "test") and inv["finished_at"]
    assert store.score_count() == 1


def test_data_survives_reopening_a_real_file(tmp_path):
    store = RunStore.in_dir(tmp_path)
    store.begin_invocation("one")
    store.put_score("item", key(), 0.25, {}, 0.0)
    store.record_failure("score", InputError("boom", case_id="c", path="/x.mp4"), item_id="item", scorer="s")
    store.close()
    again = RunStore(tmp_path / RunStore.FILENAME)
    assert again.has_score(key())
    (failure,) = again.failures()
    assert (failure["case_id"], failure["path"], failure["error_type"]) == ("c", "/x.mp4", "InputError")
    assert "boom" in failure["message"]
    with sqlite3.connect(tmp_path / RunStore.FILENAME) as db:  # a plain SQLite file anyone can query
        assert db.execute("SELECT value FROM scores").fetchone()[0] == 0.25


def test_status_without_a_score(tmp_path):
    store = RunStore.in_dir(tmp_path)
    store.put_item_score_status("item", "guide_psnr", "not_applicable", "no guides")
    (row,) = store.item_scores()
    assert (row["status"], row["value"], row["message"]) == ("not_applicable", None, "no guides")


def test_schema_version_mismatch_is_refused(tmp_path):
    store = RunStore.in_dir(tmp_path)
    store.set_meta("schema_version", 999)
    store.close()
    with pytest.raises(RuntimeError, match="schema 999"):
        RunStore.in_dir(tmp_path)


def test_a_run_directory_has_one_writer_and_reports_wait_for_it(tmp_path):
    RunStore.in_dir(tmp_path).close()
    with RunLock(tmp_path):
        assert RunLock.is_held(tmp_path)
        with pytest.raises(RunLockedError, match="another anibench process"):
            with RunLock(tmp_path):
                pass
        with pytest.raises(InputError, match="still in progress"):
            load_results(tmp_path)
    assert not RunLock.is_held(tmp_path)
    with pytest.raises(InputError, match="interrupted; rerun it"):
        load_results(tmp_path)
    with pytest.raises(InputError, match="not a run directory"):
        load_results(tmp_path / "elsewhere")
