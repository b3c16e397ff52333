# What the end-to-end scripts share: a scratch folder, counting, and the
# checks. Sourced by run.sh and cross.sh; they end with `finish`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect STATUS NAME -- COMMAND...: runs COMMAND, checks its exit status,
# leaves its stdout in $tmp/out and stderr in $tmp/err.
expect() {
  local want=$1 name=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok; else bad "$name: exit $got, expected $want; stderr: $(head -c 600 "$tmp/err")"; fi
}
contains() {  # contains FILE TEXT NAME
  if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(head -c 600 "$1")"; fi
}
one_line() {  # one_line FILE NAME
  if [ "$(wc -l <"$1")" -eq 1 ]; then ok; else bad "$2: expected one line, got: $(cat "$1")"; fi
}

# The closing line ctest reads, and the exit status.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
