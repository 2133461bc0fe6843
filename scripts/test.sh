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

# The dashboard's browser tests drive Debian's chromium through Playwright (in the dev
# extra); Playwright's own browser download is not used.
if [ ! -x "${FLATLAB_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "installing chromium for the browser tests (apt-get install chromium)…"
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq chromium >/dev/null
fi

ruff check .
ruff format --check .
mypy
python -m pytest -q -p no:cacheprovider "$@"
