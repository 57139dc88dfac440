# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint typecheck rules-test bench fuzz proto proto-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e clients/python
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/strata serve --demo --rest gunicorn

test: $(STAMP) lint typecheck rules-test proto-check
	$(BIN)/pytest -n 2 --dist loadfile tests

rules-test: $(STAMP)
	$(BIN)/strata rules test rules/

lint: $(STAMP)
	$(BIN)/ruff check service tests bench clients
	$(BIN)/ruff format --check service tests bench clients

typecheck: $(STAMP)
	$(BIN)/mypy

# The preview bench loads 1,000,000 users into a throwaway Postgres (scripts/pg_throwaway.sh),
# or into STRATA_BENCH_DATABASE_URL's database (reused when loaded): about six minutes.
bench: $(STAMP)
	$(BIN)/python bench/engine_bench.py
	$(BIN)/python bench/service_bench.py --chart docs/service-bench.png
	$(BIN)/python bench/preview_bench.py

# The hostile-rule fuzzers, far longer than in `make test` (which runs 60 examples of each).
fuzz: $(STAMP)
	STRATA_FUZZ_EXAMPLES=$${STRATA_FUZZ_EXAMPLES:-3000} $(BIN)/pytest -n 2 tests/hostile/test_rules_fuzz.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

proto: $(STAMP)
	scripts/gen_proto.sh

proto-check: $(STAMP)
	scripts/check_proto_drift.sh
