#!/bin/sh
# A private Redis Cluster on loopback for trying `--redis-url redis+cluster://…`: 3 masters +
# 3 replicas on free ports (services/common/redis_cluster.py). Prints the URL; Ctrl-C stops it
# and removes its folders.
set -eu
cd "$(dirname "$0")/.."
exec .venv/bin/python -m services.common.redis_cluster "$@"
