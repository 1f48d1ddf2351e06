#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root): system packages,
# npm dependencies, native build (BPF objects, N-API binding) and the TypeScript
# build. Each step is skipped when its inputs have not changed, so a second run
# takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
stamp_dir="$root/node_modules/.palisade-stamps"

log() { printf '[setup] %s\n' "$*" >&2; }

# Everything the project uses at build time, test time or in the lab.
apt_packages=(
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
  build-essential python3 make g++
  iproute2 iptables nftables ethtool iperf3 tcpdump socat iputils-ping
  wireguard-go wireguard-tools
  etcd-server etcd-client
  ca-certificates
)

missing=()
for p in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing packages: ${missing[*]} (run as root to install them)"; exit 2
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "system packages present"
fi

# Debian's etcd-server package starts a system etcd on 2379; Palisade never uses
# it (tests and the lab start their own on private ports), so leave it as it is.

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

lock_hash=$(hash_of package.json package-lock.json)
if [[ ! -f "$stamp_dir/npm" || "$(cat "$stamp_dir/npm")" != "$lock_hash" ]]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  mkdir -p "$stamp_dir"; echo "$lock_hash" > "$stamp_dir/npm"
else
  log "node_modules up to date"
fi

# Native parts: BPF objects and the libbpf binding, when present.
if [[ -f bpf/Makefile ]]; then
  log "building BPF objects"
  make -s -C bpf
fi
if [[ -f bpf/binding/binding.gyp ]]; then
  src_hash=$(hash_of bpf/binding/binding.gyp bpf/binding/src/*)
  if [[ ! -f bpf/binding/build/Release/palisade_bpf.node || ! -f "$stamp_dir/gyp" || "$(cat "$stamp_dir/gyp")" != "$src_hash" ]]; then
    log "building N-API binding"
    # Build against the headers of the Node.js that runs us; node-gyp must never
    # try to download them (the machine has no internet beyond the registries).
    nodedir=$(npm config get nodedir 2>/dev/null || true)
    if [[ -z "$nodedir" || "$nodedir" == "undefined" ]]; then
      nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
    fi
    if [[ ! -f "$nodedir/include/node/node_api.h" ]]; then
      log "Node.js headers not found under $nodedir/include/node (install Debian's libnode-dev or set npm's nodedir)"; exit 2
    fi
    (cd bpf/binding && "$root/node_modules/.bin/node-gyp" rebuild --nodedir="$nodedir" --loglevel=warn)
    mkdir -p "$stamp_dir"; echo "$src_hash" > "$stamp_dir/gyp"
  fi
fi

log "building TypeScript"
npm run -s build

# bpffs for pinned maps (the agent and the datapath tests pin under it).
if [[ $(id -u) -eq 0 ]] && ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpffs /sys/fs/bpf || log "warning: could not mount bpffs on /sys/fs/bpf"
fi
log "ready"
