# Two commands on a fresh Linux machine with Python 3.11:
#   make demo   # installs, writes a sample clip and runs `vsr enhance --scale 4` on it (trained models, face mode)
#   make test   # installs and runs the test suite (what CI runs)
#
# Torch: this machine and CI install the CPU build (a bare `torch` would pull several GB of CUDA
# packages). On a GPU machine: make install TORCH_SPEC=torch  (or the CUDA wheel of your choice).

PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,face
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

$(BIN)/vsr: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

install: $(BIN)/vsr

demo: install
	mkdir -p out
	$(BIN)/vsr sample out/sample.mp4 --size 320x240 --frames 24
	$(BIN)/vsr enhance out/sample.mp4 out/sample_x4.mp4 --scale 4 --overwrite --report out/sample_x4.json
	$(BIN)/vsr probe out/sample_x4.mp4

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/vsr sample out/bench.mp4 --size 640x360 --frames 120
	$(BIN)/python benchmarks/enhance_throughput.py out/bench.mp4 --scale 2 --json

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache
