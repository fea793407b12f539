"""The run store: a real SQLite file, content-keyed scores, invocations and failures."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from anibench.errors import InputError
from anibench.results import load_results
from anibench.store import SCHEMA, SCHEMA_VERSION, RunLock, RunLockedError, RunStore, ScoreKey, StoreError


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
    with pytest.raises(StoreError, match="schema 999.*newer anibench"):
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


# -- one row per failure ------------------------------------------------------------------
def test_a_failure_recorded_twice_in_one_invocation_is_kept_once(tmp_path):
    store = RunStore.in_dir(tmp_path)
    store.begin_invocation("one")
    error = InputError("cannot decode", case_id="c", path="/x.mp4")
    for _ in range(3):
        store.record_failure("score", error, item_id="item", scorer="s")
    store.record_failure("score", error, item_id="item", scorer="other")  # another scorer: another failure
    store.record_failure("load", error)  # no item, no scorer: NULLs are part of the key too
    store.record_failure("load", error)
    assert len(store.failures()) == 3
    store.begin_invocation("two")
    store.record_failure("score", error, item_id="item", scorer="s")
    assert len(store.failures()) == 4 and len(store.failures(store.invocation)) == 1
    with sqlite3.connect(tmp_path / RunStore.FILENAME) as db:
        assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 4


def _version_1_store(path):
    """A store as anibench wrote it before failures were keyed: schema 1, a failure recorded three times."""
    db = sqlite3.connect(path)
    schema = SCHEMA.split("CREATE UNIQUE INDEX")[0]
    db.executescript(schema)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    for _ in range(3):
        db.execute("INSERT INTO failures (invocation, stage, item_id, case_id, scorer, path, error_type, message, "
                   "created_at) VALUES ('inv', 'score', 'item', 'c', 's', '/x.mp4', 'InputError', 'boom', 'now')")
    db.execute("INSERT INTO guides VALUES ('i2v', 'c', 0, 0.0, 0, 'image', 'guides/i2v/c/0.jpg')")
    db.commit()
    db.close()


def test_version_1_stores_are_read_as_they_are_and_migrated_by_a_writer(tmp_path):
    path = tmp_path / RunStore.FILENAME
    _version_1_store(path)
    before = path.read_bytes()
    reader = RunStore(path, readonly=True)
    assert len(reader.failures()) == 1 and reader.guides()[("i2v", "c")][0]["thumbnail"] == "guides/i2v/c/0.jpg"
    reader.close()
    assert path.read_bytes() == before  # reading changed nothing
    writer = RunStore(path)
    assert writer.get_meta("schema_version") == SCHEMA_VERSION == 2
    writer.begin_invocation("resume")
    writer.record_failure("score", InputError("boom"), item_id="item", scorer="s")
    writer.record_failure("score", InputError("boom"), item_id="item", scorer="s")
    writer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 2  # the old duplicates went, one new
        assert db.execute("SELECT name FROM sqlite_master WHERE name='failures_once'").fetchone()


# -- reading never writes -------------------------------------------------------------------
def _listing(folder):
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def _filled_store(folder):
    store = RunStore.in_dir(folder)
    store.begin_invocation("fill")
    store.put_score("item", key(), 0.5, {}, 0.0)
    store.put_guides("i2v", "c", [{"position": 0.0, "frame_index": 0, "source": "image", "thumbnail": "t.jpg"}])
    return store


def test_a_finished_store_is_one_file_readers_open_without_writing(tmp_path):
    store = _filled_store(tmp_path)
    store.finish()
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [RunStore.FILENAME]  # no -wal, no -shm
    assert (tmp_path / RunStore.FILENAME).read_bytes()[18] == 1  # the rollback journal: readable read-only
    before = _listing(tmp_path)
    reader = RunStore.in_dir(tmp_path, readonly=True)
    assert reader.has_score(key()) and list(reader.guides()) == [("i2v", "c")]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._conn.execute("DELETE FROM scores")
    reader.close()
    assert _listing(tmp_path) == before
    again = RunStore.in_dir(tmp_path)  # the next writer goes back to WAL
    assert again._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_wal_store_is_read_without_creating_files_with_or_without_pending_writes(tmp_path):
    closed = tmp_path / "closed"
    _filled_store(closed).close()  # closing checkpoints and removes -wal/-shm but leaves WAL mode
    assert (closed / RunStore.FILENAME).read_bytes()[18] == 2
    before = _listing(closed)
    reader = RunStore.in_dir(closed, readonly=True)
    assert reader.has_score(key())
    reader.close()
    assert _listing(closed) == before

    killed = tmp_path / "killed"
    live = _filled_store(killed)  # still open: its last writes are only in anibench.sqlite-wal
    assert (killed / f"{RunStore.FILENAME}-wal").stat().st_size > 0
    before = _listing(killed)
    reader = RunStore.in_dir(killed, readonly=True)
    assert reader.has_score(key()) and reader.guides()  # read from a private copy where SQLite recovers the WAL
    reader.close()
    assert _listing(killed) == before
    live.close()


# -- damaged and foreign stores -------------------------------------------------------------
def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_foreign_sqlite_file_is_never_modified(tmp_path):
    path = tmp_path / RunStore.FILENAME
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO users VALUES ('ann')")
    before = _sha(path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"not an anibench store \(tables: users; no schema_version\)"):
            RunStore(path, readonly=readonly)
    assert _sha(path) == before and sorted(p.name for p in tmp_path.iterdir()) == [RunStore.FILENAME]


@pytest.mark.parametrize("damage, message", [
    ("garbage", "is not an SQLite database"),
    ("truncated", "truncated"),
    ("short header", "truncated"),
])
def test_damaged_store_files_are_refused_and_left_as_they_are(tmp_path, damage, message):
    folder = tmp_path / "run"
    store = _filled_store(folder)
    for i in range(300):  # a few pages, so that half the file loses some
        store.put_score(f"item{i}", key(sha=f"{i:064d}"), 0.5, {"pad": "x" * 200}, 0.0)
    store.finish()
    store.close()
    path = folder / RunStore.FILENAME
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x89PNG" + bytes(range(256)) * 40, "truncated": data[: len(data) // 2],
                      "short header": data[:60]}[damage])
    before = _sha(path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match=message) as raised:
            RunStore(path, readonly=readonly)
        assert raised.value.path == str(path) and "new --out" in str(raised.value)
    assert _sha(path) == before


def test_a_store_damaged_inside_is_refused_before_a_resume(tmp_path):
    store = _filled_store(tmp_path)
    for i in range(300):
        store.put_score(f"item{i}", key(sha=f"{i:064d}"), 0.5, {"pad": "x" * 200}, 0.0)
    store.finish()
    store.close()
    path = tmp_path / RunStore.FILENAME
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[3 * page: 3 * page + 64] = b"\xff" * 64  # scribble over a b-tree page header
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="the store is damaged.*SQLite"):
        RunStore(path)


def test_an_empty_store_starts_afresh_only_where_nothing_else_of_a_run_is(tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / RunStore.FILENAME).write_bytes(b"")  # a run killed before it stored anything
    (fresh / "run.lock").write_bytes(b"")
    store = RunStore.in_dir(fresh)
    assert store.get_meta("schema_version") == SCHEMA_VERSION
    store.close()

    lost = tmp_path / "lost"
    (lost / "videos").mkdir(parents=True)
    (lost / "results.json").write_text("{}")
    (lost / RunStore.FILENAME).write_bytes(b"")
    with pytest.raises(StoreError, match=r"empty \(0 bytes\) but the folder holds a run's results.json, videos"):
        RunStore.in_dir(lost)
    with pytest.raises(StoreError, match="empty"):
        RunStore.in_dir(lost, readonly=True)
    assert (lost / RunStore.FILENAME).stat().st_size == 0


# -- the lock ------------------------------------------------------------------------------
def test_probing_the_lock_writes_nothing_and_a_lock_folder_is_explained(tmp_path):
    assert not RunLock.is_held(tmp_path) and not (tmp_path / RunLock.FILENAME).exists()
    with RunLock(tmp_path):
        pass
    lock = tmp_path / RunLock.FILENAME
    lock.chmod(0o444)
    before = lock.stat().st_mtime_ns
    assert not RunLock.is_held(tmp_path) and lock.stat().st_mtime_ns == before
    lock.unlink()
    lock.mkdir()
    with pytest.raises(InputError, match="run.lock is a folder, not anibench's lock file.*rmdir"):
        RunLock.is_held(tmp_path)
    with pytest.raises(InputError, match="run.lock is a folder"):
        with RunLock(tmp_path):
            pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        with RunLock(tmp_path / "file"):
            pass
