/** The demo's datasets, queries and data generator at test size (2 000 publisher users). */
import { useCaseContract as demoContract, useCaseRows } from "../../scripts/demo/usecases.js";

export {
  audienceInsight,
  audienceOverlap,
  closedLoop,
  exposures,
  hashedEmail,
  K,
  lastTouch,
  purchases,
  useCaseQueries,
} from "../../scripts/demo/usecases.js";

export function useCaseCsv(identities = 2000): { purchases: string; exposures: string } {
  return {
    purchases: [...useCaseRows("purchases", { identities })].join(""),
    exposures: [...useCaseRows("exposures", { identities })].join(""),
  };
}

/** The demo contract with placeholder keys: only the SQL engine reads it in these tests. */
export const useCaseContract = demoContract(
  ["advertiser", "publisher"].map((id) => ({
    id,
    name: id,
    signingKey: { kty: "EC", crv: "P-256", x: "", y: "" },
    ageRecipient: "age1placeholder",
  })),
);
