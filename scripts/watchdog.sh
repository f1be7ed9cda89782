#!/usr/bin/env bash
# watchdog.sh SECONDS COMMAND...: runs COMMAND in its own process group; if it
# still runs after SECONDS, prints every process (with its kernel wait
# channel) and stops the whole group, so a hang fails with a report instead of
# silently eating CI's budget. Exits with COMMAND's status (143/137 if stopped).
set -uo pipefail
limit=$1
shift
setsid "$@" &
cmd=$!
# COMMAND has its own process group (so it can be stopped whole): pass Ctrl-C on.
trap 'kill -TERM -- "-$cmd" 2>/dev/null' INT TERM
(
  sleep "$limit" &
  trap 'kill $! 2>/dev/null; exit 0' TERM
  wait $!
  kill -0 "$cmd" 2>/dev/null || exit 0
  echo "watchdog: '$*' still running after $limit s; the processes:" >&2
  ps -eo pid,ppid,pgid,stat,etimes,wchan:24,args --forest | cut -c1-220 >&2
  kill -TERM -- "-$cmd" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$cmd" 2>/dev/null || exit 0; sleep 1; done
  kill -KILL -- "-$cmd" 2>/dev/null
) &
watchdog=$!
rc=0
wait "$cmd" || rc=$?
kill -TERM "$watchdog" 2>/dev/null
wait "$watchdog" 2>/dev/null
exit "$rc"
