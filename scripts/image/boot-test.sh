#!/usr/bin/env bash
# Boot test of the sealed image: boots dist/image (kernel + initramfs + the sim command line) under
# QEMU (Debian's qemu-system-x86; software emulation, no SEV), runs the untrusted host beside it,
# and waits until the host's readiness endpoint (/api/v1/health/ready) says the enclave answers through it.
#
#   npm run build && npm run build:image && scripts/image/boot-test.sh [IMAGE_DIR]
#
# Environment: ACCEL=tcg|kvm (default tcg), CPU (QEMU vCPU model; default EPYC-Milan, without CX16 under TCG), BOOT_TIMEOUT seconds (default 300),
# GUEST_PORT / HOST_PORT (default 17000 / 18080). The guest address 10.0.2.15:7000 is the one
# baked into cmdline-sim.txt by build:image's defaults (--ip 10.0.2.15/24, --listen 0.0.0.0:7000).
set -euo pipefail

IMAGE_DIR=${1:-dist/image}
ACCEL=${ACCEL:-tcg}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
GUEST_PORT=${GUEST_PORT:-17000}
HOST_PORT=${HOST_PORT:-18080}
# Exit status 3: a tool the test needs is not installed (callers may skip on it, saying so).
for tool in qemu-system-x86_64 curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "boot-test: $tool not found: install it (Debian: apt-get install qemu-system-x86 curl) to boot the image; nothing was started" >&2
    exit 3
  fi
done
if [ "$ACCEL" = kvm ] && [ ! -w /dev/kvm ]; then
  echo "boot-test: ACCEL=kvm but /dev/kvm is missing or not writable: use ACCEL=tcg (software emulation)" >&2
  exit 3
fi

work=$(mktemp -d)
qemu_pid=""
host_pid=""
cleanup() {
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for f in vmlinuz initramfs.cpio cmdline-sim.txt; do
  [ -f "$IMAGE_DIR/$f" ] || { echo "boot-test: $IMAGE_DIR/$f missing (run npm run build:image)" >&2; exit 2; }
done
[ -f dist/host/main.js ] || { echo "boot-test: dist/host/main.js missing (run npm run build)" >&2; exit 2; }

# QEMU 7.2's TCG intermittently double-faults this kernel: in SLUB's per-CPU cmpxchg16b, and in
# cross-CPU text patching with two vCPUs. Under TCG the boot test therefore runs one vCPU of an
# EPYC-Milan model without CX16 (SLUB then takes its lock-based path); KVM gets the real thing.
smp=2
cpu=${CPU:-EPYC-Milan}
if [ "$ACCEL" = tcg ]; then
  smp=1
  cpu=${CPU:-EPYC-Milan,-cx16}
fi
start=$(date +%s)
qemu-system-x86_64 -machine q35 -accel "$ACCEL" -cpu "$cpu" -m 2048 -smp "$smp" \
  -kernel "$IMAGE_DIR/vmlinuz" -initrd "$IMAGE_DIR/initramfs.cpio" -append "$(cat "$IMAGE_DIR/cmdline-sim.txt")" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:${GUEST_PORT}-10.0.2.15:7000" -device virtio-net-pci,netdev=n0 \
  -display none -serial "file:$work/console.log" -no-reboot &
qemu_pid=$!

node dist/host/main.js --listen "127.0.0.1:${HOST_PORT}" --enclave "127.0.0.1:${GUEST_PORT}" --store "$work/store" \
  --log-level warn >"$work/host.log" 2>&1 &
host_pid=$!

while true; do
  now=$(date +%s)
  # Readiness: 200 only once the enclave answers through the host.
  if body=$(curl -fsS -m 5 "http://127.0.0.1:${HOST_PORT}/api/v1/health/ready" 2>/dev/null); then
    echo "boot-test: enclave healthy through the host relay after $((now - start))s (accel $ACCEL)"
    echo "$body"
    exit 0
  fi
  if ! kill -0 "$qemu_pid" 2>/dev/null; then
    echo "boot-test: QEMU exited before the enclave answered" >&2
    cat "$work/console.log" >&2
    exit 1
  fi
  if [ $((now - start)) -ge "$BOOT_TIMEOUT" ]; then
    echo "boot-test: no healthy enclave after ${BOOT_TIMEOUT}s" >&2
    tail -50 "$work/console.log" >&2
    tail -20 "$work/host.log" >&2
    exit 1
  fi
  sleep 2
done
