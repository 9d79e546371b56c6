#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for SECONDS each, with cargo-fuzz on nightly:
#
#   scripts/fuzz.sh 600                   # all four targets, 10 minutes each
#   scripts/fuzz.sh 60 script strace      # two of them, a minute each
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`. Each target's
# corpus (fuzz/corpus/TARGET, not committed) starts from the kept seeds (fuzz/seeds/TARGET)
# and, for scripts and traces, every shipped script (examples/, tests/scripts/) and trace
# (traces/*/trace). A run is bounded as the commands promise to be: 10 s per input
# (-timeout) and 1 GiB of memory (-rss_limit_mb); a crash, a timeout or an out-of-memory
# input is saved under fuzz/artifacts/TARGET and ends the run with a non-zero status.
# The last lines of each target's log (fuzz/logs/TARGET.log) give executions and corpus
# size (FUZZING.md records a run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(script strace config differential)

for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" fuzz/logs
    cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
    case $t in
        script)
            for f in examples/*.sm tests/scripts/*.sm; do
                cp -n "$f" "fuzz/corpus/script/$(basename "$(dirname "$f")")-$(basename "$f")"
            done
            ;;
        strace)
            for f in traces/*/trace; do
                cp -n "$f" "fuzz/corpus/strace/$(basename "$(dirname "$f")").trace"
            done
            ;;
    esac
done

status=0
for t in "${targets[@]}"; do
    echo "== $t: $seconds s" >&2
    if ! (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1) \
        >"fuzz/logs/$t.log" 2>&1; then
        echo "$t: FAILED (fuzz/logs/$t.log, fuzz/artifacts/$t/)" >&2
        status=1
    fi
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+.*DONE)' \
        "fuzz/logs/$t.log" >&2 || true
    echo "corpus: $(find "fuzz/corpus/$t" -type f | wc -l) files" >&2
done
exit $status
