# The README's two commands are `make demo` and `make test`; both install what they need.
.PHONY: setup demo test bench codegen lint lock

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

# The one way to change pinned dependencies: `make lock` after editing pyproject.toml,
# `make lock UPGRADE=1` to move every pin forward. See README "Dependencies".
lock:
	UPGRADE=$(UPGRADE) ./scripts/lock.sh
