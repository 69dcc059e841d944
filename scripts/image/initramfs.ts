/**
 * The file tree of the sealed initramfs, as cpio entries. No shell, package manager or debug
 * tool: the Node.js runtime and the libraries it links, the enclave bundle and its native
 * packages, the kernel modules the init loads, and the init itself.
 *
 *   /init -> /opt/cleanroom/init.cjs   (PID 1, run by /usr/bin/node via its #! line)
 *   /opt/cleanroom/{main.js,chunks/,platform/,package.json,modules.json,node_modules/}
 *   /usr/bin/node, /lib/x86_64-linux-gnu/*.so*, /lib64/ld-linux-x86-64.so.2
 *   /lib/modules/<version>/kernel/...ko.xz
 *   /dev/console, /dev/null (needed before devtmpfs is mounted)
 */
import type { BundleFile } from "./bundle.js";
import type { CpioEntry } from "./cpio.js";

export const APP_DIR = "opt/cleanroom";

export interface InitramfsInputs {
  node: Uint8Array;
  /** Library files by their absolute path in the image. */
  libraries: { path: string; data: Uint8Array }[];
  enclave: BundleFile[];
  init: Uint8Array;
  /** Files of the native packages, by path relative to node_modules. */
  nativePackages: BundleFile[];
  /** Kernel module files by their absolute path in the image. */
  modules: { path: string; data: Uint8Array }[];
  /** Per platform group, module paths in load order (written to modules.json for the init). */
  moduleGroups: Record<string, string[]>;
}

const utf8 = new TextEncoder();
const json = (v: unknown) => utf8.encode(`${JSON.stringify(v, null, 2)}\n`);

export function initramfsEntries(i: InitramfsInputs): CpioEntry[] {
  const file = (path: string, data: Uint8Array, mode = 0o644): CpioEntry => ({
    path,
    type: "file",
    data,
    mode,
  });
  return [
    { path: "dev/console", type: "chardev", major: 5, minor: 1, mode: 0o600 },
    { path: "dev/null", type: "chardev", major: 1, minor: 3, mode: 0o666 },
    { path: "proc", type: "dir" },
    { path: "sys", type: "dir" },
    { path: "tmp", type: "dir", mode: 0o1777 },
    { path: "init", type: "symlink", target: `/${APP_DIR}/init.cjs` },
    file("usr/bin/node", i.node, 0o755),
    {
      path: "lib64/ld-linux-x86-64.so.2",
      type: "symlink",
      target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    },
    ...i.libraries.map((l) => file(l.path, l.data, 0o755)),
    ...i.modules.map((m) => file(m.path, m.data)),
    file(`${APP_DIR}/init.cjs`, i.init, 0o755),
    file(`${APP_DIR}/package.json`, json({ type: "module", private: true })),
    file(`${APP_DIR}/modules.json`, json(i.moduleGroups)),
    ...i.enclave.map((f) => file(`${APP_DIR}/${f.path}`, f.data)),
    ...i.nativePackages.map((f) =>
      file(
        `${APP_DIR}/node_modules/${f.path}`,
        f.data,
        f.path.endsWith(".node") || f.path.endsWith(".so") ? 0o755 : 0o644,
      ),
    ),
  ];
}
