# Two commands do all set-up: `make sweep` and `make test` create .venv and install into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed only when missing. Without a GPU the pinned CPU build is taken; override e.g.
#   make sweep TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)
STUDY ?= studies/default.yaml
N_TRIALS ?=
# default: one worker per visible GPU, 1 without a GPU
WORKERS ?=
# after the sweep, `make sweep` re-runs the top REPLICATE_TOP Pareto trials with REPLICATE_SEEDS other seeds, so the
# claims it prints are judged against the seed-to-seed noise (REPLICATE_SEEDS=0: no replicates)
REPLICATE_TOP ?= 2
REPLICATE_SEEDS ?= 2
SWEEP_ARGS = $(STUDY) $(if $(N_TRIALS),--n-trials $(N_TRIALS)) $(if $(WORKERS),--workers $(WORKERS))
PYTEST_ARGS ?=

.PHONY: install sweep test test-fast trial status dashboard clean

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install $(TORCH_SPEC)
	$(BIN)/pip install -e ".[test]"
	touch $@

sweep: install
	$(BIN)/sweeper sweep $(SWEEP_ARGS)
ifneq ($(REPLICATE_SEEDS),0)
	$(BIN)/sweeper replicate $(STUDY) --top $(REPLICATE_TOP) --seeds $(REPLICATE_SEEDS)
	@# the hand-off again, now with the seed spread (skipped when nothing changed), then the noise-aware analysis
	$(BIN)/sweeper sweep $(SWEEP_ARGS)
	$(BIN)/sweeper analyze $(STUDY)
endif

trial: install
	$(BIN)/sweeper trial configs/tiny.yaml

status: install
	$(BIN)/sweeper status $(STUDY)

dashboard: install
	$(BIN)/sweeper dashboard $(STUDY)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the fast tier: no training and no sweeper processes (under 2 minutes here)
test-fast: install
	$(BIN)/python -m pytest -m "not integration and not slow" $(PYTEST_ARGS)

clean:
	rm -rf runs .pytest_cache
