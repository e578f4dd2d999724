#!/usr/bin/env bash
# Fails when any process whose ORPHAN_CHECK_RUN starts with the given prefix is alive,
# or when an orphan-check cgroup is left behind. Run after a test suite that was started
# with ORPHAN_CHECK_RUN=<prefix> in its environment.
set -u
prefix=${1:?usage: no-leftovers.sh PREFIX}
left=0
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$$" ] && continue
  if { tr "\0" "\n" < "$d/environ"; } 2>/dev/null | grep -q "^ORPHAN_CHECK_RUN=${prefix}"; then
    echo "left running: pid $pid: $(tr '\0' ' ' < "$d/cmdline" 2>/dev/null | cut -c1-160)"
    left=1
  fi
done
root=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
if [ -n "$root" ]; then
  own=$(sed -n 's/^0:://p' /proc/self/cgroup)
  for cg in "$root$own"/orphan-check-*; do
    [ -d "$cg" ] || continue
    echo "left behind: cgroup $cg"
    left=1
  done
fi
if [ "$left" = 0 ]; then
  echo "no leftovers for ORPHAN_CHECK_RUN=${prefix}*"
fi
exit "$left"
