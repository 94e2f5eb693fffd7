#!/usr/bin/env bash
# Makes the bench's Python environment once and prints its interpreter's path.
#
#   python=$(bash bench/venv.sh)
#
# The venv lives at bench/cache/peer-venv (git-ignored): it is rebuilt from scratch only
# when bench/peer/requirements.txt differs from the copy kept inside it (written only
# after a successful install, so a failed install is retried next time). Progress goes
# to stderr.
#
#   PEER_PYTHON=python3   interpreter the venv is made from (the pins want 3.11+)
set -euo pipefail
cd "$(dirname "$0")/.."

host_python=${PEER_PYTHON:-python3}
venv=bench/cache/peer-venv
req=bench/peer/requirements.txt
stamp=$venv/requirements.txt

if ! cmp -s "$req" "$stamp" || ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "venv.sh: building $venv from $req (once)" >&2
  started=$SECONDS
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$host_python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
  echo "venv.sh: venv ready in $((SECONDS - started)) s" >&2
fi
echo "$PWD/$venv/bin/python"
