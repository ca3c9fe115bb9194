#!/bin/sh
# pixseek's container entrypoint: before a `pixseek` command, wait for the catalog database and
# bring its schema to the newest revision (`pixseek db upgrade`); then replace this shell with
# the command (exec), so that it receives `docker stop`'s SIGTERM itself.
#
#   DB_WAIT_TIMEOUT=60       seconds to wait for the database in PIXSEEK_DATABASE_URL to accept
#                            connections (none is waited for with the SQLite default)
#   DB_UPGRADE_ON_START=1    0 skips `pixseek db upgrade`
#   DB_UPGRADE_ATTEMPTS=3    tries of `pixseek db upgrade`, 2 s apart: a database that has just
#                            opened its port may still be starting, and two containers started
#                            together (api and indexer) race to create the first schema
#
# A command other than `pixseek ...` (`sh`, `python`) runs at once, without either step.
set -eu

log() {
    printf 'pixseek-entrypoint: %s\n' "$*" >&2
}

# Compose passes a variable that is unset in .env as an empty string, and pixseek would take ""
# as a value (an empty read token, say): unset every empty PIXSEEK_* variable instead.
for name in $(env | sed -n 's/^\(PIXSEEK_[A-Za-z0-9_]*\)=$/\1/p'); do
    eval "value=\${$name-}"
    if [ -z "$value" ]; then
        unset "$name"
    fi
done

# The preparation steps run as children in the background while this shell waits, so that a
# SIGTERM or SIGINT (docker stop, Ctrl+C) ends them at once instead of after they finish: as
# PID 1 without a handler, this shell would ignore both.
child=""
stop() {
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    log "stopped by SIG$1 before the command started"
    exit "$2"
}
trap 'stop TERM 143' TERM
trap 'stop INT 130' INT

run_step() {
    "$@" &
    child=$!
    status=0
    wait "$child" || status=$?
    child=""
    return "$status"
}

if [ "$#" -eq 0 ]; then
    log "no command given; e.g. pixseek serve --host 0.0.0.0 --port 8000"
    exit 64
fi

if [ "$1" = pixseek ]; then
    here=$(dirname "$0")
    run_step python "$here/wait_for_database.py" "${DB_WAIT_TIMEOUT:-60}" || exit $?

    if [ "${DB_UPGRADE_ON_START:-1}" != 0 ]; then
        attempts=${DB_UPGRADE_ATTEMPTS:-3}
        attempt=1
        until run_step pixseek db upgrade; do
            status=$?
            if [ "$attempt" -ge "$attempts" ]; then
                log "'pixseek db upgrade' failed $attempt time(s) (exit status $status); the error is above. The command '$*' did not start."
                exit "$status"
            fi
            log "'pixseek db upgrade' failed (exit status $status); trying again in 2 s ($attempt of $attempts)"
            attempt=$((attempt + 1))
            run_step sleep 2
        done
    fi
fi

trap - TERM INT
exec "$@"
