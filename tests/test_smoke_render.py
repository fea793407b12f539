"""Tests of the procedural smoke-clip renderer (:mod:`anibench.smoke.render`).

Clips are cached per spec within the module (rendering is deterministic), so the
property tests share renders; the determinism test renders afresh on purpose.
"""

from __future__ import annotations

import itertools
import json
import pickle
from functools import lru_cache

import numpy as np
import pytest

from anibench.resources import load_yaml
from anibench.smoke.render import (
    ACTIONS,
    CAMERA_ACTIONS,
    CHARACTER_ACTIONS,
    KEYPOINTS,
    STYLES,
    ClipSpec,
    RenderedClip,
    backgrounds,
    characters,
    describe_clip,
    render_clip,
)

CHANGE_THRESHOLD = 10  # a pixel "moves" when a channel changes by more than this


@lru_cache(maxsize=None)
def clip(character: str = "Aki", action: str = "idle", style: str = "2d", background: str = "sunny_hills",
         **kw) -> RenderedClip:
    return render_clip(ClipSpec(character, action, style, background, **kw))


def changed(frames: np.ndarray) -> np.ndarray:
    """(T-1, H, W) bool: pixels that change between frame t and t+1."""
    return (np.abs(np.diff(frames.astype(np.int16), axis=0)) > CHANGE_THRESHOLD).any(axis=-1)


# --------------------------------------------------------------------------- API and data


def test_public_constants_and_defaults():
    assert ACTIONS == ("idle", "talking", "waving", "walking", "running", "jumping", "turning",
                       "camera_zoom", "camera_pan")
    assert STYLES == ("2d", "3d")
    assert set(CHARACTER_ACTIONS) | set(CAMERA_ACTIONS) == set(ACTIONS)
    assert KEYPOINTS == ("head", "right_hand", "left_hand", "right_foot", "left_foot")
    spec = ClipSpec("Aki", "idle", "2d", "sunny_hills")
    assert (spec.num_frames, spec.fps, spec.width, spec.height, spec.seed) == (49, 16.0, 192, 128, 0)
    defaults = load_yaml("smoke.yaml")["defaults"]
    assert (defaults["num_frames"], defaults["fps"], defaults["width"], defaults["height"]) == (49, 16.0, 192, 128)


def test_cast_has_six_pairwise_distinct_identities():
    cast = characters()
    assert len(cast) >= 6
    assert len({c.name for c in cast}) == len(cast)
    for a, b in itertools.combinations(cast, 2):
        pair = f"{a.name}/{b.name}"
        assert a.hair_style != b.hair_style, pair
        assert a.words["hair"] != b.words["hair"], pair
        assert a.words["eyes"] != b.words["eyes"], pair
        assert a.words["outfit"] != b.words["outfit"], pair
        assert a.outfit_style != b.outfit_style, pair
        # Clearly distinct colours, not just different words.
        for field in ("hair_color", "eye_color", "outfit_color"):
            distance = np.linalg.norm(np.subtract(getattr(a, field), getattr(b, field)))
            assert distance > 60, (pair, field, distance)
    for c in cast:
        assert c.pronoun in ("she", "he")
        assert set(c.words) >= {"hair", "eyes", "outfit"}
        assert pickle.loads(pickle.dumps(c)) == c
        with pytest.raises(TypeError):
            c.words["hair"] = "green"  # type: ignore[index]


def test_backgrounds_listed():
    ids = backgrounds()
    assert len(ids) >= 4
    assert len(set(ids)) == len(ids)
    assert all(isinstance(b, str) and b for b in ids)


# --------------------------------------------------------------------------- frames


def test_render_is_deterministic():
    for spec in (ClipSpec("Mio", "waving", "3d", "forest", num_frames=12, seed=3),
                 ClipSpec("Ren", "camera_pan", "2d", "dusk_city", num_frames=12, seed=4)):
        a, b = render_clip(spec), render_clip(spec)
        assert a.frames.tobytes() == b.frames.tobytes()
        assert (a.motion_mask is None) == (b.motion_mask is None)
        if a.motion_mask is not None:
            assert np.array_equal(a.motion_mask, b.motion_mask)
        assert json.dumps(a.facts, sort_keys=True) == json.dumps(b.facts, sort_keys=True)


def test_seed_and_character_change_the_frames():
    base = clip("Aki", "walking", "2d", "sunny_hills", num_frames=9)
    other_seed = clip("Aki", "walking", "2d", "sunny_hills", num_frames=9, seed=1)
    other_char = clip("Nana", "walking", "2d", "sunny_hills", num_frames=9)
    assert not np.array_equal(base.frames, other_seed.frames)
    assert not np.array_equal(base.frames, other_char.frames)
    # The seed never changes who the character is.
    assert base.facts["identity"] == other_seed.facts["identity"]


@pytest.mark.parametrize("width,height,num_frames", [(192, 128, 49), (720, 480, 3), (190, 126, 9), (64, 48, 1)])
def test_shapes_and_dtypes(width, height, num_frames):
    for action in ("waving", "camera_zoom"):
        out = render_clip(ClipSpec("Kaito", action, "3d", "night_sky", num_frames=num_frames, width=width,
                                   height=height))
        assert out.frames.shape == (num_frames, height, width, 3)
        assert out.frames.dtype == np.uint8
        if action == "waving":
            assert out.motion_mask.shape == (num_frames, height, width)
            assert out.motion_mask.dtype == bool
        else:
            assert out.motion_mask is None
        assert out.facts["num_frames"] == num_frames
        assert (out.facts["width"], out.facts["height"]) == (width, height)


def test_every_character_shows_its_identity_colours():
    """Flat 2d fills keep exact colours: hair, eyes and outfit must all be on screen."""
    for c in characters():
        frame = clip(c.name, "idle", "2d", "classroom", num_frames=1).frames[0]
        counts = {field: int(np.all(frame == np.array(getattr(c, field), np.uint8), axis=-1).sum())
                  for field in ("hair_color", "eye_color", "skin_color", "outfit_color")}
        assert counts["hair_color"] > 150, (c.name, counts)
        assert counts["skin_color"] > 100, (c.name, counts)
        assert counts["outfit_color"] > 40, (c.name, counts)
        assert counts["eye_color"] > 2, (c.name, counts)


def test_character_is_centred_and_sized():
    raw = load_yaml("smoke.yaml")["figure"]
    for size in ((192, 128), (720, 480)):
        out = clip("Aki", "idle", "2d", "sunny_hills", num_frames=1, width=size[0], height=size[1])
        x0, y0, x1, y1 = out.facts["character_boxes"][0]
        w, h = size
        assert 0.60 <= (y1 - y0) / h <= 0.78, (y1 - y0) / h
        assert abs((x0 + x1) / 2 - w / 2) < 0.05 * w
        assert abs(y1 / h - raw["ground"]) < 0.03


def test_2d_and_3d_look_different():
    for bg in backgrounds():
        flat = clip("Yuki", "idle", "2d", bg, num_frames=1).frames[0].astype(np.int16)
        shaded = clip("Yuki", "idle", "3d", bg, num_frames=1).frames[0].astype(np.int16)
        assert np.abs(flat - shaded).mean() > 6.0, bg
    # 2d has near-black outlines around the character; 3d has none.
    flat = clip("Aki", "idle", "2d", "sunny_hills", num_frames=1)
    shaded = clip("Aki", "idle", "3d", "sunny_hills", num_frames=1)
    x0, y0, x1, y1 = flat.facts["character_boxes"][0]

    def dark(frame: np.ndarray) -> float:
        return float((frame[y0:y1, x0:x1].max(axis=-1) < 60).mean())

    assert dark(flat.frames[0]) > 0.08
    assert dark(shaded.frames[0]) < 0.5 * dark(flat.frames[0])


@pytest.mark.parametrize("action", CHARACTER_ACTIONS)
def test_character_actions_keep_the_background_still(action):
    out = clip("Ren", action, "2d", "classroom", num_frames=25)
    frames = out.frames
    touched = out.motion_mask.any(axis=0)
    for t in range(1, len(frames)):
        assert np.array_equal(frames[t][~touched], frames[0][~touched])
    for ys, xs in ((slice(0, 8), slice(0, 8)), (slice(0, 8), slice(-8, None)), (slice(-8, None), slice(0, 8)),
                   (slice(-8, None), slice(-8, None))):
        assert (frames[:, ys, xs] == frames[0, ys, xs]).all()


@pytest.mark.parametrize("background", ["forest", "classroom"])
@pytest.mark.parametrize("action", CAMERA_ACTIONS)
def test_camera_actions_move_the_whole_frame(action, background):
    out = clip("Ren", action, "3d", background)
    h, w = out.frames.shape[1:3]
    first, last = out.frames[0].astype(np.int16), out.frames[-1].astype(np.int16)
    for band in (slice(0, h // 8), slice(h - h // 10, h)):  # sky/wall and ground, away from the character
        assert np.abs(first[band] - last[band]).mean() > 3.0
    assert changed(out.frames).any(axis=0).mean() > 0.5
    assert out.motion_mask is None
    if action == "camera_pan":
        # The background slides by the camera's shift: find it by matching the top band.
        expected = out.facts["camera_pan_px"][-1] - out.facts["camera_pan_px"][0]
        top0, top1 = first[: h // 8], last[: h // 8]
        errors = {dx: np.abs(top0[:, max(0, -dx):w - max(0, dx)] - top1[:, max(0, dx):w - max(0, -dx)]).mean()
                  for dx in range(-int(0.45 * w), int(0.45 * w) + 1)}
        assert abs(min(errors, key=errors.get) - expected) <= 2


# --------------------------------------------------------------------------- timing (ones, twos, threes)


@pytest.mark.parametrize("cadence", [2, 3])
def test_character_drawings_are_held_for_the_cadence(cadence):
    """On twos (threes) frame i shows the drawing of frame 2·(i // 2) (3·(i // 3)) of the same clip on ones."""
    ones = clip("Mio", "waving", "2d", "sunny_hills", num_frames=13)
    held = clip("Mio", "waving", "2d", "sunny_hills", num_frames=13, cadence=cadence)
    for i in range(13):
        start = cadence * (i // cadence)
        assert np.array_equal(held.frames[i], ones.frames[start]), i
        assert held.facts["keypoints"][i] == ones.facts["keypoints"][start]
    moving = changed(held.frames)
    assert (moving & held.motion_mask[:-1]).sum() >= 0.95 * moving.sum()  # the mask still holds the motion
    assert held.facts["cadence"] == held.facts["frame_cadence"] == cadence
    assert ones.facts["cadence"] == ones.facts["frame_cadence"] == 1
    assert changed(held.frames).any(axis=(1, 2)).sum() == len(range(cadence, 13, cadence))  # one change per drawing


@pytest.mark.parametrize("action", CAMERA_ACTIONS)
def test_camera_moves_stay_on_ones_over_held_drawings(action):
    out = clip("Ren", action, "2d", "forest", num_frames=9, cadence=2)
    assert changed(out.frames).any(axis=(1, 2)).all()  # the camera moves every frame
    assert out.facts["cadence"] == 2 and out.facts["frame_cadence"] == 1
    assert out.facts["camera_zoom"] == clip("Ren", action, "2d", "forest", num_frames=9).facts["camera_zoom"]


# --------------------------------------------------------------------------- motion mask


SCENE = {"2d": "sunny_hills", "3d": "night_sky"}  # shared with the amplitude test's renders


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("character", ["Aki", "Mio"])
@pytest.mark.parametrize("action", CHARACTER_ACTIONS)
def test_motion_mask_contains_the_motion(action, character, style):
    out = clip(character, action, style, SCENE[style])
    mask = out.motion_mask
    assert mask.shape == out.frames.shape[:3] and mask.dtype == bool
    moving = changed(out.frames)
    assert moving.sum() > 0, "the action produced no visible motion"
    for t in range(len(moving)):
        n = int(moving[t].sum())
        if n:
            inside = int((moving[t] & mask[t]).sum())
            assert inside / n >= 0.95, (t, inside, n)
    # The mask is a region, not the whole frame.
    assert mask.mean() < 0.4
    if action == "waving":
        assert mask.mean() < 0.5 * clip(character, "idle", style, SCENE[style]).motion_mask.mean()


def test_motion_mask_is_tight_for_small_motions():
    """Talking moves only the head; waving only the arm: their masks avoid the legs."""
    for action in ("talking", "waving"):
        out = clip("Nana", action, "2d", "sunny_hills")
        feet = np.array(out.facts["keypoints"])[:, 3:5]  # (T, 2, 2)
        for t in range(len(out.frames)):
            for x, y in feet[t]:
                assert not out.motion_mask[t, int(round(y)), int(round(x))], (action, t)


# --------------------------------------------------------------------------- facts


@pytest.mark.parametrize("character,style,background", [("Aki", "2d", "sunny_hills"), ("Mio", "3d", "night_sky")])
def test_motion_amplitude_ordering(character, style, background):
    amp = {a: clip(character, a, style, background).facts["motion_amplitude"] for a in ACTIONS}
    assert amp["idle"] < amp["talking"] < amp["waving"], amp
    assert amp["idle"] < amp["walking"] < amp["running"], amp
    assert amp["jumping"] > 3 * amp["idle"], amp
    assert amp["turning"] > 3 * amp["idle"], amp
    assert amp["camera_zoom"] > 3 * amp["idle"], amp
    assert amp["camera_pan"] > 3 * amp["idle"], amp
    for a in CHARACTER_ACTIONS:
        facts = clip(character, a, style, background).facts
        assert facts["character_motion"] == pytest.approx(facts["motion_amplitude"])
    for a in CAMERA_ACTIONS:
        facts = clip(character, a, style, background).facts
        assert facts["character_motion"] < facts["motion_amplitude"] / 3


def test_travel_distances_match_the_actions():
    motion = load_yaml("smoke.yaml")["motion"]
    w, h = 192, 128
    for action, key in (("walking", "walk_distance"), ("running", "run_distance")):
        head = np.array(clip("Aki", action, "2d", "sunny_hills").facts["keypoints"])[:, 0]
        travel = abs(head[-1, 0] - head[0, 0])
        assert travel == pytest.approx(motion[key] * w, rel=0.1), action
    head = np.array(clip("Aki", "jumping", "2d", "sunny_hills").facts["keypoints"])[:, 0]
    rise = head[0, 1] - head[:, 1].min()
    assert rise == pytest.approx(motion["jump_height"] * h, rel=0.15)
    pan = clip("Aki", "camera_pan", "2d", "sunny_hills").facts
    shift = abs(pan["keypoints"][-1][0][0] - pan["keypoints"][0][0][0])
    assert shift == pytest.approx(motion["pan_distance"] * w, rel=0.1)
    zoom = clip("Aki", "camera_zoom", "2d", "sunny_hills").facts["camera_zoom"]
    assert zoom[0] == 1.0 and zoom[-1] == pytest.approx(motion["zoom_end"]) and np.all(np.diff(zoom) >= 0)


def test_facts_are_json_and_complete():
    required = {"character", "action", "style", "background", "camera_motion", "motion_amplitude",
                "character_motion", "moving_parts", "num_frames", "fps", "width", "height", "seed", "identity",
                "cadence", "frame_cadence"}
    for action in ACTIONS:
        out = clip("Yuki", action, "3d", "dusk_city", num_frames=9, seed=2)
        facts = out.facts
        assert required <= set(facts)
        assert json.loads(json.dumps(facts)) == facts  # plain python types only
        assert facts["character"] == "Yuki" and facts["action"] == action
        assert facts["style"] == "3d" and facts["background"] == "dusk_city"
        assert (facts["num_frames"], facts["fps"], facts["seed"]) == (9, 16.0, 2)
        assert isinstance(facts["motion_amplitude"], float) and facts["motion_amplitude"] >= 0
        assert facts["moving_parts"] and all(isinstance(p, str) for p in facts["moving_parts"])
        identity = facts["identity"]
        assert (identity["hair_color"], identity["hair_style"], identity["eye_color"]) == ("silver", "long", "red")
        assert identity["outfit"] == "teal kimono"
        expected = {"camera_zoom": {"zoom_in"}, "camera_pan": {"pan_left", "pan_right"}}.get(action, {"static"})
        assert facts["camera_motion"] in expected
        assert len(facts["keypoints"]) == 9 and len(facts["keypoints"][0]) == len(KEYPOINTS)
    assert clip("Aki", "waving", "2d", "forest", num_frames=9).facts["moving_parts"] == ["right_arm"]


def test_pan_direction_follows_the_seed():
    seen = {}
    for seed in range(8):
        facts = clip("Aki", "camera_pan", "2d", "forest", num_frames=5, seed=seed).facts
        x = [k[0][0] for k in facts["keypoints"]]
        # Panning right moves the content (and the character) left in the frame.
        assert (x[-1] < x[0]) == (facts["camera_motion"] == "pan_right")
        assert ("pans to the right" in facts["prompt"]) == (facts["camera_motion"] == "pan_right")
        seen[facts["camera_motion"]] = seed
    assert set(seen) == {"pan_left", "pan_right"}


def test_idle_blinks_and_talking_opens_the_mouth():
    idle = clip("Mio", "idle", "2d", "forest").facts
    assert 1 <= len(idle["blink_frames"]) <= 6
    mouth = np.array(clip("Mio", "talking", "2d", "forest").facts["mouth_open"])
    opened = mouth > 0.3
    assert np.count_nonzero(opened[1:] & ~opened[:-1]) >= 4  # opens several times


def test_turning_shows_the_back_of_the_head():
    c = next(ch for ch in characters() if ch.name == "Aki")
    out = clip("Aki", "turning", "2d", "sunny_hills")
    hair = np.array(c.hair_color, np.uint8)
    skin = np.array(c.skin_color, np.uint8)
    x0, y0, x1, y1 = out.facts["character_boxes"][0]
    head = (slice(y0, y0 + (y1 - y0) // 3), slice(x0, x1))  # hair and face, above the neck

    def share(frame: np.ndarray, colour: np.ndarray) -> int:
        return int(np.all(frame[head] == colour, axis=-1).sum())

    front, back = out.frames[0], out.frames[len(out.frames) // 2]
    assert share(back, hair) > 1.3 * share(front, hair)
    assert share(back, skin) < 0.3 * share(front, skin)


# --------------------------------------------------------------------------- validation and prompt


@pytest.mark.parametrize("field,value", [
    ("character", "Nobody"), ("action", "dancing"), ("style", "4d"), ("background", "mars"),
    ("num_frames", 0), ("width", 31), ("height", 16), ("fps", 0.0), ("seed", -1), ("cadence", 0), ("cadence", 1.5),
])
def test_invalid_specs_name_the_field(field, value):
    kwargs = dict(character="Aki", action="idle", style="2d", background="sunny_hills")
    kwargs[field] = value
    spec = ClipSpec(**kwargs)
    with pytest.raises(ValueError, match=field):
        render_clip(spec)
    with pytest.raises(ValueError, match=field):
        describe_clip(spec)


ACTION_WORDS = {"idle": "standing", "talking": "talking", "waving": "waving", "walking": "walking",
                "running": "running", "jumping": "jumping", "turning": "turning", "camera_zoom": "zooms",
                "camera_pan": "pans"}


def test_describe_clip_mentions_identity_action_and_camera():
    assert set(ACTION_WORDS) == set(ACTIONS)
    for c, action in zip(itertools.cycle(characters()), ACTIONS * 2):
        for style in STYLES:
            spec = ClipSpec(c.name, action, style, backgrounds()[len(action) % len(backgrounds())])
            text = describe_clip(spec)
            assert text == describe_clip(spec)
            assert c.name in text and c.words["hair"] in text and c.words["eyes"] in text
            assert c.words["outfit"] in text
            assert ACTION_WORDS[action] in text
            assert ("2D" in text) == (style == "2d") and ("3D" in text) == (style == "3d")
            assert text.endswith(".") and text.count(".") == 1
            assert ("camera is still" in text) == (action not in CAMERA_ACTIONS)
    example = describe_clip(ClipSpec("Aki", "waving", "2d", "sunny_hills"))
    assert example.startswith("A flat-cel 2D anime clip of Aki, a girl with short spiky red hair, green eyes and a blue "
                              "sailor uniform, waving her right hand")

