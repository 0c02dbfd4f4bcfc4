# Two commands on a fresh Linux machine with Python 3.11:
#   make demo   # installs, writes a sample clip and runs `vsr enhance --scale 4` on it (trained models, face mode)
#   make test   # installs and runs the test suite (what CI runs)
#
# Torch: this machine and CI install the CPU build (a bare `torch` would pull several GB of CUDA
# packages). On a GPU machine: make install TORCH_SPEC=torch  (or the CUDA wheel of your choice).

PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,face,ray
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean zoo-install zoo-test

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
	rm -rf $(VENV) $(ZOO_VENV) out build *.egg-info .pytest_cache

# The zoo tests (third-party models through spandrel) need torchvision, which has no build matching the CPU
# torch above; they run in a second venv with PyPI's torch + torchvision (a CUDA build that also runs on
# the CPU, about 5.5 GB).  The main venv and its suite stay on the CPU build.
ZOO_VENV ?= .venv-zoo
ZOO_TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

$(ZOO_VENV)/bin/vsr: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ZOO_VENV)/bin/python -m pip install --quiet $(ZOO_TORCH_SPEC)
	$(ZOO_VENV)/bin/python -m pip install --quiet -e ".[$(EXTRAS),zoo]"
	@touch $@

zoo-install: $(ZOO_VENV)/bin/vsr

zoo-test: zoo-install
	VSR_REQUIRE_ZOO=1 $(ZOO_VENV)/bin/python -m pytest -q tests/test_zoo.py tests/test_model_loading.py
