import { describe, expect, it } from "vitest";
import { parseListen } from "../../enclave/server.js";
import { cleanroomArgs, kernelCmdline, type Platform } from "../../scripts/image/cmdline.js";

describe("kernel command line", () => {
  it("carries the platform flag the guest init reads back", () => {
    for (const platform of ["sim", "sev-snp", "nitro"] as Platform[]) {
      const line = kernelCmdline({ platform, listen: "0.0.0.0:7000", ip: "10.0.2.15/24" });
      const args = cleanroomArgs(line);
      expect(args.get("cleanroom.platform")).toBe(platform);
      expect(args.get("cleanroom.listen")).toBe(platform === "nitro" ? "vsock:7000" : "0.0.0.0:7000");
      expect(args.get("cleanroom.ip")).toBe("10.0.2.15/24");
    }
  });

  it("has a Nitro enclave, which has no network, listen on vsock at the port asked for", () => {
    const listen = (o: { listen?: string }) => cleanroomArgs(kernelCmdline({ platform: "nitro", ...o }));
    expect(listen({}).get("cleanroom.listen")).toBe("vsock:7000");
    expect(listen({ listen: "0.0.0.0:7100" }).get("cleanroom.listen")).toBe("vsock:7100");
    expect(listen({ listen: "vsock:16:7200" }).get("cleanroom.listen")).toBe("vsock:16:7200");
    // What the command line names is what the enclave's --listen parser takes.
    expect(parseListen(listen({}).get("cleanroom.listen")!)).toEqual({
      socket: { family: "vsock", cid: 0xffffffff, port: 7000 },
    });
    expect(() => kernelCmdline({ platform: "nitro", listen: "0.0.0.0" })).toThrow(
      expect.objectContaining({ code: "ERR_IMAGE_BUILD" }),
    );
    expect(cleanroomArgs(kernelCmdline({ platform: "sev-snp" })).has("cleanroom.listen")).toBe(false);
  });

  it("differs between platforms, so a sim image never measures like a production one", () => {
    expect(kernelCmdline({ platform: "sim" })).not.toBe(kernelCmdline({ platform: "sev-snp" }));
  });

  it("refuses unknown platforms and values that would add words", () => {
    expect(() => kernelCmdline({ platform: "prod" as Platform })).toThrow(
      expect.objectContaining({ code: "ERR_IMAGE_BUILD" }),
    );
    expect(() => kernelCmdline({ platform: "sim", listen: "0.0.0.0:1 init=/bin/sh" })).toThrow(
      expect.objectContaining({ code: "ERR_IMAGE_BUILD" }),
    );
  });

  it("ignores other parameters", () => {
    expect([...cleanroomArgs("console=ttyS0 cleanroom.platform=sim quiet cleanroomx=1\n").entries()]).toEqual(
      [["cleanroom.platform", "sim"]],
    );
  });
});
