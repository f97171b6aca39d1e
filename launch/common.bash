# Shared by the launchers (sourced, not run): usage errors and readable commands.
# Each launcher defines usage() before sourcing this file.

die_usage() {
  echo "error: $1" >&2
  usage | head -n 1 >&2 || true
  exit 2
}

# Prints a command readably, quoting each word only where a shell needs it.
show() {
  local out=() word flag value
  local safe='^[A-Za-z0-9_./:=,@%+-]*$'
  for word in "$@"; do
    if [[ "$word" =~ $safe && -n "$word" ]]; then
      out+=("$word")
      continue
    fi
    flag=""
    value="$word"
    if [[ "$word" =~ ^(--?[A-Za-z0-9_.-]+=)(.*)$ ]]; then
      flag="${BASH_REMATCH[1]}"
      value="${BASH_REMATCH[2]}"
    fi
    out+=("$flag'${value//\'/\'\\\'\'}'")
  done
  printf '%s\n' "${out[*]}"
}
