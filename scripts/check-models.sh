#!/usr/bin/env bash
# Runs every concurrency model (softmm/tests/models.rs) under loom and shuttle, then each
# model again with its mutant (a cfg that removes one protocol step from the library),
# and prints `model | checker | passes | mutant caught`. Exit status 0 only when every
# model passes and every mutant is caught.
#
# Usage: scripts/check-models.sh [loom|shuttle]...   (default: both)
# Needs only stable Rust; builds go to target/models-* (first run: a few minutes).
set -uo pipefail
cd "$(dirname "$0")/.."

# model test name : mutant that must break it
MODELS=(
  "rcu_synchronize_waits_for_reader:rcu_no_grace_period"
  "table_free_waits_for_walker:early_table_free"
  "racing_faults_install_one_frame:fault_skip_pte_recheck"
  "cow_copy_holds_its_source:cow_copy_without_ref"
  "vma_read_lock_excludes_the_epoch_writer:vma_lock_skip_seq"
  "vma_read_lock_excludes_the_epoch_writer:vma_lock_seen_inclusive"
  "write_unlock_ends_the_epoch:vma_lock_no_epoch_end"
  "fault_under_vma_lock_vs_munmap:munmap_skip_vma_lock"
  "tree_readers_see_old_or_new:tree_early_free"
  "tlb_flush_waits_for_the_access_window:tlb_flush_no_wait"
  "zap_frees_only_after_the_tlb_flush:tlb_free_before_flush"
  "tlb_fill_rechecks_its_entry:tlb_fill_no_recheck"
  "table_free_waits_for_tlb_walkers:tlb_table_free_no_wait"
  "zap_drops_the_reference_only_after_clearing:zap_put_before_clear"
)
checkers=("$@")
[ ${#checkers[@]} -eq 0 ] && checkers=(loom shuttle)

flags_for() {
  case "$1" in
    loom) echo "--cfg loom --cfg crossbeam_loom" ;;
    shuttle) echo "--cfg shuttle" ;;
    *) echo "unknown checker $1" >&2; exit 2 ;;
  esac
}

# run CHECKER MUTANT(or -) TEST -> prints pass|fail|error
run() {
  local checker=$1 mutant=$2 test=$3 flags dir log
  flags=$(flags_for "$checker")
  dir=target/models-$checker
  if [ "$mutant" != - ]; then
    flags="$flags --cfg mutant=\"$mutant\""
    dir=target/models-$checker-$mutant
  fi
  log=$(mktemp)
  RUSTFLAGS="$flags" cargo test --release -q -p softmm --test models --target-dir "$dir" \
    -- --exact "$test" >"$log" 2>&1
  local rc=$?
  # (rc is used below)
  if grep -q "test result: ok. 1 passed" "$log"; then echo pass
  # Caught: the model's test failed on a panic in our code (loom then aborts the process
  # with a second panic in its scheduler, so there may be no test-result line).
  elif [ $rc -ne 0 ] && grep -q "panicked at softmm/" "$log"; then echo fail
  else echo "error"; sed 's/^/    /' "$log" | tail -20 >&2
  fi
  rm -f "$log"
  return $rc
}

status=0
printf '%-44s | %-8s | %-6s | %s\n' model checker passes "mutant caught"
printf '%-44s-+-%-8s-+-%-6s-+-%s\n' "--------------------------------------------" "--------" "------" "-------------"
for checker in "${checkers[@]}"; do
  for entry in "${MODELS[@]}"; do
    test=${entry%%:*}
    mutant=${entry##*:}
    good=$(run "$checker" - "$test")
    bad=$(run "$checker" "$mutant" "$test")
    passes=no; [ "$good" = pass ] && passes=yes
    caught="no ($mutant)"; [ "$bad" = fail ] && caught="yes ($mutant)"
    [ "$passes" = yes ] && [ "${caught%% *}" = yes ] || status=1
    printf '%-44s | %-8s | %-6s | %s\n' "$test" "$checker" "$passes" "$caught"
  done
done
exit $status
