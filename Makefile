# anibench — the two commands of the README, and a benchmark.
#   make demo   set up .venv, build the smoke suite, run the baselines, score, print the table
#   make test   set up .venv with test tools and the neural extra (CPU torch), run the test suite
#   make bench  decode / scorer / store timings, report generation at benchmark scale, the model-ready core, VBench-I2V,
#               AnimeReward's six heads (shared vs alone), the reward server against the in-process call,
#               the AniSora generators (tiny pipelines: seconds per clip, peak memory)

VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt scripts/setup.sh
	scripts/setup.sh dev
	touch $@

demo: setup
	$(VENV)/bin/anibench run --out runs/smoke

test: setup
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/python benchmarks/bench_scorers.py
	$(VENV)/bin/python benchmarks/bench_report.py
	$(VENV)/bin/python benchmarks/bench_core.py
	$(VENV)/bin/python benchmarks/bench_vbench_i2v.py --section dimensions together
	$(VENV)/bin/python benchmarks/bench_anime_reward.py
	$(VENV)/bin/python benchmarks/bench_reward_service.py
	$(VENV)/bin/python benchmarks/bench_generators.py

clean:
	rm -rf $(VENV) runs .pytest_cache
