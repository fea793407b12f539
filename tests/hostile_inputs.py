"""A corpus of hostile inputs: suites full of malformed cases mixed with good ones, written as real files.

:func:`build_corpus` writes four suites into a folder — a folder of clips with a
``prompts.json``, the AniSora layout with a ``manifest.json`` (and masks), an AniSora
prompt file in UTF-8 and one in GBK — and returns, for each, the good cases (every one
must be scored) and the malformed ones, each with the fragment its message must contain,
the file it must name, and where it fails:

* ``LOAD``: the loader refuses it (listed by ``suite show``, failed in every run item,
  and failed in ``score`` when its clip is given);
* ``RUN``: generating or scoring it fails (in ``run``, and in ``score`` when it has a clip);
* ``SCORE``: it fails under ``score`` only (its own guides and mask are checked there);
* ``NA``: a condition does not apply to it and the record says why.

Clips are tiny (64x48, 9 frames) so the whole corpus runs in seconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import badfiles as bad
from anibench.video import Video
from conftest import moving_square, textured

LOAD, RUN, SCORE, NA = "load", "run", "score", "not_applicable"
HEIGHT, WIDTH, FRAMES = 48, 64, 9
RUN_SCORERS = ("temporal_flickering", "guide_psnr", "static_clip")
SCORE_SCORERS = (*RUN_SCORERS, "mask_precision")


@dataclass(frozen=True)
class Bad:
    """A malformed case: its identity (the invalid id for LOAD, else the case id), the fragment its
    message must contain, the file it must name, where it fails, and the clip ``score`` is given for it."""

    case: str
    fragment: str
    file: str
    stage: str
    clip: str | None = None


@dataclass
class CorpusSuite:
    name: str
    spec: str
    options: tuple[str, ...]
    clips: Path  # the folder ``anibench score`` is given
    good: dict[str, str | None] = field(default_factory=dict)  # case id -> its clip's file name (None: no clip)
    bad: list[Bad] = field(default_factory=list)

    def opt_args(self) -> list[str]:
        return [arg for option in self.options for arg in ("--opt", option)]


def build_corpus(root: Path) -> dict[str, CorpusSuite]:
    """Write the corpus under ``root``; {suite name: its description}."""
    outside = root / "outside"  # files suites must not reach
    outside.mkdir(parents=True)
    bad.image(outside / "secret.png", np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    _clip(outside / "secret.mp4", seed=9)
    suites = [_folder_suite(root / "folder", outside), _manifest_suite(root / "manifest", outside),
              _prompt_suite(root / "prompts", outside), _gbk_suite(root / "gbk")]
    return {s.name: s for s in suites}


# -- building blocks ---------------------------------------------------------------------------
def _clip(path: Path, *, frames: int = FRAMES, seed: int = 0, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Write a clip with motion; returns its decoded frames (guides cut from them match exactly)."""
    if height >= 40 and width >= 28:
        pixels = moving_square(num_frames=frames, height=height, width=width, seed=seed)
    else:  # too small for the square: a texture sliding sideways
        base = textured(height, width, seed)
        pixels = np.stack([np.roll(base, 2 * t, axis=1) for t in range(frames)])
    bad.write_clip(path, pixels)
    return Video.read(path).frames


def _frame(path: Path, frames: np.ndarray, index: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return bad.image(path, frames[index])


# -- folder:PATH ------------------------------------------------------------------------------
def _folder_suite(root: Path, outside: Path) -> CorpusSuite:
    root.mkdir()
    suite = CorpusSuite("folder", f"folder:{root}", (), root)
    for seed, case in enumerate(("good", "walk (take 2)", "clip [b]", "女孩")):
        frames = _clip(root / f"{case}.mp4", seed=seed)
        if case != "女孩":  # that one takes its guides from the video
            _frame(root / f"{case}.png", frames)
        suite.good[case] = f"{case}.mp4"
    _clip(root / "odd.mp4", height=47, width=63)  # odd sizes: fine
    _clip(root / "tiny.mp4", height=16, width=16)  # 16x16: fine
    suite.good.update({"odd": "odd.mp4", "tiny": "tiny.mp4"})

    long = _clip(root.parent / "long.mp4", frames=30, seed=5)
    clips = {
        "truncated": (lambda p: bad.truncated_mp4(p, root.parent / "long.mp4"), "cannot open video"),
        "corrupt": (bad.corrupt_mp4, "cannot open video"),
        "zero": (bad.zero_frame_mp4, "no video stream"),
        "empty": (lambda p: (p.write_bytes(b""), p)[1], "cannot open video"),
        "wrongfps": (bad.wrong_fps_mp4, "frame timestamps"),
        "fps1000": (bad.implausible_fps_mp4, "implausible frame rate"),
        "one": (lambda p: bad.write_clip(p, long[:1]), "1 frame(s)"),
        "png_named_mp4": (lambda p: bad.image(p.with_suffix(".tmp.png"), long[0]).rename(p), "1 frame(s)"),
    }
    for case, (write, fragment) in clips.items():
        write(root / f"{case}.mp4")
        suite.bad.append(Bad(case, fragment, f"{case}.mp4", RUN, f"{case}.mp4"))
    _clip(root / "wide.mp4", height=16, width=10000)  # flow cannot run on a 16-px-high clip
    suite.bad.append(Bad("wide", "wide.mp4", "wide.mp4", RUN, "wide.mp4"))

    guides = {
        "size": (lambda p: bad.image(p, np.zeros((50, 50, 3), np.uint8)), "50x50", ".png"),
        "gray": (lambda p: bad.grayscale_png(p, size=(HEIGHT, WIDTH)), "grayscale", ".png"),
        "rgba": (lambda p: bad.rgba_png(p, size=(HEIGHT, WIDTH)), "transparent", ".png"),
        "deep16": (lambda p: bad.png16(p, size=(HEIGHT, WIDTH)), "16-bit", ".png"),
        "deep48": (lambda p: bad.png48(p, size=(HEIGHT, WIDTH)), "48-bit RGB", ".png"),
        "cmyk": (lambda p: bad.cmyk_jpeg(p, size=(HEIGHT, WIDTH)), "CMYK", ".jpg"),
        "halfpng": (lambda p: bad.truncated_png(p, size=(HEIGHT, WIDTH)), "cannot read image", ".png"),
    }
    for seed, (case, (write, fragment, suffix)) in enumerate(guides.items(), start=10):
        _clip(root / f"{case}.mp4", seed=seed)
        write(root / f"{case}{suffix}")
        suite.bad.append(Bad(case, fragment, f"{case}{suffix}", RUN, f"{case}.mp4"))

    # refused by the loader
    (root / "out.mp4").symlink_to(outside / "secret.mp4")
    _clip(root / "peek.mp4", seed=20)
    (root / "peek.png").symlink_to(outside / "secret.png")
    _clip(root / "dupe.mp4", seed=21)
    _clip(root / "dupe.mkv", seed=22)
    _clip(root / "twoguides.mp4", seed=23)
    for suffix in (".png", ".jpg"):
        bad.image(root / f"twoguides{suffix}", np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    os.mkfifo(root / "fifo.mp4")  # reading it would block forever
    os.symlink("loop.mp4", root / "loop.mp4")
    raw_name = os.fsdecode(b"raw\xff.mp4")
    _clip(root / raw_name, seed=24)
    for seed, case in enumerate(("styled", "promptdict", "escape"), start=30):
        _clip(root / f"{case}.mp4", seed=seed)
    records = [
        {"id": "good", "prompt": "a good clip"},
        {"id": "walk (take 2).mp4", "prompt": "a person walks, second take"},
        {"id": "styled", "style": 3},
        {"id": "promptdict", "prompt": {"text": "a dict is not a prompt"}},
        {"id": "escape", "image": "../outside/secret.png"},
        {"id": "noclip", "guides": 5},
    ]
    (root / "prompts.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    suite.bad += [
        Bad("out@out.mp4", "outside the suite root", "out.mp4", LOAD, "out.mp4"),
        Bad("peek@peek.mp4", "outside the suite root", "peek.png", LOAD, "peek.mp4"),
        Bad("dupe@dupe.mp4", "at dupe.mkv", "dupe.mp4", LOAD, "dupe.mp4"),
        Bad("dupe@dupe.mkv", "at dupe.mp4", "dupe.mkv", LOAD, "dupe.mkv"),
        Bad("twoguides@twoguides.mp4", "two guide images", "twoguides.mp4", LOAD, "twoguides.mp4"),
        Bad("fifo@fifo.mp4", "not a regular file", "fifo.mp4", LOAD),
        Bad("loop@loop.mp4", "cannot be resolved", "loop.mp4", LOAD),
        Bad("file@raw?udcff.mp4", "gives no usable case id", "raw\\udcff.mp4", LOAD),
        Bad("styled@prompts.json#3", "field 'style': expected text, got 3", "prompts.json", LOAD, "styled.mp4"),
        Bad("promptdict@prompts.json#4", "field 'prompt': expected text", "prompts.json", LOAD, "promptdict.mp4"),
        Bad("escape@prompts.json#5", "field 'image': path '../outside/secret.png'", "prompts.json", LOAD, "escape.mp4"),
        Bad("noclip@prompts.json#6", "field 'guides': expected a list, got 5", "prompts.json", LOAD),
    ]
    return suite


# -- anisora:PATH with manifest.json --------------------------------------------------------------
def _manifest_suite(root: Path, outside: Path) -> CorpusSuite:
    suite = CorpusSuite("manifest", f"anisora:{root}", (), root / "video")
    video, image, mask = root / "video", root / "image", root / "mask"
    records: list = []

    def case(case_id: str, seed: int, *, guide: bool = True, **fields) -> np.ndarray:
        """A record with its clip (and its first frame as image/<id>.png when ``guide``); returns the frames."""
        frames = _clip(video / f"{case_id}.mp4", seed=seed)
        record = {"id": case_id, "prompt": f"clip {case_id}", "video": f"video/{case_id}.mp4", **fields}
        if guide:
            _frame(image / f"{case_id}.png", frames)
            record.setdefault("image", f"image/{case_id}.png")
        records.append(record)
        return frames

    # good cases
    frames = case("cartoon_films_da_dou_1", 1, guide=False, style="2D",
                  guides=[{"file": "image/cartoon_films_da_dou_1.png", "position": 0.375, "frame_index": 3,
                           "width": WIDTH, "height": HEIGHT}])  # unknown guide fields are ignored
    _frame(image / "cartoon_films_da_dou_1.png", frames, 3)
    frames = case("interp", 2, guide=False, guides=[{"file": "frames/interp_first.png", "position": 0},
                                                    {"file": "frames/interp_last.png", "position": 1.0}])
    _frame(root / "frames" / "interp_first.png", frames, 0)
    _frame(root / "frames" / "interp_last.png", frames, FRAMES - 1)
    _frame(image / "interp.png", frames)  # a guide for the records below
    case("masked", 3, mask="mask/masked.mp4", mask_semantics="motion")
    bad.write_clip(mask / "masked.mp4", np.full((FRAMES, HEIGHT, WIDTH, 3), 255, np.uint8))
    case("(2) shot 1", 4, label="da_dou", source_note="ids keep spaces and parentheses")
    texture = textured(HEIGHT, WIDTH, seed=6)
    bad.image(root / "frames" / "tiny_guide.png", np.ascontiguousarray(texture[16:32, 24:40]))  # 16x16, scaled up
    case("tiny_guide", 6, guide=False, image="frames/tiny_guide.png")
    bad.image(root / "frames" / "strip_guide.png", np.repeat(texture[:16, :1], 10000, axis=1))  # 10000x16
    case("strip_guide", 7, guide=False, image="frames/strip_guide.png")
    suite.good = {c: f"{c}.mp4" for c in ("cartoon_films_da_dou_1", "interp", "masked", "(2) shot 1", "tiny_guide",
                                         "strip_guide")}

    # not applicable: guides only, no video (reference has nothing to return; first-last has no last frame)
    _frame(root / "frames" / "guides_only.png", frames)  # no video/guides_only.mp4
    records.append({"id": "guides_only", "prompt": "no video", "image": "frames/guides_only.png"})
    suite.bad += [Bad("guides_only", "no ground-truth video", "guides_only", NA),
                  Bad("guides_only", "no guide image at position 1", "guides_only", NA)]

    # refused by the loader: one record each
    g = {"file": "image/interp.png", "position": 0}
    malformed = [
        ({"id": "p_null", "guides": [{**g, "position": None}]}, "field 'guides[0].position': expected a number, got null"),
        ({"id": "p_list", "guides": [{**g, "position": [0]}]}, "field 'guides[0].position': expected a number, got [0]"),
        ({"id": "p_true", "guides": [{**g, "position": True}]}, "field 'guides[0].position': expected a number, got true"),
        ({"id": "p_text", "guides": [{**g, "position": "0.5"}]}, "expected a number, got \"0.5\""),
        ({"id": "p_range", "guides": [{**g, "position": 1.5}]}, "must be in [0, 1], got 1.5"),
        ({"id": "g_int", "guides": 5}, "field 'guides': expected a list, got 5"),
        ({"id": "g_items", "guides": [3]}, "field 'guides[0]': expected an object"),
        ({"id": "g_nofile", "guides": [{"position": 0}]}, "a guide needs 'file'"),
        ({"id": "g_fit", "guides": [{**g, "fit": "sideways"}]}, "field 'guides[0].fit': unknown guide fit"),
        ({"id": "g_same", "guides": [g, {**g, "file": "image/masked.png"}]}, "two guides at position 0"),
        ({"id": "meta_text", "metadata": "x"}, "field 'metadata': expected an object, got \"x\""),
        ({"id": "fi_list", "guides": [{**g, "frame_index": [3]}]}, "field 'guides[0].frame_index': expected a whole number"),
        ({"id": "fi_negative", "guides": [{**g, "frame_index": -1}]}, "field 'guides[0].frame_index': must be >= 0"),
        ({"id": "prompt_dict", "prompt": {"a": 1}}, "field 'prompt': expected text, got {\"a\": 1}"),
        ({"id": "style_int", "style": 3}, "field 'style': expected text, got 3"),
        ({"id": "style_4d", "style": "4d"}, "field 'style': must be one of 2d, 3d"),
        ({"id": "label_int", "label": 5}, "field 'label': expected text, got 5"),
        ({"id": "semantics", "mask": "mask/masked.mp4", "mask_semantics": "sideways"}, "must be 'motion' or 'keep'"),
        ({"id": "video_escape", "video": "../outside/secret.mp4"}, "field 'video': path '../outside/secret.mp4'"),
        ({"id": "video_absolute", "video": str(outside / "secret.mp4")}, "outside the suite root"),
        ({"id": "video_nul", "video": "video/a\x00.mp4"}, "cannot contain a NUL character"),
        ({"id": 7, "prompt": "numeric id"}, "field 'id': expected text, got 7"),
        ({"prompt": "no id at all"}, "field 'id': is required"),
        ({"id": "../evil"}, "field 'id': case id '../evil' contains '/'"),
        ({"id": "tab\there"}, "contains control or non-printable characters"),
        ("not a record", "a record must be an object"),
    ]
    first = len(records) + 1
    for offset, (record, fragment) in enumerate(malformed):
        number = first + offset
        declared = record.get("id") if isinstance(record, dict) else None
        usable = isinstance(declared, str) and "/" not in declared and "\t" not in declared
        identity = f"{declared}@manifest.json#{number}" if usable else f"record{number}@manifest.json"
        records.append(record)
        suite.bad.append(Bad(identity, fragment, "manifest.json", LOAD))
    number = len(records) + 1
    for copy in range(2):  # the same id twice: each copy refused, naming the other
        case("twin", 40 + copy)
    suite.bad += [Bad(f"twin@manifest.json#{number}", "defined 2 times", "manifest.json", LOAD, "twin.mp4"),
                  Bad(f"twin@manifest.json#{number + 1}", "defined 2 times", "manifest.json", LOAD)]

    # fail when generated or scored
    case("far_frame", 50, guide=False, guides=[{"file": "image/interp.png", "position": 0, "frame_index": 40}])
    records.append({"id": "ghost", "video": "video/ghost.mp4", "image": "image/interp.png"})
    case("lost_guide", 51, guide=False, guides=[{"file": "image/lost.png", "position": 0}])
    suite.bad += [
        Bad("far_frame", "frame_index 40 is beyond the case's video, which has 9 frames", "interp.png", RUN, "far_frame.mp4"),
        Bad("ghost", "video file not found", "ghost.mp4", RUN),
        Bad("lost_guide", "image file not found", "lost.png", RUN, "lost_guide.mp4"),
    ]
    # masks: checked where the case's own mask is used (anibench score)
    case("mask_missing", 60, mask="mask/none.mp4")
    case("mask_aspect", 61, mask="mask/mask_aspect.mp4")
    bad.write_clip(mask / "mask_aspect.mp4", np.full((FRAMES, 48, 32, 3), 255, np.uint8))
    case("mask_corrupt", 62, mask="mask/mask_corrupt.mp4")
    bad.corrupt_mp4(mask / "mask_corrupt.mp4")
    suite.bad += [
        Bad("mask_missing", "video file not found", "none.mp4", SCORE, "mask_missing.mp4"),
        Bad("mask_aspect", "different aspect ratio", "mask_aspect.mp4", SCORE, "mask_aspect.mp4"),
        Bad("mask_corrupt", "cannot open video", "mask_corrupt.mp4", SCORE, "mask_corrupt.mp4"),
    ]
    (root / "manifest.json").write_text(json.dumps({"name": "hostile", "cases": records}, ensure_ascii=False),
                                        encoding="utf-8")
    return suite


# -- anisora:PATH with an AniSora prompt file ----------------------------------------------------
def _prompt_suite(root: Path, outside: Path) -> CorpusSuite:
    suite = CorpusSuite("prompts", f"anisora:{root}", ("prompts=prompts.txt",), root / "video")
    for seed, case in enumerate(("a", "b", "k")):
        frames = _clip(root / "video" / f"{case}.mp4", seed=70 + seed)
        if case == "k":
            _frame(root / "frames" / "k_first.png", frames, 0)
            _frame(root / "frames" / "k_last.png", frames, FRAMES - 1)
        else:
            _frame(root / "image" / f"{case}.png", frames)
    _frame(root / "frames" / "d.png", frames)
    bad.grayscale_png(root / "frames" / "gray.png", size=(HEIGHT, WIDTH))
    (root / "frames" / "link.png").symlink_to(outside / "secret.png")
    (root / "notes.txt").write_text("not an image")
    lines = [
        "A girl walks in the rain. aesthetic score: 5.5. motion score: 2.0.@@image/a.png",  # 1
        "She waves.@@image/b.png",  # 2
        "broken, shares its id with line 1@@image/a.png&&7",  # 3
        "no separator on this line",  # 4
        "nothing after the separator@@",  # 5
        "positions@@frames/k_first.png,frames/k_last.png&&0,x",  # 6
        "count@@frames/k_first.png,frames/k_last.png&&0",  # 7
        "text@@notes.txt",  # 8
        "escape@@../outside/secret.png",  # 9
        f"absolute@@{outside / 'secret.png'}",  # 10
        "link@@frames/link.png",  # 11
        "dup one@@frames/d.png",  # 12
        "dup two@@frames/d.png",  # 13
        "same position@@frames/k_first.png,frames/k_last.png&&0,0",  # 14
        "He turns.@@frames/k_first.png,frames/k_last.png&&0,1",  # 15: good, id "k"
        "missing@@frames/nothere.png",  # 16
        "gray@@frames/gray.png",  # 17
        "video and positions@@video/b.mp4&&0",  # 18
    ]
    (root / "prompts.txt").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    suite.good = {"a": "a.mp4", "b": "b.mp4", "k": "k.mp4"}
    suite.bad += [
        Bad("a@prompts.txt:3", "line 3: guide position 7.0 is outside [0, 1]", "prompts.txt", LOAD),
        Bad("line4@prompts.txt", "line 4: expected 'prompt@@file'", "prompts.txt", LOAD),
        Bad("line5@prompts.txt", "line 5: no file after '@@'", "prompts.txt", LOAD),
        Bad("line6@prompts.txt", "line 6: positions after '&&' must be numbers", "prompts.txt", LOAD),
        Bad("line7@prompts.txt", "line 7: 2 image(s) but 1 position(s)", "prompts.txt", LOAD),
        Bad("notes@prompts.txt:8", "notes.txt is not an image", "prompts.txt", LOAD),
        Bad("secret@prompts.txt:9", "outside the suite root", "prompts.txt", LOAD),
        Bad("secret@prompts.txt:10", "outside the suite root", "prompts.txt", LOAD),
        Bad("link@prompts.txt:11", "resolves to", "prompts.txt", LOAD),
        Bad("d@prompts.txt:12", "at prompts.txt:13", "prompts.txt", LOAD),
        Bad("d@prompts.txt:13", "at prompts.txt:12", "prompts.txt", LOAD),
        Bad("k@prompts.txt:14", "line 14: two guides at position 0", "prompts.txt", LOAD),
        Bad("b@prompts.txt:18", "b.mp4 is not an image", "prompts.txt", LOAD),
        Bad("nothere", "image file not found", "nothere.png", RUN),
        Bad("gray", "grayscale", "gray.png", RUN),
    ]
    return suite


# -- the same in GBK ---------------------------------------------------------------------------
def _gbk_suite(root: Path) -> CorpusSuite:
    suite = CorpusSuite("gbk", f"anisora:{root}", ("prompts=prompts_gbk.txt", "guide_fit=exact"), root / "video")
    frames = _clip(root / "video" / "cartoon_films_zou_lu_2.mp4", seed=80)
    _frame(root / "image" / "cartoon_films_zou_lu_2.png", frames)
    frames = _clip(root / "video" / "z.mp4", seed=81)
    _frame(root / "frames" / "z_first.png", frames, 0)
    _frame(root / "frames" / "z_last.png", frames, FRAMES - 1)
    lines = [
        "女孩在雨中走路。aesthetic score: 5.5.@@image/cartoon_films_zou_lu_2.png",  # 1
        "她转身@@frames/z_first.png，frames/z_last.png&&0，1",  # 2: full-width commas
        "男孩哭了。",  # 3
        "跑步@@image/cartoon_films_zou_lu_2.png&&1.5",  # 4: shares its id with line 1
        "转身@@frames/z_first.png,frames/z_last.png&&0,1",  # 5: good, id "z"
    ]
    (root / "prompts_gbk.txt").write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    suite.good = {"cartoon_films_zou_lu_2": "cartoon_films_zou_lu_2.mp4", "z": "z.mp4"}
    suite.bad += [
        Bad("line2@prompts_gbk.txt", "positions after '&&' must be numbers: '0，1'", "prompts_gbk.txt", LOAD),
        Bad("line3@prompts_gbk.txt", "expected 'prompt@@file' (AniSora prompt format), got '男孩哭了。'",
            "prompts_gbk.txt", LOAD),
        Bad("cartoon_films_zou_lu_2@prompts_gbk.txt:4", "guide position 1.5 is outside [0, 1]", "prompts_gbk.txt", LOAD),
    ]
    return suite
