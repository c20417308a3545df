#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install the Debian packages berth builds and tests with, only when missing.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev
libmnl-dev libnftnl-dev libnl-3-dev libnl-route-3-dev libjansson-dev libbpf-dev
nettle-dev libcurl4-openssl-dev libyaml-dev libcmocka-dev python3-pytest
iproute2 iputils-ping nftables conntrack containernetworking-plugins
podman runc busybox-static bpftool hyperfine iptables curl"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "berth: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "berth: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
