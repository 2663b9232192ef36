#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target in fuzz/ once and runs each for a few seconds
# from its seeds (fuzz/seeds/<target>) and whatever corpus earlier runs left (fuzz/corpus,
# git-ignored). Exits non-zero if any target crashes, panics, hangs or runs out of memory; the
# input that did it is in fuzz/artifacts/<target>/ (see fuzz/README.md to reproduce it).
#
# usage: bash scripts/fuzz-smoke.sh [target ...]      (default: every target)
#   FUZZ_SMOKE_SECONDS   seconds per target (default 15)
#   FUZZ_SMOKE_JOBS      targets run at once (default: the number of cores, at most 4)
#
# Needs cargo-fuzz (scripts/setup.sh installs it) and a nightly
# toolchain for libFuzzer's instrumentation flags; without one, the default toolchain is used
# with RUSTC_BOOTSTRAP=1. Targets are built with debug assertions (so integer overflow panics)
# and without a sanitizer: the fuzzed crates have no unsafe code, and ASan would halve the runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${FUZZ_SMOKE_SECONDS:-15}
jobs=${FUZZ_SMOKE_JOBS:-$(nproc 2>/dev/null || echo 2)}
if [ "$jobs" -gt 4 ]; then jobs=4; fi
if [ "$jobs" -lt 1 ]; then jobs=1; fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz not found; bash scripts/setup.sh installs it" >&2
    exit 1
fi

cargo_fuzz=(cargo fuzz)
if command -v rustup >/dev/null 2>&1 && rustup run nightly rustc --version >/dev/null 2>&1; then
    cargo_fuzz=(cargo +nightly fuzz)
else
    echo "fuzz-smoke: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
fi
flags=(--debug-assertions --sanitizer none)

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && "${cargo_fuzz[@]}" list)
fi

start=$(date +%s)
echo "fuzz-smoke: building ${#targets[@]} targets" >&2
(cd fuzz && "${cargo_fuzz[@]}" build "${flags[@]}")
built=$(date +%s)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# run TARGET: runs one target for $seconds, logging to $logs/TARGET.log; writes its exit status.
run() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    local dirs=("corpus/$t")
    if [ -d "fuzz/seeds/$t" ]; then dirs+=("seeds/$t"); fi
    local rc=0
    # -max_len lets HTTP buffers pass the 8 KiB request window; -timeout catches hangs.
    (cd fuzz && "${cargo_fuzz[@]}" run "${flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -max_len=16384 -rss_limit_mb=2048 \
        -print_final_stats=1) >"$logs/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$logs/$t.rc"
}

running=0
for t in "${targets[@]}"; do
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

failed=()
for t in "${targets[@]}"; do
    rc=$(cat "$logs/$t.rc" 2>/dev/null || echo missing)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    if [ "$rc" = 0 ]; then
        printf 'fuzz-smoke: %-16s ok   %10s runs\n' "$t" "${runs:-?}"
    else
        printf 'fuzz-smoke: %-16s FAIL (exit %s)\n' "$t" "$rc"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written|artifact' "$logs/$t.log" |
            head -20 | sed 's/^/    /'
        failed+=("$t")
    fi
done
end=$(date +%s)
echo "fuzz-smoke: build $((built - start)) s, runs $((end - built)) s, ${#targets[@]} targets, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: crashing inputs are in fuzz/artifacts/<target>/; see fuzz/README.md" >&2
    exit 1
fi
