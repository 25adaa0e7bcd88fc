# Two commands do all setup on a fresh machine with Python 3.10+ and make:
#   make evaluate   the main job on the shipped demo data
#   make test       the test suite
# uv is bootstrapped into .tools/ when it is not on PATH; dependencies come from uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
RUN := $(UV) run --frozen

.PHONY: evaluate test lint demo-data demo-weights

evaluate: .venv/.synced
	$(RUN) evaluate-pipeline --preset demo --out runs/demo

test: .venv/.synced
	$(RUN) pytest

lint: .venv/.synced
	$(RUN) ruff check .

# Regenerate the shipped demo sample (deterministic: the same bytes every time).
demo-data: .venv/.synced
	rm -rf data/demo && $(RUN) annotate demo --n 200 --seed 0 --out data/demo

# Remake the detector weights the smoke preset and the tests fine-tune (stage1_detect/demo_weights.py).
demo-weights: .venv/.synced
	$(RUN) python -m stage1_detect.demo_weights

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv==$(UV_VERSION)

# --reinstall-package: a .venv made before the lock kept one OpenCV holds both builds in one
# cv2 folder; removing the other one deletes files the headless build needs, so write it again.
.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --reinstall-package opencv-python-headless
	touch $@
