#!/usr/bin/env bash
# The whole test suite: installs, makes sure PostgreSQL and Redis answer, lints, runs pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  command -v pg_ctlcluster >/dev/null &&
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null &&
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
for _ in $(seq 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break
  sleep 1
done

ruff check .
ruff format --check .
mypy
python -m pytest -q -p no:cacheprovider "$@"
