import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../../attestation/errors.js";
import { buildHost } from "../../host/app.js";
import { parseEnclaveAddress, parseHostArgs, parseHostPort } from "../../host/cli.js";
import { isLoopbackAddress } from "../../host/net.js";
import { hasTool, skipWithout } from "../tools.js";

let dir: string;
let cert: string;
let key: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "host-cli-"));
  cert = join(dir, "cert.pem");
  key = join(dir, "key.pem");
  if (!hasTool("openssl")) return;
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
    ],
    { stdio: "ignore" },
  );
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const base = ["--enclave", "127.0.0.1:7001", "--store", "/tmp/x"];

describe("command line", () => {
  it("parses addresses", () => {
    expect(parseHostPort("127.0.0.1:8080")).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseHostPort("[::1]:443")).toEqual({ host: "::1", port: 443 });
    expect(parseEnclaveAddress("unix:/run/enclave.sock")).toEqual({ socketPath: "/run/enclave.sock" });
    expect(parseEnclaveAddress("vsock:16:7000")).toEqual({
      socket: { family: "vsock", cid: 16, port: 7000 },
    });
    for (const bad of ["vsock:7000", "vsock:016:7000", "vsock:16:4294967296", "vsock:16:-1", "vsock::7000"]) {
      expect(() => parseEnclaveAddress(bad), bad).toThrow(InvalidArgumentError);
    }
    for (const bad of ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "a:b:c", ":80"]) {
      expect(() => parseHostPort(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(isLoopbackAddress("127.4.5.6")).toBe(true);
    expect(isLoopbackAddress("::ffff:127.0.0.1")).toBe(true);
    expect(isLoopbackAddress("::1")).toBe(true);
    expect(isLoopbackAddress("0.0.0.0")).toBe(false);
    expect(isLoopbackAddress("10.0.0.1")).toBe(false);
    expect(isLoopbackAddress("::")).toBe(false);
  });

  it("serves plain HTTP on loopback only, unless told otherwise", (ctx) => {
    skipWithout(ctx, "openssl");
    const local = parseHostArgs(["--listen", "127.0.0.1:8080", ...base]);
    expect(local.listen).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(local.options.tls).toBeUndefined();
    expect(local.options.enclave).toEqual({ host: "127.0.0.1", port: 7001 });

    expect(() => parseHostArgs(["--listen", "0.0.0.0:8080", ...base])).toThrow(UsageError);
    expect(
      parseHostArgs(["--listen", "0.0.0.0:8080", "--insecure-http", ...base]).options.tls,
    ).toBeUndefined();
    const tls = parseHostArgs(["--listen", "0.0.0.0:8443", "--tls-cert", cert, "--tls-key", key, ...base]);
    expect(tls.options.tls?.cert.toString()).toContain("BEGIN CERTIFICATE");
    expect(() => parseHostArgs(["--listen", "0.0.0.0:8443", "--tls-cert", cert, ...base])).toThrow(
      UsageError,
    );
  });

  it("serves HTTPS when given a certificate", async (ctx) => {
    skipWithout(ctx, "openssl");
    const storeDir = join(dir, "store");
    const { options } = parseHostArgs([
      "--listen",
      "127.0.0.1:1",
      "--tls-cert",
      cert,
      "--tls-key",
      key,
      ...base,
    ]);
    const app = await buildHost({ ...options, storeDir, logger: false });
    try {
      await app.listen({ host: "127.0.0.1", port: 0 });
      const port = (app.server.address() as AddressInfo).port;
      const { status, hsts } = await new Promise<{ status: number; hsts: unknown }>((resolve, reject) => {
        https
          .get({ host: "127.0.0.1", port, path: "/api/v1/audit", rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, hsts: res.headers["strict-transport-security"] });
          })
          .on("error", reject);
      });
      expect(status).toBe(200);
      expect(hsts).toMatch(/max-age=/);
    } finally {
      await app.close();
    }
  });
});
