/** Records one named check around a step, so a report lists what passed and where it stopped. */
import { CleanroomError } from "../errors.js";
import type { Check } from "../result.js";

export async function runCheck<T>(
  checks: Check[] | undefined,
  name: string,
  step: () => T | Promise<T>,
): Promise<T> {
  try {
    const value = await step();
    checks?.push({ name, ok: true });
    return value;
  } catch (e) {
    checks?.push({ name, ok: false, detail: e instanceof CleanroomError ? e.message : "unexpected error" });
    throw e;
  }
}
