"""Plugin registries: lazy references, entry points (anibench's own and a third party's)."""

from __future__ import annotations

import sys
import textwrap
import tomllib

import pytest

from anibench.errors import RegistryError
from anibench.generation import GENERATORS, Generator
from anibench.registry import Registry
from anibench.scoring import SCORERS, Scorer
from anibench.suites import SUITES

from conftest import REPO


def test_lazy_reference_imports_on_first_use(tmp_path, monkeypatch):
    (tmp_path / "anibench_lazy_probe.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry = Registry("thing", "anibench.tests-none")
    registry.register("probe", "anibench_lazy_probe:VALUE")
    assert "anibench_lazy_probe" not in sys.modules
    assert registry.get("probe") == 7
    assert "anibench_lazy_probe" in sys.modules


def test_conflicts_and_unknown_names_are_clear():
    registry: Registry = Registry("thing", "anibench.tests-none")
    registry.register("a", "json:loads")
    registry.register("a", "json:loads")  # same target again is fine
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("a", "json:dumps")
    registry.register("a", "json:dumps", replace=True)
    with pytest.raises(RegistryError, match="did you mean a"):
        registry.get("aa")
    registry.register("broken", "no_such_module_xyz:thing")
    with pytest.raises(RegistryError, match="cannot be imported"):
        registry.get("broken")


def test_decorator_registration():
    registry: Registry = Registry("thing", "anibench.tests-none")

    @registry("answer")
    def answer():
        return 42

    assert registry.get("answer")() == 42


def test_every_entry_point_in_pyproject_resolves_to_the_right_kind():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    groups = config["project"]["entry-points"]
    for group, registry, base in (
        ("anibench.scorers", SCORERS, Scorer),
        ("anibench.generators", GENERATORS, Generator),
        ("anibench.suites", SUITES, None),
    ):
        assert set(groups[group]) <= set(registry.names()), f"reinstall anibench: {group} entry points are stale"
        for name in groups[group]:
            plugin = registry.get(name)
            if base is not None:
                assert issubclass(plugin, base) and plugin.name == name
            else:
                assert callable(plugin)


def test_a_third_party_plugin_installed_as_a_distribution_is_found(tmp_path, monkeypatch):
    """A real distribution (dist-info + module) on sys.path extends the scorer registry."""
    (tmp_path / "anibench_brightness.py").write_text(textwrap.dedent('''
        from anibench.scoring import Scorer, FrameSampling

        class MeanBrightness(Scorer):
            """Mean pixel value / 255."""
            name = "mean_brightness"
            sampling = FrameSampling("all")
            min_frames = 1

            def compute(self, sample):
                return self.result(sample.video.frames.mean() / 255.0)
    '''))
    info = tmp_path / "anibench_brightness-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: anibench-brightness\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[anibench.scorers]\nmean_brightness = anibench_brightness:MeanBrightness\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry = Registry("scorer", "anibench.scorers")
    assert "mean_brightness" in registry.names()
    assert registry.get("mean_brightness").__module__ == "anibench_brightness"


def test_a_plugin_that_cannot_be_imported_is_skipped_with_its_reason_and_the_rest_runs():
    """"Every available scorer" (no --scorers) and a group skip a broken plugin instead of failing the run."""
    from anibench.engine import resolve_scorers
    from anibench.runspec import PluginSpec
    from anibench.scoring import SCORERS

    SCORERS.register("broken_metric", "anibench_no_such_module:Metric")
    try:
        scorers, skipped = resolve_scorers(None)
        assert "broken_metric" not in {s.name for s in scorers} and "temporal_flickering" in {s.name for s in scorers}
        assert "anibench_no_such_module" in skipped["broken_metric"]
        scorers, skipped = resolve_scorers([PluginSpec("vbench-i2v"), PluginSpec("temporal_flickering")])
        assert {s.name for s in scorers} == {"temporal_flickering"}  # no VBench weights in the test session
        assert len(skipped) == 10 and all(name.startswith("vbench.") for name in skipped)
        with pytest.raises(RegistryError, match="anibench_no_such_module"):  # named directly, it is an error
            resolve_scorers([PluginSpec("broken_metric")])
    finally:
        SCORERS.unregister("broken_metric")
