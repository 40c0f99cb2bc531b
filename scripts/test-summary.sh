#!/usr/bin/env bash
# Adds up the "test result:" lines of every test runner in a `make test` log (cargo test and
# wasm-bindgen-test print the same format) and the deploy checks, and prints one closing line.
set -euo pipefail
log=$1
awk '
  /test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?$/) passed += $i
      if ($(i+1) ~ /^failed;?$/) failed += $i
      if ($(i+1) ~ /^ignored;?$/) ignored += $i
    }
  }
  /^ok: / { passed += 1 }
  /^deploy check: / { failed += 1 }
  END { printf "total: %d passed, %d failed, %d skipped\n", passed, failed, ignored }
' "$log"
