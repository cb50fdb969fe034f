#!/usr/bin/env bash
# Fuzzes recsys' parsers with cargo-fuzz (libFuzzer): each target for a
# bounded time. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# (default 180 s, every target). A crash stops that target and leaves its
# input in fuzz/artifacts/<target>/; once fixed, copy the input to
# fuzz/regressions/<target>/ so `cargo test` replays it.
#
# Stable Rust is enough: RUSTC_BOOTSTRAP=1 lets it accept the -Z flags that
# cargo-fuzz passes. No sanitizer by default (the code under test is safe
# Rust, and ASan would need a nightly toolchain's runtime); set
# FUZZ_SANITIZER=address to try one.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-180}
shift || true
export RUSTC_BOOTSTRAP=1
# Scratch files of the row targets go to memory when it can.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked

# Release code with debug assertions and overflow checks; 16 codegen units
# keep the build of polars affordable (cargo-fuzz defaults to 1).
build=(-O -a -s "${FUZZ_SANITIZER:-none}" --codegen-units 16)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build "${build[@]}"

summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  echo "== $t: ${secs}s"
  log="$(mktemp)"
  # The seeds start the corpus; new inputs go to corpus/$t. (Past findings
  # are replayed by `cargo test`: polars aborts on one of them in this
  # debug-assertion build, so they stay out of the corpus.)
  set +e
  cargo fuzz run "${build[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -max_len=4096 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 2>&1 | tee "$log" | grep -E '^#[0-9]+ +(INITED|DONE)|^==|panicked|Test unit written|stat::number_of_executed_units'
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || failed=1
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  summary+=("$t: ${secs}s, ${runs} runs, exit ${rc}")
  rm -f "$log"
done
printf '%s\n' "== summary" "${summary[@]}"
exit "$failed"
