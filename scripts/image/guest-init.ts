/**
 * PID 1 of the sealed image (bundled to /opt/cleanroom/init.cjs, run by the image's Node through
 * its `#!` line). There is no shell, busybox or kmod in the image: the few system calls an init
 * needs (mount, finit_module, network ioctls, reboot) go through koffi, the FFI the enclave
 * already ships for /dev/nsm. Everything it decides comes from the measured kernel command line:
 *   cleanroom.platform=sim|sev-snp|nitro   passed to the enclave as --platform (required)
 *   cleanroom.listen=HOST:PORT|vsock:PORT  passed as --listen (default 0.0.0.0:7000; a Nitro
 *                                          image always carries vsock:PORT, its only way out)
 *   cleanroom.ip=A.B.C.D/N                 static IPv4 address for eth0 (optional)
 * The enclave's stdout and stderr are pipes to this process, not the console (ttyS0, which the
 * hypervisor reads): only lines console.ts allows (bare error codes, "listening") are written there.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import koffi from "koffi";
import { cleanroomArgs, DEFAULT_LISTEN, PLATFORMS, type Platform } from "./cmdline.js";
import { consoleSink } from "./console.js";

const ROOT = "/opt/cleanroom";

const libc = koffi.load("libc.so.6");
const mountFn = libc.func(
  "int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)",
);
const syscallFn = libc.func("long syscall(long number, ...)");
const ioctlFn = libc.func("int ioctl(int fd, unsigned long request, ...)");
const socketFn = libc.func("int socket(int domain, int type, int protocol)");
const rebootFn = libc.func("int reboot(int cmd)");
const syncFn = libc.func("void sync()");

const SYS_FINIT_MODULE = 313; // x86_64
const MODULE_INIT_COMPRESSED_FILE = 4; // the kernel decompresses .ko.xz itself (MODULE_DECOMPRESS=y)
const EEXIST = 17;
const EBUSY = 16;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const RB_POWER_OFF = 0x4321fedc;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const SIOCSIFADDR = 0x8916;
const SIOCSIFNETMASK = 0x891c;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;

function log(msg: string): void {
  process.stderr.write(`cleanroom-init: ${msg}\n`);
}

function powerOff(code: number): never {
  log(`powering off (${code})`);
  syncFn();
  rebootFn(RB_POWER_OFF);
  process.exit(code);
}

function mount(fstype: string, target: string, flags: number, data = ""): void {
  mkdirSync(target, { recursive: true });
  if (mountFn(fstype, target, fstype, flags, data) !== 0 && koffi.errno() !== EBUSY) {
    throw new Error(`mount ${target} failed, errno ${koffi.errno()}`);
  }
}

function loadModule(path: string): void {
  const fd = openSync(path, "r");
  try {
    const rc = syscallFn(SYS_FINIT_MODULE, "int", fd, "str", "", "int", MODULE_INIT_COMPRESSED_FILE);
    if (rc !== 0 && koffi.errno() !== EEXIST)
      throw new Error(`finit_module ${path} failed, errno ${koffi.errno()}`);
  } finally {
    closeSync(fd);
  }
}

/** struct ifreq: 16-byte name, then a 24-byte union (sockaddr_in or short flags). */
function ifreq(name: string): Buffer {
  const b = Buffer.alloc(40);
  b.write(name, 0, 15, "ascii");
  return b;
}

function sockaddrIn(b: Buffer, addr: number[]): Buffer {
  b.writeUInt16LE(AF_INET, 16);
  b.set(addr, 20);
  return b;
}

function ioctl(fd: number, request: number, req: Buffer): void {
  if (ioctlFn(fd, request, "void *", req) !== 0)
    throw new Error(`ioctl ${request} failed, errno ${koffi.errno()}`);
}

function linkUp(fd: number, name: string): void {
  const req = ifreq(name);
  ioctl(fd, SIOCGIFFLAGS, req);
  req.writeUInt16LE(req.readUInt16LE(16) | IFF_UP | IFF_RUNNING, 16);
  ioctl(fd, SIOCSIFFLAGS, req);
}

function configureNetwork(ip: string | undefined): void {
  const fd = socketFn(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) throw new Error("socket failed");
  try {
    linkUp(fd, "lo");
    if (ip === undefined) return;
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(ip);
    if (!m) throw new Error("cleanroom.ip must be A.B.C.D/N");
    const addr = m.slice(1, 5).map(Number);
    const prefix = Number(m[5]);
    if (addr.some((x) => x > 255) || prefix > 32) throw new Error("cleanroom.ip out of range");
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    ioctl(fd, SIOCSIFADDR, sockaddrIn(ifreq("eth0"), addr));
    ioctl(
      fd,
      SIOCSIFNETMASK,
      sockaddrIn(ifreq("eth0"), [mask >>> 24, (mask >>> 16) & 255, (mask >>> 8) & 255, mask & 255]),
    );
    linkUp(fd, "eth0");
  } finally {
    closeSync(fd);
  }
}

function main(): void {
  mount("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount("devtmpfs", "/dev", MS_NOSUID, "mode=0755");
  mount("tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777");
  mount("tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777");

  const args = cleanroomArgs(readFileSync("/proc/cmdline", "utf8"));
  const platform = args.get("cleanroom.platform") as Platform | undefined;
  if (platform === undefined || !PLATFORMS.includes(platform))
    throw new Error("cleanroom.platform missing or unknown");

  // Module lists per platform, resolved (with dependencies first) at build time.
  const modules = JSON.parse(readFileSync(`${ROOT}/modules.json`, "utf8")) as Record<string, string[]>;
  for (const m of [...(modules.common ?? []), ...(modules[platform] ?? [])]) loadModule(m);
  mount("configfs", "/sys/kernel/config", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  configureNetwork(args.get("cleanroom.ip"));

  const listen = args.get("cleanroom.listen") ?? DEFAULT_LISTEN;
  log(`starting enclave, platform ${platform}, listen ${listen}`);
  const child = spawn(process.execPath, [`${ROOT}/main.js`, "--listen", listen, "--platform", platform], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { NODE_ENV: "production", PATH: "/usr/bin" },
  });
  // Everything is read (a full pipe would stall the enclave); only allowed lines reach the console.
  const toConsole = (line: string) => process.stderr.write(`${line}\n`);
  child.stdout.on("data", consoleSink("stdout", toConsole));
  child.stderr.on("data", consoleSink("stderr", toConsole));
  // "close", not "exit": the pipes are drained first, so a last error code still reaches the console.
  child.on("close", (code, signal) => {
    log(`enclave exited (${code ?? signal})`);
    powerOff(code ?? 1);
  });
  // PID 1 ignores these by default; forward them so the enclave can stop cleanly.
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => child.kill(sig));
}

try {
  main();
} catch (e) {
  log(e instanceof Error ? e.message : "failed");
  powerOff(1);
}
