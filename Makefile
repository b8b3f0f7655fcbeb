# The README's two commands are `make demo` and `make test`; both install what they need.
.PHONY: setup demo test bench soak codegen lint lock

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/python -m services.demo

test:
	./scripts/test.sh

bench: setup
	.venv/bin/python -m bench.embedder_bench

# By hand, not in CI: 10 min of mixed load with Redis restarted twice (bench/README.md "Soak").
soak: setup
	nice -n 10 .venv/bin/python -m bench.soak --check

codegen:
	./scripts/codegen.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# The one way to change pinned dependencies: `make lock` after editing pyproject.toml,
# `make lock UPGRADE=1` to move every pin forward. See README "Dependencies".
lock:
	UPGRADE=$(UPGRADE) ./scripts/lock.sh
