/**
 * Command-line options of the host process, parsed into buildHost options and a listen address.
 * Kept apart from main.ts so the parsing and the plain-HTTP rule are testable without a process.
 */
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { UsageError } from "../attestation/errors.js";
import { parseVsockConnect } from "../protocol/transport/address.js";
import type { HostOptions } from "./app.js";
import type { EnclaveAddress } from "./enclave-client.js";
import { isLoopbackAddress } from "./net.js";

export interface HostCommand {
  listen: { host: string; port: number };
  options: HostOptions;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^[0-9]{1,5}$/.test(text) || port < 1 || port > 65535) throw new InvalidArgumentError("bad port");
  return port;
}

/** `host:port` or `[v6]:port`. */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]+)$/.exec(text);
  if (!m) throw new InvalidArgumentError("expected host:port");
  return { host: (m[1] ?? m[2])!, port: parsePort(m[3]!) };
}

/** `host:port`, `unix:/path/to.sock` or `vsock:CID:PORT` (a Nitro enclave's CID and port). */
export function parseEnclaveAddress(text: string): EnclaveAddress {
  if (text.startsWith("vsock:")) {
    try {
      return { socket: parseVsockConnect(text) };
    } catch {
      throw new InvalidArgumentError("expected vsock:CID:PORT, each a decimal u32");
    }
  }
  if (text.startsWith("unix:")) {
    const socketPath = text.slice(5);
    if (socketPath === "") throw new InvalidArgumentError("empty socket path");
    return { socketPath };
  }
  return parseHostPort(text);
}

function parseBytes(text: string): number {
  if (!/^[0-9]{1,16}$/.test(text)) throw new InvalidArgumentError("expected a byte count");
  return Number(text);
}

export function parseHostArgs(argv: readonly string[]): HostCommand {
  const program = new Command("cleanroom-host")
    .description("untrusted relay and ciphertext store of the clean room")
    .requiredOption("--listen <host:port>", "address to serve on", parseHostPort)
    .requiredOption(
      "--enclave <host:port|unix:path|vsock:cid:port>",
      "the enclave's HTTP socket",
      parseEnclaveAddress,
    )
    .requiredOption("--store <dir>", "directory for blobs, results and the audit copy")
    .option("--tls-cert <file>", "PEM certificate chain (serve HTTPS)")
    .option("--tls-key <file>", "PEM private key for --tls-cert")
    .option("--insecure-http", "allow plain HTTP on a non-loopback address")
    .option("--max-blob-bytes <n>", "largest accepted upload", parseBytes)
    .option(
      "--upload-ttl-hours <n>",
      "remove resumable uploads nobody continued for this long, when the host starts (default 168)",
      parseBytes,
    )
    .option("--rate-limit <n>", "requests per minute per non-loopback client", parseBytes)
    .option("--log-level <level>", "pino log level", "info")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program.parse([...argv], { from: "user" });
  const o = program.opts<{
    listen: { host: string; port: number };
    enclave: EnclaveAddress;
    store: string;
    tlsCert?: string;
    tlsKey?: string;
    insecureHttp?: boolean;
    maxBlobBytes?: number;
    uploadTtlHours?: number;
    rateLimit?: number;
    logLevel: string;
  }>();
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const tls =
    o.tlsCert && o.tlsKey ? { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) } : undefined;
  if (!tls && !isLoopbackAddress(o.listen.host) && !o.insecureHttp) {
    throw new UsageError(
      "plain HTTP on a non-loopback address needs --insecure-http (or --tls-cert/--tls-key)",
    );
  }
  return {
    listen: o.listen,
    options: {
      enclave: o.enclave,
      storeDir: o.store,
      logger: { level: o.logLevel },
      ...(tls ? { tls } : {}),
      limits: {
        ...(o.maxBlobBytes === undefined ? {} : { maxBlobBytes: o.maxBlobBytes }),
        ...(o.uploadTtlHours === undefined ? {} : { partialUploadTtlMs: o.uploadTtlHours * 3600 * 1000 }),
      },
      rateLimit: o.rateLimit === undefined ? {} : { max: o.rateLimit },
    },
  };
}
