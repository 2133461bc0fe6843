#!/usr/bin/env bash
# The demo on a fresh machine: install, start the embedded stack, run SAM vs SGD on digits, stop.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

port="${FLATLAB_DEMO_PORT:-8000}"
trap 'flatlab down' EXIT
flatlab up --detach --port "$port" --concurrency 2
flatlab demo --url "http://127.0.0.1:$port" "$@"
