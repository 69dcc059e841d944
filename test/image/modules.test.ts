import { describe, expect, it } from "vitest";
import { moduleDepends, moduleLoadOrder } from "../../scripts/image/modules.js";

describe("kernel module load order", () => {
  const deps: Record<string, string[]> = {
    sev_guest: ["tsm"],
    tsm: ["configfs"],
    configfs: [],
    virtio_net: ["net_failover"],
    net_failover: ["failover"],
    failover: [],
  };
  const depsOf = (n: string) => deps[n] ?? [];

  it("puts dependencies first and lists each module once", () => {
    expect(moduleLoadOrder(["sev-guest", "configfs", "virtio_net"], depsOf)).toEqual([
      "configfs",
      "tsm",
      "sev_guest",
      "failover",
      "net_failover",
      "virtio_net",
    ]);
  });

  it("skips modules a previous group already loads", () => {
    expect(moduleLoadOrder(["sev_guest"], depsOf, new Set(["configfs"]))).toEqual(["tsm", "sev_guest"]);
  });

  it("refuses a dependency cycle", () => {
    expect(() => moduleLoadOrder(["a"], (n) => (n === "a" ? ["b"] : ["a"]))).toThrow(
      expect.objectContaining({ code: "ERR_IMAGE_BUILD" }),
    );
  });

  it("reads depends= from .modinfo strings", () => {
    const modinfo = new TextEncoder().encode("\0license=GPL\0depends=tsm,net-failover\0name=sev_guest\0");
    expect(moduleDepends(modinfo)).toEqual(["tsm", "net_failover"]);
    expect(moduleDepends(new TextEncoder().encode("\0depends=\0name=configfs\0"))).toEqual([]);
  });
});
