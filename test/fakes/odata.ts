/**
 * A small OData v4 `$filter` subset for the fake Dynamics server: `and`, `or`, `not`,
 * parentheses, `eq ne gt ge lt le`, string / number / boolean / null / dateTimeOffset literals.
 * https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/filter-rows
 */
export type ODataValue = string | number | boolean | null;

export type FilterExpr =
  | { kind: "and"; left: FilterExpr; right: FilterExpr }
  | { kind: "or"; left: FilterExpr; right: FilterExpr }
  | { kind: "not"; inner: FilterExpr }
  | { kind: "cmp"; field: string; op: "eq" | "ne" | "gt" | "ge" | "lt" | "le"; value: ODataValue; isDate: boolean };

export class ODataError extends Error {
  constructor(
    message: string,
    readonly code = "0x80060888",
  ) {
    super(message);
  }
}

const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === " ") i++;
    else if (ch === "(" || ch === ")") {
      tokens.push(ch);
      i++;
    } else if (ch === "'") {
      let value = "'";
      i++;
      for (;;) {
        if (i >= text.length) throw new ODataError("unterminated string literal", "0x80060888");
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i];
        i++;
      }
      tokens.push(value + "'");
    } else {
      let word = "";
      while (i < text.length && text[i] !== " " && text[i] !== "(" && text[i] !== ")") {
        word += text[i];
        i++;
      }
      tokens.push(word);
    }
  }
  return tokens;
}

export function parseFilter(text: string): FilterExpr {
  const tokens = tokenize(text);
  let pos = 0;
  const literal = (token: string): { value: ODataValue; isDate: boolean } => {
    if (token.startsWith("'")) return { value: token.slice(1, -1), isDate: false };
    if (token === "true" || token === "false") return { value: token === "true", isDate: false };
    if (token === "null") return { value: null, isDate: false };
    if (DATETIME.test(token)) return { value: Date.parse(token), isDate: true };
    const num = Number(token);
    if (Number.isNaN(num)) throw new ODataError(`Syntax error at '${token}'`);
    return { value: num, isDate: false };
  };
  const factor = (depth: number): FilterExpr => {
    if (depth > 50) throw new ODataError("filter too deep");
    const token = tokens[pos];
    if (token === "(") {
      pos++;
      const inner = orExpr(depth + 1);
      if (tokens[pos] !== ")") throw new ODataError("')' expected");
      pos++;
      return inner;
    }
    if (token === "not") {
      pos++;
      return { kind: "not", inner: factor(depth + 1) };
    }
    const field = tokens[pos++];
    const op = tokens[pos++];
    const raw = tokens[pos++];
    if (field === undefined || op === undefined || raw === undefined)
      throw new ODataError("incomplete filter expression");
    if (op !== "eq" && op !== "ne" && op !== "gt" && op !== "ge" && op !== "lt" && op !== "le") {
      throw new ODataError(`Unknown operator '${op}'`);
    }
    const { value, isDate } = literal(raw);
    return { kind: "cmp", field, op, value, isDate };
  };
  const andExpr = (depth: number): FilterExpr => {
    let left = factor(depth);
    while (tokens[pos] === "and") {
      pos++;
      left = { kind: "and", left, right: factor(depth) };
    }
    return left;
  };
  const orExpr = (depth: number): FilterExpr => {
    let left = andExpr(depth);
    while (tokens[pos] === "or") {
      pos++;
      left = { kind: "or", left, right: andExpr(depth) };
    }
    return left;
  };
  const expr = orExpr(0);
  if (pos !== tokens.length) throw new ODataError(`Syntax error at '${tokens[pos]}'`);
  return expr;
}

export function filterFields(expr: FilterExpr, out: Set<string> = new Set()): Set<string> {
  if (expr.kind === "and" || expr.kind === "or") {
    filterFields(expr.left, out);
    filterFields(expr.right, out);
  } else if (expr.kind === "not") filterFields(expr.inner, out);
  else out.add(expr.field);
  return out;
}

export function matches(expr: FilterExpr, record: Readonly<Record<string, ODataValue>>): boolean {
  if (expr.kind === "and") return matches(expr.left, record) && matches(expr.right, record);
  if (expr.kind === "or") return matches(expr.left, record) || matches(expr.right, record);
  if (expr.kind === "not") return !matches(expr.inner, record);
  const raw = record[expr.field] ?? null;
  const left = expr.isDate && typeof raw === "string" ? Date.parse(raw) : raw;
  const right = expr.value;
  if (expr.op === "eq") return left === right;
  if (expr.op === "ne") return left !== right;
  if (left === null || right === null) return false;
  if (expr.op === "gt") return left > right;
  if (expr.op === "ge") return left >= right;
  if (expr.op === "lt") return left < right;
  return left <= right;
}
