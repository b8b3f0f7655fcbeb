#!/usr/bin/env bash
# Checks the Prometheus alert rules with promtool (Debian's prometheus package, group
# `alerts` of scripts/system-packages.lock, installed here if missing): the rules parse
# (`check rules`) and every rule fires and stays quiet where its unit tests say
# (`test rules` on deploy/prometheus/alerts_test.yml). Exit status non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/apt_pinned.sh
apt_install_pinned alerts

promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
echo "alerts: $(grep -c '^ *- alert:' deploy/prometheus/alerts.yml) rules checked and unit-tested ($(promtool --version 2>&1 | head -1))"
