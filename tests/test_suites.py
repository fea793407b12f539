"""Suite loaders: the AniSora layout and prompt formats, any folder of clips, safety checks."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from anibench.errors import RegistryError, SuiteError
from anibench.images import GuideFit
from anibench.suite import Case, MaskSemantics
from anibench.suites import SUITES, load_suite
from anibench.suites.common import anisora_label, label_meaning
from anibench.suites.prompt_files import split_prompt_suffix

from badfiles import image, write_clip
from conftest import moving_square


def test_builtin_loaders_are_registered():
    assert {"anisora", "folder", "smoke"} <= set(SUITES.names())
    with pytest.raises(RegistryError, match="did you mean anisora"):
        load_suite("anisoar:/x")


@pytest.mark.parametrize(
    "case_id, label",
    [("cartoon_films_da_dou_1", "da_dou"), ("motion_comics_tui_la_5_firstlast", "tui_la"),
     ("cartoon_films_ren_wu_shuo_hua_34_firstmidlast", "ren_wu_shuo_hua"), ("case_11_seed666666", None)],
)
def test_action_labels_are_parsed_from_anisora_ids(case_id, label):
    assert anisora_label(case_id) == label


def test_label_meanings_come_from_the_data_folder():
    assert label_meaning("da_dou") == "fight" and label_meaning("unknown_stem") is None


def test_anisora_samples_manifest(samples_dir):
    suite = load_suite(f"anisora:{samples_dir}")
    ids = {c.id for c in suite}
    assert "case_11_seed666666_mask" not in ids  # a mask entry is a file of another case
    assert {"cartoon_films_da_dou_1", "cartoon_films_shuo_hua_26", "case_11_seed666666",
            "motion_comics_tui_la_5_firstlast"} <= ids
    da_dou = suite.case("cartoon_films_da_dou_1")
    assert da_dou.label == "da_dou" and da_dou.prompt.startswith("In this video, a group of samurai")
    assert da_dou.guides[0].frame_index == 3 and da_dou.video.name == "cartoon_films_da_dou_1.mp4"
    temporal = suite.case("cartoon_films_ren_wu_shuo_hua_34_firstmidlast")
    assert [g.position for g in temporal.guides] == [0.0, 0.5, 1.0] and temporal.video is None
    shuo_hua = suite.case("cartoon_films_shuo_hua_26")
    assert shuo_hua.guides[0].fit is GuideFit.CENTER_CROP  # "3:2 centre crop" in the manifest
    assert suite.case("case_11_seed666666").mask.name == "case_11_seed666666_mask.mp4"


def test_anisora_image_video_layout_without_manifest(samples_dir):
    suite = load_suite(f"anisora:{samples_dir / 'reward'}")
    assert [c.id for c in suite] == ["cartoon_films_da_dou_1", "cartoon_films_shuo_hua_26", "cartoon_films_tui_la_13"]
    for case in suite:
        assert case.video.parent.name == "video" and case.guides[0].path.parent.name == "image"
        assert case.guides[0].position == 0.0 and case.label


def test_anymask_prompt_file(samples_dir):
    suite = load_suite(f"anisora:{samples_dir / 'anymask_spa'}", prompts="spa.txt")
    (case,) = suite.cases
    assert case.id == "case_11_seed666666"
    assert case.prompt == "A blue array appeared and gold coins began to fall from the sky. An anime scene."
    assert "motion score: 4.0" in case.metadata["prompt_suffix"]
    assert case.mask.name.endswith("_mask.mp4") and case.mask_semantics is MaskSemantics.KEEP


def test_prompt_suffixes_are_split_off():
    prompt, suffix = split_prompt_suffix("A girl waves. aesthetic score: 5.5. motion score: 1.2. There is no text in the video.")
    assert prompt == "A girl waves." and suffix.count("score") == 2 and "no text" in suffix


def _layout(root, ids, size=(64, 96)):
    for case_id in ids:
        (root / "image").mkdir(parents=True, exist_ok=True)
        image(root / "image" / f"{case_id}.png", np.zeros((*size, 3), np.uint8))
        write_clip(root / "video" / f"{case_id}.mp4", moving_square(num_frames=9))


def test_v1_and_v3_prompt_lines_in_gbk(tmp_path):
    _layout(tmp_path, ["cartoon_films_zou_lu_2"])
    for name in ("a_first.png", "a_mid.png", "a_last.png"):
        image(tmp_path / "image" / name, np.zeros((64, 96, 3), np.uint8))
    text = (
        "女孩在雨中走路。aesthetic score: 5.5.@@image/cartoon_films_zou_lu_2.png\n"
        "\n"
        "她转身@@image/a_first.png,image/a_mid.png,image/a_last.png&&0,0.5,1\n"
    )
    (tmp_path / "prompts.txt").write_bytes(text.encode("gbk"))
    suite = load_suite(f"anisora:{tmp_path}", prompts="prompts.txt")
    walk = suite.case("cartoon_films_zou_lu_2")
    assert walk.prompt == "女孩在雨中走路。" and walk.label == "zou_lu" and walk.video is not None
    keyed = suite.case("a")
    assert keyed.prompt == "她转身" and [g.position for g in keyed.guides] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"no separator here\n", "expected 'prompt@@file'"),
        ("提示@@image/x.png,image/y.png&&0\n".encode("utf-8"), "2 image\\(s\\) but 1 position"),
        ("提示@@image/x.png&&abc\n".encode("utf-8"), "must be numbers"),
        (b"escape@@../../etc/passwd.png\n", "outside the suite root"),
        (b"escape@@/etc/passwd.png\n", "outside the suite root"),
    ],
    ids=["no-separator", "count-mismatch", "bad-position", "dotdot", "absolute"],
)
def test_bad_prompt_lines_become_invalid_cases_naming_the_file(tmp_path, content, message):
    _layout(tmp_path, ["good"])
    (tmp_path / "prompts.txt").write_bytes(b"fine@@image/good.png\n" + content)
    suite = load_suite(f"anisora:{tmp_path}", prompts="prompts.txt")
    assert [c.id for c in suite] == ["good"]  # the other cases still load
    (invalid,) = suite.invalid
    error = str(invalid.error())
    assert re.search(message, error) and "prompts.txt" in error and "line 2" in error


def test_an_undecodable_prompt_file_is_refused_whole(tmp_path):
    (tmp_path / "prompts.txt").write_bytes(b"ok@@a.png\n\xff\xfe\xfa\xfb@@x.png\n")
    with pytest.raises(SuiteError, match="neither UTF-8 nor GBK .*line 2") as info:
        load_suite(f"anisora:{tmp_path}", prompts="prompts.txt")
    assert "prompts.txt" in str(info.value)


def test_manifest_path_escaping_the_root_is_refused(tmp_path):
    root = tmp_path / "suite"
    _layout(root, ["c1", "c2"])
    outside = image(tmp_path / "secret.png", np.zeros((8, 8, 3), np.uint8))
    (root / "manifest.json").write_text(json.dumps([{"id": "c1", "image": "../secret.png"}, {"id": "c2"}]))
    suite = load_suite(f"anisora:{root}")
    assert [c.id for c in suite] == ["c2"]
    (invalid,) = suite.invalid
    error = str(invalid.error())
    assert invalid.id == "c1@manifest.json#1" and invalid.case_id == "c1"  # its own identity, never a valid id
    assert "outside the suite root" in error and "manifest.json" in error and "record 1" in error and "field 'image'" in error
    (root / "image" / "link.png").symlink_to(outside)
    (root / "manifest.json").write_text(json.dumps([{"id": "c1", "image": "image/link.png"}]))
    assert "outside the suite root" in load_suite(f"anisora:{root}").invalid[0].message


def test_csv_manifest_and_unknown_fields_go_to_metadata(tmp_path):
    _layout(tmp_path, ["cartoon_films_ku_qi_3"])
    (tmp_path / "p.csv").write_text("id,prompt,style,source_note\ncartoon_films_ku_qi_3,A boy cries.,2d,hand-picked\n")
    case = load_suite(f"anisora:{tmp_path}", prompts="p.csv").case("cartoon_films_ku_qi_3")
    assert (case.prompt, case.style, case.label, case.metadata["source_note"]) == ("A boy cries.", "2d", "ku_qi", "hand-picked")


def test_folder_suite_with_prompts_and_guides(tmp_path):
    write_clip(tmp_path / "a cat running-0.mp4", moving_square(num_frames=9))
    write_clip(tmp_path / "b.mp4", moving_square(num_frames=9))
    image(tmp_path / "b.png", np.zeros((64, 96, 3), np.uint8))
    (tmp_path / "prompts.json").write_text(json.dumps({"a cat running-0.mp4": "a cat running", "b": "bee"}))
    suite = load_suite(f"folder:{tmp_path}")
    a, b = suite.case("a cat running-0"), suite.case("b")  # the file stem, kept as it is
    assert a.prompt == "a cat running" and a.video.name == "a cat running-0.mp4" and not a.guides
    assert a.key == "a_cat_running-0-" + hashlib.sha256(b"a cat running-0").hexdigest()[:8] and b.key == "b"
    assert b.prompt == "bee" and b.guides[0].path.name == "b.png" and b.guides[0].fit is GuideFit.EXACT


def test_unknown_loader_options_are_refused(tmp_path):
    with pytest.raises(SuiteError, match="does not take options"):
        load_suite(f"folder:{tmp_path}", colour="blue")


def test_case_validation():
    with pytest.raises(SuiteError, match="case id"):
        Case("../evil")
    with pytest.raises(SuiteError, match="style"):
        Case("ok", style="4d")
    with pytest.raises(SuiteError, match="prompt must be text"):
        Case("ok", prompt={"a": 1})
