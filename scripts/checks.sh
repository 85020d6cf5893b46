# Sourced by the shell tests (run from the repository root): one line per check, and a
# count of the failed ones in $failures, so a test reports every failure, not the first.
#   check DESCRIPTION COMMAND...   runs COMMAND; prints "ok   DESCRIPTION" or "FAIL ..."
failures=0
check() {
    if "${@:2}"; then
        echo "ok   $1"
    else
        echo "FAIL $1"
        failures=$((failures + 1))
    fi
}
