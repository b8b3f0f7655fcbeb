# The README's two commands are `make demo` and `make test`; both install what they need.
.PHONY: setup demo test bench codegen lint

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/python -m services.demo

test:
	./scripts/test.sh

bench: setup
	.venv/bin/python -m bench.embedder_bench

codegen:
	./scripts/codegen.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
