/** The textual vsock forms and the sockaddr bytes: round trips, ranges, and refusals. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AF_VSOCK,
  decodeSockaddr,
  encodeSockaddr,
  formatTarget,
  parseVsockConnect,
  parseVsockListen,
  SOCKADDR_UN_BYTES,
  SOCKADDR_VM_BYTES,
  type SocketTarget,
  VMADDR_CID_ANY,
} from "../../protocol/transport/address.js";
import { TransportError } from "../../protocol/transport/errors.js";

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const vsock = fc.record({ family: fc.constant("vsock" as const), cid: u32, port: u32 });
/** Absolute paths of 1..107 UTF-8 bytes without NUL. */
const unixPath = fc
  .array(
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }).filter((s) => !s.includes("\0")),
    {
      minLength: 1,
      maxLength: 6,
    },
  )
  .map((parts) => `/${parts.join("/")}`)
  .filter((p) => new TextEncoder().encode(p).length < 108);
const unix = unixPath.map((path): SocketTarget => ({ family: "unix", path }));

function refused(f: () => unknown, reason = "address"): void {
  expect(f).toThrow(TransportError);
  expect(f).toThrow(expect.objectContaining({ code: "ERR_TRANSPORT", reason }));
}

describe("textual vsock addresses", () => {
  it("round-trip through format and parse", () => {
    fc.assert(
      fc.property(vsock, (t) => {
        expect(parseVsockConnect(`vsock:${t.cid}:${t.port}`)).toEqual(t);
        expect(parseVsockListen(formatTarget(t))).toEqual(t);
      }),
    );
    fc.assert(
      fc.property(u32, (port) => {
        expect(parseVsockListen(`vsock:${port}`)).toEqual({ family: "vsock", cid: VMADDR_CID_ANY, port });
      }),
    );
  });

  it("reads the documented examples", () => {
    expect(parseVsockConnect("vsock:16:7000")).toEqual({ family: "vsock", cid: 16, port: 7000 });
    expect(parseVsockListen("vsock:7000")).toEqual({ family: "vsock", cid: 0xffffffff, port: 7000 });
    expect(parseVsockListen("vsock:3:0")).toEqual({ family: "vsock", cid: 3, port: 0 });
    expect(formatTarget({ family: "vsock", cid: VMADDR_CID_ANY, port: 7000 })).toBe("vsock:7000");
  });

  it("refuses leading zeros, signs, out-of-range values and stray text", () => {
    for (const bad of [
      "vsock:07000",
      "vsock:16:07000",
      "vsock:00:1",
      "vsock:4294967296",
      "vsock:16:4294967296",
      "vsock:99999999999",
      "vsock:-1",
      "vsock:+1",
      "vsock:1.0",
      "vsock:0x10:1",
      "vsock:",
      "vsock::1",
      "vsock:1:",
      "vsock:1:2:3",
      "vsock: 1",
      "VSOCK:1",
      "vsock:1 ",
      "tcp:1:2",
    ]) {
      refused(() => parseVsockListen(bad));
    }
    refused(() => parseVsockConnect("vsock:7000"));
  });

  it("accept only canonical text; refuse anything else with the typed error", () => {
    const text = fc.oneof(fc.string(), fc.stringMatching(/^[0-9:]{0,24}$/));
    fc.assert(
      fc.property(text, (s) => {
        const input = `vsock:${s}`;
        for (const parse of [parseVsockConnect, parseVsockListen]) {
          let t: SocketTarget;
          try {
            t = parse(input);
          } catch (e) {
            expect(e).toBeInstanceOf(TransportError);
            continue;
          }
          if (t.family !== "vsock") throw new Error("not vsock");
          const forms = [`vsock:${t.cid}:${t.port}`];
          if (parse === parseVsockListen && t.cid === VMADDR_CID_ANY) forms.push(`vsock:${t.port}`);
          expect(forms).toContain(input);
        }
      }),
    );
  });
});

describe("sockaddr bytes", () => {
  it("encode the Linux layouts and decode back", () => {
    fc.assert(
      fc.property(fc.oneof(vsock, unix), (t) => {
        const bytes = encodeSockaddr(t);
        expect(bytes.length).toBe(t.family === "vsock" ? SOCKADDR_VM_BYTES : SOCKADDR_UN_BYTES);
        expect(decodeSockaddr(bytes)).toEqual(t);
      }),
    );
  });

  it("lay out sockaddr_vm as family, reserved, port, cid, zero (little-endian)", () => {
    expect(Array.from(encodeSockaddr({ family: "vsock", cid: 0x01020304, port: 7000 }))).toEqual([
      AF_VSOCK,
      0,
      0,
      0,
      0x58,
      0x1b,
      0,
      0,
      4,
      3,
      2,
      1,
      0,
      0,
      0,
      0,
    ]);
  });

  it("decode what getsockname reports: a unix path cut at its length, NUL or not", () => {
    const full = encodeSockaddr({ family: "unix", path: "/run/e.sock" });
    expect(decodeSockaddr(full.subarray(0, 2 + 11 + 1))).toEqual({ family: "unix", path: "/run/e.sock" });
    expect(decodeSockaddr(full.subarray(0, 2 + 11))).toEqual({ family: "unix", path: "/run/e.sock" });
  });

  it("refuse what does not fit, with the typed error", () => {
    refused(() => encodeSockaddr({ family: "unix", path: "" }));
    refused(() => encodeSockaddr({ family: "unix", path: `/${"x".repeat(107)}` }));
    refused(() => encodeSockaddr({ family: "unix", path: "/a\0b" }));
    for (const n of [-1, 2 ** 32, 1.5, Number.NaN]) {
      refused(() => encodeSockaddr({ family: "vsock", cid: n, port: 1 }));
      refused(() => encodeSockaddr({ family: "vsock", cid: 1, port: n }));
    }
    refused(() => decodeSockaddr(new Uint8Array(1)));
    refused(() => decodeSockaddr(new Uint8Array([2, 0, 0, 0]))); // AF_INET: not ours
    refused(() => decodeSockaddr(encodeSockaddr({ family: "vsock", cid: 1, port: 1 }).subarray(0, 12)));
    refused(() => decodeSockaddr(new Uint8Array([1, 0, 0, 0x61]))); // abstract socket
    refused(() => decodeSockaddr(new Uint8Array([1, 0, 0xff, 0xfe, 0]))); // not UTF-8
  });

  it("decode arbitrary bytes to a target or the typed error, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 130 }), (b) => {
        try {
          const t = decodeSockaddr(b);
          expect(["vsock", "unix"]).toContain(t.family);
        } catch (e) {
          expect(e).toBeInstanceOf(TransportError);
        }
      }),
    );
  });
});
