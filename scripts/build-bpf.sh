#!/usr/bin/env bash
# Builds SYN mode's XDP program: bpf/secbeat.bpf.c → bpf/build/secbeat.bpf.o (and the test bed's veth-peer
# program, bpf/peer-pass.bpf.c, and the bench's flood generator, bpf/flood.bpf.c), against a vmlinux.h that bpftool
# dumps from the running kernel's BTF (the object carries BTF and CO-RE relocations, so it loads on kernels whose
# structures differ from this one). Run by `npm install` (package.json "install"); scripts/setup.sh installs clang
# and bpftool first. Without them, or without kernel BTF, nothing is built and SYN mode names what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bpf/build
missing=()
command -v clang >/dev/null || missing+=("clang (Debian: clang)")
command -v bpftool >/dev/null || missing+=("bpftool (Debian: bpftool)")
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=("libbpf headers (Debian: libbpf-dev)")
[ -r /sys/kernel/btf/vmlinux ] || missing+=("kernel BTF (/sys/kernel/btf/vmlinux)")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "build-bpf: skipped, SYN mode will be unavailable; missing: ${missing[*]}"
  exit 0
fi
mkdir -p "$out"
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out/vmlinux.h.tmp"
mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
# -g: BTF for the maps and CO-RE; -O2: the verifier needs the optimised code; the multiarch include directory
# holds asm/ headers that the UAPI headers include.
for name in secbeat peer-pass flood; do
  clang -O2 -g -Wall -Werror -target bpf "-D__TARGET_ARCH_${arch}" -I "$out" -I bpf \
    -I "/usr/include/$(uname -m)-linux-gnu" -c "bpf/$name.bpf.c" -o "$out/$name.bpf.o.tmp"
  mv "$out/$name.bpf.o.tmp" "$out/$name.bpf.o"
  echo "build-bpf: $out/$name.bpf.o"
done
