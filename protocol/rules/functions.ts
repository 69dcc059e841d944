/**
 * The scalar functions and casts the aggregation rule admits. Each one's output is bounded by its
 * inputs' size (no padding, repetition or replacement that a parameter or literal could inflate),
 * computes on one row, and touches nothing outside the row.
 */

/** Arithmetic on numbers, dates and intervals; usable on dimensions and on aggregates. */
const ARITHMETIC = ["+", "-", "*", "/", "//", "%"];

/** Numeric functions, usable on dimensions and on aggregates. */
const NUMERIC = ["round", "floor", "ceil", "ceiling", "abs", "sign", "trunc", "least", "greatest", "nullif"];

/** Text functions of dimensions: their output is never longer than their inputs together. */
const TEXT = [
  "lower",
  "upper",
  "lcase",
  "ucase",
  "trim",
  "ltrim",
  "rtrim",
  "substring",
  "substr",
  "left",
  "right",
  "length",
  "concat",
  "||",
  "prefix",
  "starts_with",
  "suffix",
  "ends_with",
  "contains",
  "~~",
  "!~~",
  "~~*",
  "!~~*",
];

/** Date and time parts and arithmetic of dimensions; intervals from constants (INTERVAL 30 DAY). */
const TIME = [
  "date_trunc",
  "datetrunc",
  "date_part",
  "datepart",
  "year",
  "month",
  "day",
  "dayofweek",
  "isodow",
  "dayofyear",
  "week",
  "weekofyear",
  "quarter",
  "hour",
  "minute",
  "date_diff",
  "datediff",
  "to_days",
  "to_hours",
  "to_minutes",
  "to_seconds",
  "to_weeks",
  "to_months",
  "to_years",
];

/** Functions over dimension values (and constants). */
export const DIMENSION_FUNCTIONS = new Set([...ARITHMETIC, ...NUMERIC, ...TEXT, ...TIME]);

/**
 * Functions that may combine aggregates into an output (ratios, rounding). The enclave computes
 * them in DOUBLE, so integer division (`//`), whose meaning would change, is not among them.
 */
export const AGGREGATE_COMBINERS = new Set([...ARITHMETIC.filter((f) => f !== "//"), ...NUMERIC]);

/** DuckDB's integer types, signed and unsigned. */
export const INTEGER_TYPES: ReadonlySet<string> = new Set([
  "TINYINT",
  "SMALLINT",
  "INTEGER",
  "BIGINT",
  "HUGEINT",
  "UTINYINT",
  "USMALLINT",
  "UINTEGER",
  "UBIGINT",
  "UHUGEINT",
]);

/** Scalar types other than integers that a cast may target and an output may have. */
const OTHER_SCALARS = [
  "VARCHAR",
  "BOOLEAN",
  "FLOAT",
  "DOUBLE",
  "DECIMAL",
  "DATE",
  "TIMESTAMP",
  "TIMESTAMP WITH TIME ZONE",
  "INTERVAL",
];

/** Cast targets: scalar types only (never a list, struct, map, union or blob). */
export const CAST_TYPES: ReadonlySet<string> = new Set([...INTEGER_TYPES, ...OTHER_SCALARS]);

/** Output column types that may leave the room: scalars (with DuckDB's timestamp precisions). */
export const SCALAR_OUTPUT_TYPES: ReadonlySet<string> = new Set([
  ...CAST_TYPES,
  "TIMESTAMP_S",
  "TIMESTAMP_MS",
  "TIMESTAMP_NS",
]);

/** Aggregates the custom rule's SQL may use inside (the released outputs are the dp policy's). */
const CUSTOM_AGGREGATES = [
  "count",
  "count_star",
  "sum",
  "avg",
  "min",
  "max",
  "median",
  "first",
  "last",
  "any_value",
  "arg_max",
  "arg_min",
  "bool_and",
  "bool_or",
  "stddev",
  "stddev_samp",
  "stddev_pop",
  "variance",
  "var_samp",
  "var_pop",
];

/** The aggregates of CUSTOM_FUNCTIONS (an expression holding one cannot run under TRY). */
export const CUSTOM_AGGREGATE_NAMES: ReadonlySet<string> = new Set(CUSTOM_AGGREGATES);

/** Window functions the custom rule's SQL may use inside. */
const WINDOWS = [
  "row_number",
  "rank",
  "dense_rank",
  "percent_rank",
  "cume_dist",
  "ntile",
  "lag",
  "lead",
  "first_value",
  "last_value",
  "nth_value",
];

/** More bounded scalars for the custom rule: math, time construction, fixed-format text, hashing. */
const CUSTOM_SCALARS = [
  "exp",
  "ln",
  "log",
  "log10",
  "log2",
  "sqrt",
  "power",
  "pow",
  "epoch",
  "epoch_ms",
  "make_date",
  "make_timestamp",
  "strftime",
  "concat_ws",
  "hash",
  "isnan",
  "isfinite",
];

/**
 * Functions the custom rule admits: every output bounded by its inputs (no padding, repetition,
 * replacement or list building that a literal or parameter could inflate past the engine's
 * memory limit, where DuckDB cannot interrupt a scalar).
 */
export const CUSTOM_FUNCTIONS = new Set([
  ...DIMENSION_FUNCTIONS,
  ...CUSTOM_AGGREGATES,
  ...WINDOWS,
  ...CUSTOM_SCALARS,
]);
