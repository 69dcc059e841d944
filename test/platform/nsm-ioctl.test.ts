/**
 * The ioctl plumbing without a Nitro host: the request number, the struct layout (checked
 * against koffi's own C layout of the uapi struct), and the real koffi ioctl call made on a
 * device that is not the NSM, which must fail cleanly with the kernel's errno.
 */
import koffi from "koffi";
import { describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { encodeAttestationRequest } from "../../enclave/platform/nsm-cbor.js";
import {
  createIoctlTransport,
  iowr,
  NSM_IOCTL_RAW,
  NSM_RAW_SIZE,
  packNsmRaw,
  unpackNsmRaw,
} from "../../enclave/platform/nsm-ioctl.js";
import { PlatformError } from "../../enclave/platform/platform-error.js";

describe("NSM ioctl number", () => {
  it("is _IOWR(0x0A, 0, struct nsm_raw) = 0xC0200A00, as include/uapi/linux/nsm.h gives", () => {
    expect(NSM_IOCTL_RAW).toBe(0xc0200a00);
    // The same macro yields SEV's SNP_GET_REPORT, _IOWR('S', 0, 32 bytes), a known constant.
    expect(iowr(0x53, 0, 32)).toBe(0xc0205300);
  });
});

describe("struct nsm_raw packing", () => {
  const iovec = koffi.struct("nsm_iovec_test", { addr: "uint64_t", len: "uint64_t" });
  const nsmRaw = koffi.struct("nsm_raw_test", { request: iovec, response: iovec });

  it("matches the C layout koffi computes for the uapi struct", () => {
    expect(koffi.sizeof(nsmRaw)).toBe(NSM_RAW_SIZE);
    expect(koffi.offsetof(nsmRaw, "request")).toBe(0);
    expect(koffi.offsetof(nsmRaw, "response")).toBe(16);
    expect(koffi.offsetof(iovec, "len")).toBe(8);
  });

  it("puts real buffer addresses and lengths where the driver reads them", () => {
    const req = koffi.alloc("uint8_t", 100);
    const res = koffi.alloc("uint8_t", 0x3000);
    const msg = koffi.alloc("uint8_t", NSM_RAW_SIZE);
    try {
      const packed = packNsmRaw({
        requestAddr: koffi.address(req),
        requestLen: 100,
        responseAddr: koffi.address(res),
        responseLen: 0x3000,
      });
      new Uint8Array(koffi.view(msg, NSM_RAW_SIZE)).set(packed);
      const seen = koffi.decode(msg, nsmRaw) as {
        request: { addr: bigint | number; len: bigint | number };
        response: { addr: bigint | number; len: bigint | number };
      };
      expect(BigInt(seen.request.addr)).toBe(koffi.address(req));
      expect(BigInt(seen.request.len)).toBe(100n);
      expect(BigInt(seen.response.addr)).toBe(koffi.address(res));
      expect(BigInt(seen.response.len)).toBe(0x3000n);
    } finally {
      koffi.free(msg);
      koffi.free(res);
      koffi.free(req);
    }
  });

  it("unpacks what it packs, little-endian, and refuses other sizes", () => {
    const m = {
      requestAddr: 0x1122334455667788n,
      requestLen: 7,
      responseAddr: 0x99aabbccddeeff00n,
      responseLen: 0x3000,
    };
    const b = packNsmRaw(m);
    expect(toHex(b.subarray(0, 8))).toBe("8877665544332211");
    expect(toHex(b.subarray(8, 16))).toBe("0700000000000000");
    expect(toHex(b.subarray(24, 32))).toBe("0030000000000000");
    expect(unpackNsmRaw(b)).toEqual(m);
    expect(() => unpackNsmRaw(new Uint8Array(31))).toThrow(PlatformError);
  });
});

describe("koffi ioctl transport without a Nitro host", () => {
  it("reports a missing device as unavailable", async () => {
    await expect(createIoctlTransport("/nonexistent/nsm")).rejects.toMatchObject({
      code: "ERR_PLATFORM",
      reason: "unavailable",
      detail: "ENOENT",
    });
  });

  it("makes the real ioctl on a device that is not the NSM and maps the kernel's ENOTTY", async () => {
    const transport = await createIoctlTransport("/dev/null");
    const request = encodeAttestationRequest({ userData: new Uint8Array(64), nonce: new Uint8Array(16) });
    await expect(transport(request)).rejects.toMatchObject({
      code: "ERR_PLATFORM",
      reason: "refused",
      detail: "ENOTTY",
    });
  });

  it("refuses a request larger than the driver's 4096-byte buffer before calling it", async () => {
    const transport = await createIoctlTransport("/dev/null");
    await expect(transport(new Uint8Array(0x1001))).rejects.toMatchObject({
      reason: "refused",
      detail: undefined,
    });
  });
});
