#!/bin/sh
# AddressSanitizer + LeakSanitizer over the C test, with a fallback for machines where
# LeakSanitizer itself cannot run.
#
#   usage: tests/asan.sh ASAN_TEST_BINARY TESTDATA FRAMES  (env: MAKE, for the memcheck fallback)
#
# LeakSanitizer stops the world with a ptrace-based tracer thread; inside some sandboxes
# (gVisor-style kernels, containers without ptrace) that tracer crashes ("Tracer caught
# signal 11 ... LeakSanitizer has encountered a fatal error").  That is a failure of the
# tool, not a finding, so there the run is repeated with leak detection off (ASan still
# checks every access) and the leak check moves to valgrind memcheck.  Any real ASan or
# LSan report, or a memcheck error, still fails the run.
set -u
bin=$1; data=$2; frames=$3
log=${TMPDIR:-/tmp}/facelink-asan.$$.log
trap 'rm -f "$log"' EXIT

PYTHONMALLOC=malloc \
ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=5:exitcode=98 \
LSAN_OPTIONS=suppressions=tests/lsan.supp:print_suppressions=0 \
    "$bin" "$data" --frames "$frames" >"$log" 2>&1
rc=$?
cat "$log"
if [ $rc -eq 0 ]; then
    echo "asan+lsan: clean"
    exit 0
fi
if ! grep -q "LeakSanitizer has encountered a fatal error" "$log" || grep -q "ERROR: AddressSanitizer" "$log"; then
    exit $rc
fi

echo "asan: LeakSanitizer cannot run on this machine (its tracer failed, see above);"
echo "asan: re-running with detect_leaks=0, then checking leaks with valgrind memcheck"
PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:exitcode=98 \
    "$bin" "$data" --frames "$frames" || exit $?
if ! command -v "${VALGRIND:-valgrind}" >/dev/null 2>&1; then
    echo "asan: valgrind not found: leak check NOT done (install valgrind, or run where LSan works)" >&2
    exit 97
fi
exec ${MAKE:-make} --no-print-directory memcheck-run
