#!/usr/bin/env bash
# Runs one fuzz target for SECONDS on a stable toolchain (RUSTC_BOOTSTRAP, no sanitizer) and
# prints libFuzzer's coverage (edges "cov" and features "ft") at the end of every minute, so
# that a plateau shows:
#
#   fuzz/run.sh TARGET SECONDS [LIBFUZZER ARGS...]     (e.g. fuzz/run.sh archive 600 -max_len=262144)
#
# Seed corpora first (python3 fuzz/seeds.py). The log is fuzz/artifacts/TARGET/run.log; a crash
# leaves its input in fuzz/artifacts/TARGET/ and the script exits non-zero.
set -uo pipefail
cd "$(dirname "$0")"
target=$1 seconds=$2
shift 2
mkdir -p "artifacts/$target" "corpus/$target"
log=artifacts/$target/run.log
start=$(date +%s)
RUSTC_BOOTSTRAP=1 nice -n "${NICE:-15}" cargo fuzz run -s none "$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "$@" 2>&1 |
    while IFS= read -r line; do printf '%d %s\n' $(( $(date +%s) - start )) "$line"; done >"$log"
status=${PIPESTATUS[0]}
# The last coverage line of each minute: minute, executions, cov, ft, corpus size.
echo "$target: minute  execs  cov  ft  corpus"
awk '$2 ~ /^#[0-9]+$/ && / cov: / {
        m = int($1 / 60) + 1
        for (i = 2; i <= NF; i++) { if ($i == "cov:") c = $(i+1); if ($i == "ft:") f = $(i+1); if ($i == "corp:") { split($(i+1), p, "/"); k = p[1] } }
        e = substr($2, 2); last[m] = sprintf("%s  %s  %s  %s  %s", m, e, c, f, k); if (m > top) top = m
    } END { for (m = 1; m <= top; m++) if (m in last) print "  " last[m] }' "$log"
grep -E 'panicked|SUMMARY|Test unit written' "$log" | head -5
exit "$status"
