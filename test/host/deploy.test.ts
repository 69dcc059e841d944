/**
 * The deployment files (deploy/) start the host the way its command line expects: the systemd
 * unit's ExecStart with the shipped environment file, and the container image's entry point and
 * default arguments, parsed by the host's own argument parser; the image copies only what exists.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseHostArgs } from "../../host/cli.js";

const ROOT = join(import.meta.dirname, "../..");
const read = (f: string) => readFileSync(join(ROOT, f), "utf8");
const tls = mkdtempSync(join(tmpdir(), "deploy-tls-"));
writeFileSync(join(tls, "cert.pem"), "cert");
writeFileSync(join(tls, "key.pem"), "key");
afterAll(() => rmSync(tls, { recursive: true, force: true }));

/** Arguments after the host's main.js, with the TLS directory pointed at test files. */
function hostArgs(argv: string[]): string[] {
  const i = argv.findIndex((a) => a.endsWith("dist/host/main.js"));
  expect(i).toBeGreaterThanOrEqual(0);
  return argv.slice(i + 1).map((a) => a.replace("/etc/cleanroom/tls", tls));
}

describe("deploy/cleanroom-host.service", () => {
  it("runs the host with arguments it accepts, from the shipped environment file", () => {
    const unit = read("deploy/cleanroom-host.service");
    const env = Object.fromEntries(
      read("deploy/host.env")
        .split("\n")
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const exec = /^ExecStart=(.+)$/m.exec(unit)![1]!;
    const argv = exec.split(" ").map((w) =>
      w.replace(/\$\{([A-Z_]+)\}/g, (_, k: string) => {
        expect(env, k).toHaveProperty(k);
        return env[k]!;
      }),
    );
    expect(argv[0]).toBe("/usr/bin/node");
    const parsed = parseHostArgs(hostArgs(argv));
    expect(parsed.listen).toEqual({ host: "0.0.0.0", port: 8443 });
    expect(parsed.options.storeDir).toBe("/var/lib/cleanroom-host");
    expect(parsed.options.tls).toBeDefined();
    expect(unit).toMatch(/^StateDirectory=cleanroom-host$/m);
    expect(unit).toMatch(/^User=cleanroom-host$/m);
  });
});

describe("deploy/host.Dockerfile", () => {
  const file = read("deploy/host.Dockerfile");

  it("starts the host with arguments it accepts", () => {
    const entry = JSON.parse(/^ENTRYPOINT (\[.+\])$/m.exec(file)![1]!) as string[];
    const cmd = JSON.parse(/^CMD (\[[\s\S]+?\])$/m.exec(file)![1]!.replace(/\\\n/g, "")) as string[];
    const parsed = parseHostArgs(hostArgs([...entry, ...cmd]));
    expect(parsed.listen.port).toBe(8443);
    expect(parsed.options.enclave).toEqual({ socket: { family: "vsock", cid: 16, port: 7000 } });
    expect(file).toMatch(/^USER node$/m);
  });

  it("copies only what the repository has", () => {
    const sources = [...file.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(" "));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) expect(existsSync(join(ROOT, s)), s).toBe(true);
  });
});
