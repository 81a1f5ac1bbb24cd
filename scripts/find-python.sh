#!/usr/bin/env sh
# Print the path of a Python interpreter of the given minor version (e.g. 3.10),
# looking on PATH and then in pyenv's versions. Exit 1 with advice if none is found.
want="$1"
for cand in "python$want" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$want"*/bin/"python$want" "$HOME/.pyenv/versions/$want"*/bin/"python$want"; do
  path=$(command -v "$cand" 2>/dev/null) || continue
  if "$path" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$want' else 1)" 2>/dev/null; then
    echo "$path"; exit 0
  fi
done
echo "error: Python $want was not found on PATH or in pyenv." >&2
if [ "$want" = "3.10" ]; then
  echo "Rasa 3.6 needs Python 3.10: install it (e.g. 'pyenv install 3.10') or run the stack with Docker: 'docker compose up' (see README)." >&2
fi
exit 1
