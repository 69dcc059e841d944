/** Small formatting helpers for the page. */

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function when(iso: string | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function short(hex: string | undefined, n = 12): string {
  return hex ? `${hex.slice(0, n)}…` : "";
}

/** A number for people: thousands separated, at most `digits` decimals. */
export function num(v: unknown, digits = 4): string {
  if (typeof v === "number") return v.toLocaleString(undefined, { maximumFractionDigits: digits });
  return v === null || v === undefined ? "—" : String(v);
}

export function percent(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)} %`;
}
