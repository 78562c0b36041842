#!/usr/bin/env bash
# Install the system packages a feature needs, from Debian's archive, only when missing.
#   install-system-deps.sh java       a JRE for the iso15118 EXI codec (py4j + EXIficient jar)
#   install-system-deps.sh netns      iproute2 for the network-namespace tests
#   install-system-deps.sh chromium   headless Chromium for the dashboard tests
#   install-system-deps.sh pki        openssl for the test certificates (iso15118's create_certs.sh)
set -euo pipefail
need_apt=()
for what in "$@"; do
    case "$what" in
        java) command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless) ;;
        netns) command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
               command -v sysctl >/dev/null 2>&1 || need_apt+=(procps) ;;
        pki) command -v openssl >/dev/null 2>&1 || need_apt+=(openssl) ;;
        chromium) command -v chromium >/dev/null 2>&1 || need_apt+=(chromium) ;;
        *) echo "install-system-deps: unknown feature '$what' (known: java netns chromium pki)" >&2; exit 2 ;;
    esac
done
[ ${#need_apt[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: missing ${need_apt[*]}; run as root or install them: apt-get install ${need_apt[*]}" >&2
    exit 1
fi
echo "install-system-deps: apt-get install ${need_apt[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
