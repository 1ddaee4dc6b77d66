# The README's two quick-start commands. Each creates (or reuses) the virtual environment in .venv/
# and installs what it needs, with pip's progress shown (the first install takes minutes: torch's
# PyPI wheel brings its CUDA libraries). Each install is redone only when pyproject.toml changes;
# the two have their own stamps, so `make demo` then `make test` still installs the test extras.
PYTHON ?= python3
VENV := .venv
DEMO_STAMP := $(VENV)/.zsbench-demo-installed
TEST_STAMP := $(VENV)/.zsbench-test-installed

.PHONY: test demo

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip

# The demo runs PyTorch and ONNX Runtime: no TensorRT, no test tools.
$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[onnx]'
	touch $@

# The tests also build TensorRT-RTX engines, make FP8/INT8 Q/DQ graphs with NVIDIA Model Optimizer (the fp8 extra)
# and compare against transformers' tokenizer. The resolved
# versions are printed, so that a CI log shows which releases the tests ran on (dependency drift).
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[onnx,trt-rtx,fp8,dev]'
	@echo "Resolved versions (pip freeze):"
	$(VENV)/bin/python -m pip freeze --all
	touch $@

test: $(TEST_STAMP)
	$(VENV)/bin/python -m pytest -q

demo: $(DEMO_STAMP)
	$(VENV)/bin/zsbench demo

