#!/usr/bin/env bash
# Runs, in one shell and in order, every command that scripts/run.sh printed (one per line on
# stdin, as printed: comments and all), the way a reader would: a `--watch` is stopped after a
# while (Ctrl-C), a command that reads state is run again until it answers (a cluster that was
# just applied has no certificates yet), and after the first watch the reader waits for what it
# says to watch for (demo Running). Exits non-zero naming the first command that never worked.
set -u
set -a  # what a command assigns (TOKEN=...) is there for the next, in this shell or a child
out=$(mktemp)
trap 'rm -f "$out"' EXIT
n=0
watched=no
while IFS= read -r line; do
  command=${line%%  #*}
  command=${command#"${command%%[![:space:]]*}"}
  command=${command%"${command##*[![:space:]]}"}
  [ -z "$command" ] && continue
  n=$((n + 1))
  echo "### $n: $command"
  case "$command" in
    *--watch*)
      timeout 20 bash -c "$command" >"$out" 2>&1
      rc=$?
      head -c 3000 "$out"
      if [ "$rc" -ne 124 ] || [ ! -s "$out" ]; then echo "FAILED (exit $rc, a watch ends only when stopped): $command"; exit 1; fi
      if [ "$watched" = no ]; then
        watched=yes
        for _ in $(seq 120); do
          [ "$(kubectl get etcd demo -o jsonpath='{.status.phase}')" = Running ] && break
          sleep 1
        done
        [ "$(kubectl get etcd demo -o jsonpath='{.status.phase}')" = Running ] || { echo "FAILED: demo never Running"; exit 1; }
      fi
      continue ;;
  esac
  # Exports, assignments and redirections print nothing and change this shell: they run in it.
  # Everything else answers with something, within 10 minutes (a scale is followed to its end).
  quiet=no
  case "$command" in export\ *|[A-Z_]*=*|*\>*) quiet=yes ;; esac
  ok=no
  for _ in $(seq 60); do
    if [ "$quiet" = yes ]; then
      eval "$command" >"$out" 2>&1 && { ok=yes; break; }
    elif timeout 600 bash -c "$command" >"$out" 2>&1 && [ -s "$out" ]; then
      ok=yes; break
    fi
    sleep 3
  done
  head -c 3000 "$out"; echo
  if [ "$ok" != yes ]; then echo "FAILED 60 times: $command"; exit 1; fi
done
echo "all $n commands worked"
