#!/usr/bin/env bash
# Installs what cautograd needs on Debian 12, only what is missing, then
# configures the build. Used by the README's two commands and by .ci/run.
#
#   scripts/setup.sh [--torch-python PY]... [--pip-torch VERSION]... [--no-debian] [--browser]
#
# Each backend is built against one libtorch (docs/torch-versions.md):
#   (default)             Debian's libtorch-dev 1.13
#   --torch-python PY     also the torch that the interpreter PY imports (a
#                         pip wheel in a venv)
#   --pip-torch VERSION   also torch==VERSION from pip, in a venv this script
#                         makes (or reuses) at .venvs/torch-VERSION
#   --no-debian           no backend for Debian's libtorch
# --browser also installs Debian's chromium and turns on the tests that open
# the HTML report in it, headless (tests/browser/).
# BUILD_DIR (default build) is where it configures.
set -euo pipefail
cd "$(dirname "$0")/.."

pythons=()
pip_versions=()
debian=ON
browser=OFF
while (($#)); do
  case "$1" in
    --torch-python) pythons+=("$2"); shift 2 ;;
    --pip-torch) pip_versions+=("$2"); shift 2 ;;
    --no-debian) debian=OFF; shift ;;
    --browser) browser=ON; shift ;;
    *) echo "setup: unknown option '$1'; see the top of scripts/setup.sh" >&2; exit 2 ;;
  esac
done

packages=(g++ cmake make ccache pkg-config libzstd-dev zlib1g-dev libcli11-dev nlohmann-json3-dev googletest libgtest-dev libbenchmark-dev
          graphviz python3 python3-venv)
[ "$debian" = ON ] && packages+=(libtorch-dev python3-torch)
[ "$browser" = ON ] && packages+=(chromium)
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

# A venv per pip torch, made once; pip takes the wheel from its index.
for v in "${pip_versions[@]}"; do
  venv=.venvs/torch-$v
  if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$v')" 2>/dev/null; then
    echo "setup: making $venv with torch==$v" >&2
    /usr/bin/python3 -m venv "$venv"
    if ! "$venv/bin/pip" install -q --disable-pip-version-check "torch==$v" >"$venv/pip.log" 2>&1; then
      cat "$venv/pip.log" >&2
      echo "setup: pip could not install torch==$v into $venv (its log is above)" >&2
      exit 3
    fi
  fi
  pythons+=("$PWD/$venv/bin/python")
done

list=""
for py in "${pythons[@]}"; do
  case "$py" in /*) ;; *) py=$PWD/$py ;; esac
  list=${list:+$list;}$py
done

build=${BUILD_DIR:-build}
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCAUTOGRAD_WERROR="$werror" -DCAUTOGRAD_DEBIAN_TORCH="$debian" \
      -DCAUTOGRAD_BROWSER_TESTS="$browser" -DCAUTOGRAD_TORCH_PYTHONS="$list" >/dev/null
