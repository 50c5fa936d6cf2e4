#!/usr/bin/env bash
# Formats every C++ source (*.cpp, *.h, *.cu, *.cuh in include/ src/ apps/ tests/ bench/ fuzz/
# examples/, the files git knows or would add) with the checked-in .clang-format and
# clang-format 14 (Debian 12's; other versions format some constructs differently).
# Usage: scripts/format.sh            rewrite the files in place
#        scripts/format.sh --check    change nothing; name the files that differ and fail if any
#                                     do (CTest's `format` test)
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case ${1:-} in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac

clang_format=${CLANG_FORMAT:-}
if [[ -z $clang_format ]]; then
  for candidate in clang-format-14 clang-format; do
    if command -v "$candidate" >/dev/null && "$candidate" --version | grep -q 'version 14\.'; then
      clang_format=$candidate
      break
    fi
  done
fi
if [[ -z $clang_format ]]; then
  echo "format: clang-format 14 is needed (apt-get install clang-format, or bash scripts/setup.sh)" >&2
  exit 1
fi

dirs='^(include|src|apps|tests|bench|examples|fuzz)/.*\.(cpp|h|cu|cuh)$'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and untracked-but-not-ignored files, so a new file is checked before its commit.
  mapfile -t listed < <(git ls-files --cached --others --exclude-standard | grep -E "$dirs" | sort -u)
else
  mapfile -t listed < <(find include src apps tests bench examples -type f 2>/dev/null |
                          grep -E "$dirs" | sort)
fi
files=()
for f in "${listed[@]}"; do
  [[ -f $f ]] && files+=("$f")   # a file deleted but not yet committed is still listed by git
done
((${#files[@]})) || { echo "format: no C++ sources found" >&2; exit 1; }

if ((!check)); then
  "$clang_format" -i "${files[@]}"
  echo "format: formatted ${#files[@]} files with $("$clang_format" --version)"
  exit 0
fi

# One run over all files (one process per file takes minutes on a busy 2-core machine); each
# difference is reported as "<file>:<line>:<col>: error: code should be clang-formatted".
rc=0
report=$("$clang_format" --dry-run --Werror "${files[@]}" 2>&1) || rc=$?
mapfile -t bad < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' \
                     <<<"$report" | sort -u)
if ((rc != 0 && ${#bad[@]} == 0)); then
  printf '%s\n' "$report" >&2
  echo "format: $clang_format failed" >&2
  exit 1
fi
if ((${#bad[@]})); then
  printf '%s\n' "${bad[@]}"
  echo "format: ${#bad[@]} of ${#files[@]} files differ from clang-format's output, the first:" >&2
  diff -u "${bad[0]}" <("$clang_format" "${bad[0]}") | head -n 40 >&2 || true
  echo "format: run bash scripts/format.sh to rewrite them" >&2
  exit 1
fi
echo "format: all ${#files[@]} files are formatted"
