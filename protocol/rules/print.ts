/**
 * Prints parse-tree expressions back as short SQL text for refusal reasons and the review. Covers
 * the node classes the analysis rules admit; anything else prints as its class in angle brackets
 * (the review then shows that the engine saw something the grammar does not name).
 */
import { type AstNode, isNode, lower } from "./tree.js";

const COMPARISONS: Record<string, string> = {
  COMPARE_EQUAL: "=",
  COMPARE_NOTEQUAL: "<>",
  COMPARE_LESSTHAN: "<",
  COMPARE_GREATERTHAN: ">",
  COMPARE_LESSTHANOREQUALTO: "<=",
  COMPARE_GREATERTHANOREQUALTO: ">=",
  COMPARE_DISTINCT_FROM: "IS DISTINCT FROM",
  COMPARE_NOT_DISTINCT_FROM: "IS NOT DISTINCT FROM",
};

/** Longest text a printed expression gets in a message; the rest is elided. */
const MAX_CHARS = 200;

function constant(node: AstNode): string {
  const v = isNode(node.value) ? node.value : {};
  if (v.is_null) return "NULL";
  const type = isNode(v.type) ? String(v.type.id) : "";
  const value = v.value;
  if (type === "VARCHAR") return `'${String(value).replaceAll("'", "''")}'`;
  if (typeof value === "object" && value !== null) return `<${type.toLowerCase()} constant>`;
  return String(value);
}

function typeName(t: unknown): string {
  return isNode(t) ? String(t.id) : "?";
}

function children(node: AstNode): AstNode[] {
  return Array.isArray(node.children) ? (node.children as AstNode[]) : [];
}

function print(node: unknown): string {
  if (!isNode(node)) return "<?>";
  switch (node.class) {
    case "COLUMN_REF":
      return (node.column_names as string[]).join(".");
    case "CONSTANT":
      return constant(node);
    case "PARAMETER":
      return `$${String(node.identifier)}`;
    case "STAR":
      return "*";
    case "CAST":
      return `${node.try_cast ? "TRY_CAST" : "CAST"}(${print(node.child)} AS ${typeName(node.cast_type)})`;
    case "COMPARISON":
      return `${print(node.left)} ${COMPARISONS[String(node.type)] ?? "?"} ${print(node.right)}`;
    case "CONJUNCTION":
      return children(node)
        .map((c) => `(${print(c)})`)
        .join(node.type === "CONJUNCTION_AND" ? " AND " : " OR ");
    case "BETWEEN":
      return `${print(node.input)} BETWEEN ${print(node.lower)} AND ${print(node.upper)}`;
    case "CASE": {
      const checks = Array.isArray(node.case_checks) ? (node.case_checks as AstNode[]) : [];
      const whens = checks.map((c) => `WHEN ${print(c.when_expr)} THEN ${print(c.then_expr)}`).join(" ");
      return `CASE ${whens} ELSE ${print(node.else_expr)} END`;
    }
    case "OPERATOR": {
      const [first, ...rest] = children(node);
      switch (node.type) {
        case "OPERATOR_NOT":
          return `NOT (${print(first)})`;
        case "OPERATOR_IS_NULL":
          return `${print(first)} IS NULL`;
        case "OPERATOR_IS_NOT_NULL":
          return `${print(first)} IS NOT NULL`;
        case "COMPARE_IN":
          return `${print(first)} IN (${rest.map(print).join(", ")})`;
        case "COMPARE_NOT_IN":
          return `${print(first)} NOT IN (${rest.map(print).join(", ")})`;
        case "OPERATOR_COALESCE":
          return `coalesce(${children(node).map(print).join(", ")})`;
        default:
          return `<${lower(node.type)}>`;
      }
    }
    case "FUNCTION": {
      const name = String(node.function_name);
      const args = children(node);
      if (node.is_operator && args.length === 2) return `(${print(args[0])} ${name} ${print(args[1])})`;
      if (node.is_operator && args.length === 1) return `${name}${print(args[0])}`;
      if (lower(name) === "count_star") return "count(*)";
      const filter = isNode(node.filter) ? ` FILTER (WHERE ${print(node.filter)})` : "";
      return `${name}(${node.distinct ? "DISTINCT " : ""}${args.map(print).join(", ")})${filter}`;
    }
    default:
      return `<${lower(node.class)}>`;
  }
}

/** The expression as SQL-like text, at most MAX_CHARS characters. */
export function printExpression(node: unknown): string {
  const text = print(node);
  return text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS - 1)}…` : text;
}
