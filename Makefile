# The README's two quick-start commands. Each creates (or reuses) the virtual environment in .venv/
# and installs what it needs, with pip's progress shown (the first install takes minutes: torch's
# PyPI wheel brings its CUDA libraries). Each install is redone only when pyproject.toml changes;
# the two have their own stamps, so `make demo` then `make test` still installs the test extras.
PYTHON ?= python3
VENV := .venv
DEMO_STAMP := $(VENV)/.zsbench-demo-installed
TEST_STAMP := $(VENV)/.zsbench-test-installed

.PHONY: test demo test-fp8

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip

# The demo runs PyTorch and ONNX Runtime: no TensorRT, no test tools.
$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[onnx]'
	touch $@

# The tests also build TensorRT-RTX engines and compare against transformers' tokenizer. The resolved
# versions are printed, so that a CI log shows which releases the tests ran on (dependency drift).
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[onnx,trt-rtx,dev]'
	@echo "Resolved versions (pip freeze):"
	$(VENV)/bin/python -m pip freeze --all
	touch $@

test: $(TEST_STAMP)
	$(VENV)/bin/python -m pytest -q

demo: $(DEMO_STAMP)
	$(VENV)/bin/zsbench demo

# NVIDIA Model Optimizer (the fp8 extra: FP8/INT8 Q/DQ graphs for TensorRT engines) pins onnx and onnxruntime-gpu
# versions that clash with the onnx extra, so its tests run in an environment of their own (not part of `make test`,
# where they skip with that reason).
FP8_VENV := .venv-fp8
$(FP8_VENV)/.zsbench-fp8-installed: pyproject.toml
	$(PYTHON) -m venv $(FP8_VENV)
	$(FP8_VENV)/bin/python -m pip install --upgrade pip
	$(FP8_VENV)/bin/python -m pip install -e '.[fp8,trt-rtx,dev]'
	touch $@

test-fp8: $(FP8_VENV)/.zsbench-fp8-installed
	$(FP8_VENV)/bin/python -m pytest -q tests/export/test_modelopt_qdq.py
