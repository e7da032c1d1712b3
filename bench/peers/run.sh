#!/usr/bin/env bash
# Rempart vs fail2ban vs CrowdSec benchmark (`make bench-peers`). See bench/peers/README.md.
#   PEERS_FULL=1   also generate and measure a ~10M-line log (long)
#   PEERS_RUNS=N   timed runs per tool on the large logs (default 3, after a warm-up)
# Installs fail2ban and crowdsec from Debian if missing, without starting or enabling any
# service and without registering to CrowdSec's central API; all their state lives under
# bench/peers/work/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

need_install=()
command -v fail2ban-regex >/dev/null 2>&1 || need_install+=(fail2ban)
command -v crowdsec >/dev/null 2>&1 || need_install+=(crowdsec)
if [ "${#need_install[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench-peers: ${need_install[*]} missing; run as root or: apt-get install ${need_install[*]}" >&2
    exit 2
  fi
  echo "bench-peers: installing ${need_install[*]} from Debian"
  # Debian's documented way to skip the CrowdSec central-API registration (offline machine):
  # a non-empty online_api_credentials.yaml before the package is configured (README.Debian).
  if [ ! -s /etc/crowdsec/online_api_credentials.yaml ]; then
    mkdir -p /etc/crowdsec
    echo '# no thanks: offline machine, crowdsec only used in replay mode by bench/peers' \
      > /etc/crowdsec/online_api_credentials.yaml
  fi
  # Never start services from maintainer scripts while installing.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  if ! apt-cache policy fail2ban crowdsec | grep -q Candidate; then apt-get update -q; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_install[@]}"
  [ "$created_policy" = 1 ] && rm -f "$policy"
  # The packages enable their units for the next boot: undo that for what we installed.
  for pkg in "${need_install[@]}"; do
    DPKG_MAINTSCRIPT_PACKAGE="$pkg" DPKG_MAINTSCRIPT_NAME=postinst \
      deb-systemd-helper disable "$pkg.service" >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl disable --now "$pkg.service" >/dev/null 2>&1 || true
    fi
  done
fi

# No service left running: stop whatever a package (or a previous run) may have started.
for name in fail2ban-server crowdsec; do
  for pid in $(pidof -x "$name" 2>/dev/null || true); do
    case "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" in
      *"$HERE/work"*) kill "$pid" 2>/dev/null || true ;;   # ours, left by an interrupted run
      *) echo "bench-peers: note: a system $name (pid $pid) is running; it is not touched" >&2 ;;
    esac
  done
done

mkdir -p "$HERE/work"
cd "$REPO"
exec "$REPO/.venv/bin/python" "$HERE/run.py" "$@"
