#!/bin/sh
# progress: what `go build -v` prints (a package a line) as a count, so a
# long first build (the AWS SDK) is seen to move; other lines (errors) are
# passed on whole. Used by the Makefile.
what=${1:-packages built}
n=0
while IFS= read -r line; do
  case "$line" in
    *" "*|*:*) printf '%s\n' "$line" >&2 ;;
    *) n=$((n+1))
       if [ -t 2 ]; then printf '\r  %d %s: %-50.50s' "$n" "$what" "$line" >&2
       elif [ $((n % 50)) = 0 ]; then printf '  %d %s\n' "$n" "$what" >&2; fi ;;
  esac
done
if [ -t 2 ] && [ "$n" -gt 0 ]; then printf '\r  %d %s%-60s\n' "$n" "$what" "" >&2; fi
exit 0
