#!/usr/bin/env bash
# Installs what cautograd needs on Debian 12, only what is missing, then
# configures the build. Used by the README's two commands and by .ci/run.
set -euo pipefail

packages=(g++ cmake make ccache libtorch-dev libcli11-dev nlohmann-json3-dev
          googletest libgtest-dev libbenchmark-dev python3-torch graphviz)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${BUILD_DIR:-build}
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCAUTOGRAD_WERROR="$werror" >/dev/null
