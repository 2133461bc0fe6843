#!/usr/bin/env bash
# The demo on a fresh machine: install, start the embedded stack, run SAM vs SGD on digits, stop.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

port="${FLATLAB_DEMO_PORT:-8000}"
trap 'say "stopping the stack"; flatlab down' EXIT
say "starting the embedded stack (API on port $port and a worker; SQLite under ./.flatlab)…"
flatlab up --detach --port "$port" --concurrency 2
# `flatlab demo` talks to the API that `up` recorded under .flatlab/run/.
FLATLAB_URL= flatlab demo "$@"
