"""Suite records case by case: the typed schema, identities that never collide, the case-id rule and
storage keys, symlinks out of the suite, pinned guide frames."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from anibench.conditions import get_condition, resolve
from anibench.errors import InputError, SuiteError
from anibench.suite import KEY_PATTERN, Case, InvalidCase, Suite, case_id_problem, case_key
from anibench.suites import load_suite
from anibench.video import Video

from badfiles import image, write_clip
from conftest import moving_square

GUIDE = "frames/g.png"  # outside image/, so no layout case of its own


def _manifest_suite(tmp_path, records, text=None):
    """An anisora suite whose manifest holds a good record first, then ``records``."""
    (tmp_path / "frames").mkdir(exist_ok=True)
    image(tmp_path / GUIDE, np.zeros((48, 64, 3), np.uint8))
    body = text if text is not None else json.dumps([{"id": "good", "image": GUIDE}, *records])
    (tmp_path / "manifest.json").write_text(body, encoding="utf-8")
    return load_suite(f"anisora:{tmp_path}", guide_fit="exact")


def _guide(**fields):
    return {"file": GUIDE, "position": 0, **fields}


@pytest.mark.parametrize(
    "record, message",
    [
        ({"id": "c", "guides": [_guide(position=None)]}, "field 'guides[0].position': expected a number, got null"),
        ({"id": "c", "guides": [_guide(position=[0])]}, "field 'guides[0].position': expected a number, got [0]"),
        ({"id": "c", "guides": [_guide(position=True)]}, "field 'guides[0].position': expected a number, got true"),
        ({"id": "c", "guides": [_guide(position="0.5")]}, "field 'guides[0].position': expected a number, got \"0.5\""),
        ({"id": "c", "guides": [_guide(position=1.5)]}, "field 'guides[0].position': must be in [0, 1], got 1.5"),
        ({"id": "c", "guides": 5}, "field 'guides': expected a list, got 5"),
        ({"id": "c", "guides": [3]}, "field 'guides[0]': expected an object"),
        ({"id": "c", "guides": {"file": GUIDE, "position": 0}}, "field 'guides': expected a list"),
        ({"id": "c", "guides": [{"position": 0}]}, "field 'guides[0]': a guide needs 'file'"),
        ({"id": "c", "guides": [_guide(fit="sideways")]}, "field 'guides[0].fit': unknown guide fit 'sideways'"),
        ({"id": "c", "guides": [_guide(frame_index=[3])]}, "field 'guides[0].frame_index': expected a whole number, got [3]"),
        ({"id": "c", "guides": [_guide(frame_index=-1)]}, "field 'guides[0].frame_index': must be >= 0, got -1"),
        ({"id": "c", "guides": [_guide(frame_index=2.5)]}, "field 'guides[0].frame_index': expected a whole number, got 2.5"),
        ({"id": "c", "guides": [_guide(), _guide(file="frames/g.png")]}, "field 'guides': two guides at position 0"),
        ({"id": "c", "metadata": "x"}, "field 'metadata': expected an object, got \"x\""),
        ({"id": "c", "prompt": {"a": 1}}, "field 'prompt': expected text, got {\"a\": 1}"),
        ({"id": "c", "prompt": ["a"]}, "field 'prompt': expected text"),
        ({"id": "c", "style": 3}, "field 'style': expected text, got 3"),
        ({"id": "c", "style": "4d"}, "field 'style': must be one of 2d, 3d"),
        ({"id": "c", "label": 5}, "field 'label': expected text, got 5"),
        ({"id": "c", "mask_semantics": "sideways"}, "field 'mask_semantics': must be 'motion' or 'keep'"),
        ({"id": "c", "video": 3}, "field 'video': expected text, got 3"),
        ({"id": "c", "video": "a\x00.mp4"}, "field 'video': a file path cannot contain a NUL character"),
        ({"id": "c", "video": "../outside.mp4"}, "field 'video': path '../outside.mp4' resolves to"),
        ({"id": "c", "mask": "/etc/hosts"}, "field 'mask': path '/etc/hosts' resolves to"),
        ({"id": 7}, "field 'id': expected text, got 7"),
        ({"prompt": "no id"}, "field 'id': is required"),
        ({"id": "a/b"}, "field 'id': case id 'a/b' contains '/'"),
        ({"id": " c"}, "field 'id': case id ' c' has leading or trailing spaces"),
        ({"id": "x" * 201}, "field 'id': a case id has at most 200 characters"),
        ("just text", "a record must be an object with an 'id', got \"just text\""),
    ],
)
def test_each_wrong_field_fails_only_its_own_record_naming_field_record_and_file(tmp_path, record, message):
    suite = _manifest_suite(tmp_path, [record])
    assert [c.id for c in suite] == ["good"]
    (invalid,) = suite.invalid
    error = str(invalid.error())
    assert message in error, error
    assert "manifest.json" in error and "record 2" in error
    declared = record.get("id") if isinstance(record, dict) else None
    if isinstance(declared, str) and case_id_problem(declared) is None:
        assert invalid.id == f"{declared}@manifest.json#2" and invalid.case_id == declared
    else:
        assert invalid.id == "record2@manifest.json"
    assert f"case {invalid.id!r}" in error


def test_a_json_object_repeating_a_key_is_refused(tmp_path):
    text = '[{"id": "good", "image": "frames/g.png"}, {"id": "c", "prompt": "a", "prompt": "b"}]'
    suite = _manifest_suite(tmp_path, [], text=text)
    (invalid,) = suite.invalid
    assert invalid.id == "c@manifest.json#2" and "repeats the key(s) 'prompt'" in invalid.message


def test_id_to_prompt_mapping_refuses_a_dict_prompt_and_repeated_ids_one_by_one(tmp_path):
    text = '{"good": "fine", "bad": {"a": 1}, "twice": "one", "twice": "two"}'
    suite = _manifest_suite(tmp_path, [], text=text)
    assert suite.case("good").prompt == "fine"
    errors = {i.id: i.message for i in suite.invalid}
    assert "field 'prompt': expected text, got {\"a\": 1}" in errors["bad@manifest.json#2"]
    assert "at manifest.json#4" in errors["twice@manifest.json#3"]
    assert "at manifest.json#3" in errors["twice@manifest.json#4"]


def test_json_values_keep_their_types_in_metadata_and_unknown_guide_fields_are_ignored(tmp_path):
    record = {"id": "c", "image": GUIDE, "frames": 49, "fps": 16.0, "note": None,
              "guides": [_guide(width=64, height=48)]}
    case = _manifest_suite(tmp_path, [record]).case("c")
    assert case.metadata == {"frames": 49, "fps": 16.0, "note": None}
    assert [g.position for g in case.guides] == [0.0]


def test_csv_cells_are_text_empty_cells_are_absent_and_structured_cells_are_refused(tmp_path):
    image(tmp_path / "g.png", np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "p.csv").write_text(
        "id,prompt,style,image,frames,guides\n"
        "a,A girl.,2D,g.png,49,\n"          # line 2: fine; '49' stays text
        "b,,,,,\n"                          # line 3: empty cells are absent
        'c,x,,,,"[{""file"": ""g.png""}]"\n'  # line 4: guides cannot be given in a CSV
        "d,too,many,cells,here,!,!\n"       # line 5
        "e,short\n"                         # line 6
    )
    suite = load_suite(f"anisora:{tmp_path}", prompts="p.csv")
    a, b = suite.case("a"), suite.case("b")
    assert (a.prompt, a.style, a.metadata, a.guides[0].path.name) == ("A girl.", "2d", {"frames": "49"}, "g.png")
    assert (b.prompt, b.style, b.metadata, b.guides) == ("", None, {}, ())
    errors = {i.id: str(i.error()) for i in suite.invalid}
    assert "line 4: field 'guides': a CSV manifest carries flat text fields only" in errors["c@p.csv:4"]
    assert "line 5: the row has 7 cells and the header 6 columns" in errors["d@p.csv:5"]
    assert "line 6: the row has 2 cells" in errors["e@p.csv:6"]
    assert all("p.csv" in e for e in errors.values())


@pytest.mark.parametrize(
    "text, message",
    [
        ("[{]", "invalid JSON at line 1, column 3"),
        ('{"cases": 5}', "'cases' must be a list of records"),
        ("42", "manifest must be a list of cases"),
    ],
)
def test_a_manifest_no_record_can_be_read_from_is_refused_whole_naming_the_file(tmp_path, text, message):
    with pytest.raises(SuiteError, match=message) as info:
        _manifest_suite(tmp_path, [], text=text)
    assert "manifest.json" in str(info.value)


def test_bad_options_are_refused_with_the_choices(tmp_path):
    with pytest.raises(SuiteError, match="guide_fit must be one of exact, center-crop, resize"):
        load_suite(f"folder:{tmp_path}", guide_fit="stretch")


# -- identities ------------------------------------------------------------------------------
def _prompt_suite(tmp_path, lines):
    (tmp_path / "image").mkdir(exist_ok=True)
    for name in ("a", "b"):
        image(tmp_path / "image" / f"{name}.png", np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "prompts.txt").write_text("\n".join(lines) + "\n")
    return load_suite(f"anisora:{tmp_path}", prompts="prompts.txt")


def test_a_malformed_line_sharing_an_id_with_a_good_line_gets_its_own_identity(tmp_path):
    suite = _prompt_suite(tmp_path, ["good@@image/a.png", "broken@@image/a.png&&7", "unparsable line"])
    assert [c.id for c in suite] == ["a", "b"]  # b: the layout image nobody named
    assert suite.case("a").prompt == "good"
    ids = [i.id for i in suite.invalid]
    assert ids == ["a@prompts.txt:2", "line3@prompts.txt"]
    assert not set(ids) & {c.id for c in suite} and not {case_key(i) for i in ids} & {c.key for c in suite}


def test_duplicate_ids_are_refused_one_by_one_naming_the_other_copies(tmp_path):
    suite = _prompt_suite(tmp_path, ["first@@image/a.png", "second@@image/a.png", "third@@image/a.png",
                                     "other@@image/b.png"])
    assert [c.id for c in suite] == ["b"]
    messages = {i.id: i.message for i in suite.invalid}
    assert set(messages) == {"a@prompts.txt:1", "a@prompts.txt:2", "a@prompts.txt:3"}
    assert "defined 3 times: here (prompts.txt:2) and at prompts.txt:1, prompts.txt:3" in messages["a@prompts.txt:2"]


def test_a_suite_guarantees_unique_identities_over_cases_and_invalid_entries():
    crafted = case_key("a b")  # a safe id equal to another id's storage key
    suite = Suite("s", "1", (Case("a b"), Case(crafted), Case("x"), Case("y", origin="m.json#4"), Case("y")),
                  invalid=(InvalidCase("x", "broken"), InvalidCase("x", "broken too")))
    assert [c.id for c in suite] == ["x"]
    identities = [i.id for i in suite.invalid]
    assert identities == ["x~2", "x~3", "a b@copy1", f"{crafted}@copy2", "y@m.json#4", "y@copy5"]
    assert "same storage key" in suite.invalid[2].message and "defined 2 times" in suite.invalid[4].message
    keys = [c.key for c in suite] + [i.key for i in suite.invalid]
    assert len(set(keys)) == len(keys) == 7


# -- the case-id rule and storage keys -------------------------------------------------------
@pytest.mark.parametrize("case_id", ["a", "walk (take 2)", "女孩走路", "a@b#1", "x" * 200, "A.b-c_d", "100%"])
def test_ids_are_kept_exactly_as_given(case_id):
    assert case_id_problem(case_id) is None and Case(case_id).id == case_id


@pytest.mark.parametrize("case_id", ["", ".", "..", "a/b", "a\\b", "a\tb", "a\nb", "a\x00b", " a", "a ",
                                     "x" * 201, "a\u3000b", 7])
def test_ids_outside_the_rule_are_refused(case_id):
    assert case_id_problem(case_id)
    with pytest.raises(SuiteError):
        Case(case_id)


def test_storage_keys_are_safe_distinct_and_the_id_itself_when_already_safe():
    assert case_key("cartoon_films_da_dou_1") == "cartoon_films_da_dou_1"
    digest = hashlib.sha256("walk (take 2)".encode()).hexdigest()[:8]
    assert case_key("walk (take 2)") == f"walk_take_2-{digest}"
    assert case_key("女孩") == "case-" + hashlib.sha256("女孩".encode()).hexdigest()[:8]
    assert case_key("Café") .startswith("Cafe-")
    ids = ["a b", "a_b", "a  b", "a-b", "(a b)", "女孩", "男孩", "x" * 200 + "", "y" * 199 + "?"]
    keys = [case_key(i) for i in ids]
    assert len(set(keys)) == len(ids) and all(KEY_PATTERN.match(k) and len(k) <= 200 for k in keys)


def test_file_derived_ids_keep_the_original_stem(tmp_path):
    for name in ("walk (take 2)", "女孩"):
        write_clip(tmp_path / "video" / f"{name}.mp4", moving_square(num_frames=9))
        (tmp_path / "image").mkdir(exist_ok=True)
        image(tmp_path / "image" / f"{name}.png", np.zeros((64, 96, 3), np.uint8))
    anisora = load_suite(f"anisora:{tmp_path}")
    folder = load_suite(f"folder:{tmp_path / 'video'}")
    assert [c.id for c in anisora] == [c.id for c in folder] == ["walk (take 2)", "女孩"]
    assert anisora.case("女孩").guides[0].path.name == "女孩.png" and not anisora.invalid and not folder.invalid


# -- symlinks out of the suite --------------------------------------------------------------
def test_scanned_clips_and_images_symlinked_from_outside_are_refused_per_case(tmp_path):
    outside = tmp_path / "outside"
    clip = write_clip(outside / "x.mp4", moving_square(num_frames=9))
    picture = image(outside / "x.png", np.zeros((64, 96, 3), np.uint8))
    root = tmp_path / "suite"
    for name in ("good", "inner"):
        write_clip(root / "video" / f"{name}.mp4", moving_square(num_frames=9))
    (root / "video" / "out.mp4").symlink_to(clip)
    (root / "video" / "alias.mp4").symlink_to(root / "video" / "inner.mp4")  # inside the root: fine
    (root / "video" / "loop.mp4").symlink_to(root / "video" / "loop.mp4")
    (root / "image").mkdir()
    (root / "image" / "good.png").symlink_to(picture)
    anisora = load_suite(f"anisora:{root}")
    assert [c.id for c in anisora] == ["alias", "inner"]
    errors = {i.id: str(i.error()) for i in anisora.invalid}
    assert "outside the suite root" in errors["out@out.mp4"] and "out.mp4" in errors["out@out.mp4"]
    assert "outside the suite root" in errors["good@good.mp4"] and "good.png" in errors["good@good.mp4"]
    assert "cannot be resolved" in errors["loop@loop.mp4"]

    folder = load_suite(f"folder:{root / 'video'}")
    assert [c.id for c in folder] == ["alias", "good", "inner"]
    assert {i.id for i in folder.invalid} == {"out@out.mp4", "loop@loop.mp4"}
    os.symlink(picture, root / "video" / "inner.png")  # a guide beside a clip, from outside
    refused = {i.id: i.message for i in load_suite(f"folder:{root / 'video'}").invalid}
    assert "inner.png" in refused["inner@inner.mp4"] and "outside the suite root" in refused["inner@inner.mp4"]


def test_an_anymask_mask_symlinked_from_outside_is_refused(tmp_path):
    root = tmp_path / "suite"
    write_clip(root / "v.mp4", moving_square(num_frames=9))
    mask = write_clip(tmp_path / "elsewhere_mask.mp4", moving_square(num_frames=9))
    (root / "v_mask.mp4").symlink_to(mask)
    (root / "p.txt").write_text("a clip@@v.mp4\n")
    suite = load_suite(f"anisora:{root}", prompts="p.txt")
    (invalid,) = suite.invalid
    assert invalid.id == "v@p.txt:1" and "outside the suite root" in invalid.message and "line 1" in invalid.message


# -- a guide pinned to a frame ---------------------------------------------------------------
def test_a_frame_index_beyond_the_case_video_is_an_error_naming_case_guide_and_length(tmp_path):
    frames = moving_square(num_frames=9)
    write_clip(tmp_path / "video" / "c.mp4", frames)
    (tmp_path / "image").mkdir()
    image(tmp_path / "image" / "ref.png", frames[3])
    records = [{"id": "c", "video": "video/c.mp4", "guides": [{"file": "image/ref.png", "position": 0, "frame_index": i}]}
               for i in (3,)]
    (tmp_path / "manifest.json").write_text(json.dumps(records))
    case = load_suite(f"anisora:{tmp_path}").case("c")
    gt = Video.read(case.video)
    assert resolve(case, get_condition("own"), ground_truth=gt).guides[0].frame_index == 3
    records[0]["guides"][0]["frame_index"] = 9
    (tmp_path / "manifest.json").write_text(json.dumps(records))
    case = load_suite(f"anisora:{tmp_path}").case("c")
    with pytest.raises(InputError, match="frame_index 9 is beyond the case's video, which has 9 frames") as info:
        resolve(case, get_condition("own"), ground_truth=gt)
    assert info.value.case_id == "c" and info.value.path.endswith("ref.png")
