# Quick start: `make demo`, then `make test`. Both create .venv and install everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint goldens bench clean

$(STAMP): pyproject.toml digest/__init__.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	env -u OPENAI_API_KEY -u OPENAI_BASE_URL $(BIN)/digest compose example --offline

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

lint: $(STAMP)
	$(BIN)/ruff check digest tests benchmarks
	$(BIN)/mypy digest

# Regenerate the golden files in tests/golden/ after an intended change of output.
goldens: $(STAMP)
	DIGEST_UPDATE_GOLDENS=1 $(BIN)/python -m pytest -q tests/test_golden.py

bench: $(STAMP)
	$(BIN)/python benchmarks/fetch.py
	$(BIN)/python benchmarks/compose.py
	$(BIN)/python benchmarks/big_issue.py
	$(BIN)/python benchmarks/render.py
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/long_article.py
	$(BIN)/python benchmarks/triage.py

clean:
	rm -rf $(VENV) .digest issues/example/{draft.md,draft.md.bak,issue.md,email.html,email.txt,report.json,state.json}
