/**
 * A small SOQL subset for the fake Salesforce server: SELECT fields FROM object [WHERE …]
 * [ORDER BY …] [LIMIT n]. WHERE supports AND / OR / NOT, parentheses, = != < <= > >= and IN,
 * with string, number, boolean, null and unquoted dateTime literals — what incremental sync needs.
 * https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm
 */
export type SoqlValue = string | number | boolean | null;

export type SoqlExpr =
  | { kind: "and"; left: SoqlExpr; right: SoqlExpr }
  | { kind: "or"; left: SoqlExpr; right: SoqlExpr }
  | { kind: "not"; inner: SoqlExpr }
  | { kind: "cmp"; field: string; op: "=" | "!=" | "<" | "<=" | ">" | ">="; value: SoqlLiteral }
  | { kind: "in"; field: string; values: SoqlLiteral[] };

export type SoqlLiteral =
  | { type: "string"; value: string }
  | { type: "number"; value: number }
  | { type: "boolean"; value: boolean }
  | { type: "null" }
  | { type: "datetime"; value: number };

export interface SoqlQuery {
  fields: string[];
  object: string;
  where?: SoqlExpr;
  orderBy: { field: string; desc: boolean }[];
  limit?: number;
}

export class SoqlError extends Error {
  constructor(
    message: string,
    readonly errorCode = "MALFORMED_QUERY",
  ) {
    super(message);
  }
}

type Token = { t: "word" | "string" | "op" | "punct"; v: string };

function tokenize(soql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < soql.length) {
    const ch = soql[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === "'") {
      let value = "";
      i++;
      while (i < soql.length && soql[i] !== "'") {
        if (soql[i] === "\\" && i + 1 < soql.length) i++;
        value += soql[i];
        i++;
      }
      if (i >= soql.length) throw new SoqlError("unterminated string literal");
      i++;
      tokens.push({ t: "string", v: value });
    } else if (ch === "(" || ch === ")" || ch === ",") {
      tokens.push({ t: "punct", v: ch });
      i++;
    } else if (ch === "<" || ch === ">" || ch === "!" || ch === "=") {
      const two = soql.slice(i, i + 2);
      if (two === "<=" || two === ">=" || two === "!=") {
        tokens.push({ t: "op", v: two });
        i += 2;
      } else {
        tokens.push({ t: "op", v: ch });
        i++;
      }
    } else {
      let word = "";
      while (i < soql.length && /[A-Za-z0-9_.:+\-]/.test(soql[i])) {
        word += soql[i];
        i++;
      }
      if (word === "") throw new SoqlError(`unexpected character '${ch}'`);
      tokens.push({ t: "word", v: word });
    }
  }
  return tokens;
}

const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$/;

export function parseSoqlDate(text: string): number {
  const normalized = text.replace(/([+-]\d{2})(\d{2})$/, "$1:$2");
  const ms = Date.parse(normalized);
  if (Number.isNaN(ms)) throw new SoqlError(`invalid dateTime ${text}`);
  return ms;
}

export function parseSoql(soql: string): SoqlQuery {
  const tokens = tokenize(soql);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isWord = (word: string): boolean => peek()?.t === "word" && peek()?.v.toUpperCase() === word;
  const expectWord = (word: string): void => {
    if (!isWord(word)) throw new SoqlError(`expected ${word} near '${peek()?.v ?? "end"}'`);
    pos++;
  };
  const takeIdent = (): string => {
    const token = peek();
    if (!token || token.t !== "word") throw new SoqlError(`expected a field name near '${token?.v ?? "end"}'`);
    pos++;
    return token.v;
  };

  expectWord("SELECT");
  const fields: string[] = [takeIdent()];
  while (peek()?.v === ",") {
    pos++;
    fields.push(takeIdent());
  }
  expectWord("FROM");
  const object = takeIdent();

  const literal = (): SoqlLiteral => {
    const token = peek();
    if (!token) throw new SoqlError("expected a value");
    pos++;
    if (token.t === "string") return { type: "string", value: token.v };
    if (token.t !== "word") throw new SoqlError(`unexpected '${token.v}'`);
    const upper = token.v.toUpperCase();
    if (upper === "TRUE" || upper === "FALSE") return { type: "boolean", value: upper === "TRUE" };
    if (upper === "NULL") return { type: "null" };
    if (DATETIME.test(token.v)) return { type: "datetime", value: parseSoqlDate(token.v) };
    const num = Number(token.v);
    if (!Number.isNaN(num)) return { type: "number", value: num };
    throw new SoqlError(`unexpected token '${token.v}'`);
  };

  const factor = (depth: number): SoqlExpr => {
    if (depth > 50) throw new SoqlError("expression too deep");
    if (peek()?.v === "(") {
      pos++;
      const inner = orExpr(depth + 1);
      if (peek()?.v !== ")") throw new SoqlError("expected )");
      pos++;
      return inner;
    }
    if (isWord("NOT")) {
      pos++;
      return { kind: "not", inner: factor(depth + 1) };
    }
    const field = takeIdent();
    if (isWord("IN")) {
      pos++;
      if (peek()?.v !== "(") throw new SoqlError("expected ( after IN");
      pos++;
      const values: SoqlLiteral[] = [literal()];
      while (peek()?.v === ",") {
        pos++;
        values.push(literal());
      }
      if (peek()?.v !== ")") throw new SoqlError("expected )");
      pos++;
      return { kind: "in", field, values };
    }
    const op = peek();
    if (!op || op.t !== "op") throw new SoqlError(`expected an operator after ${field}`);
    pos++;
    if (op.v !== "=" && op.v !== "!=" && op.v !== "<" && op.v !== "<=" && op.v !== ">" && op.v !== ">=") {
      throw new SoqlError(`unknown operator ${op.v}`);
    }
    return { kind: "cmp", field, op: op.v, value: literal() };
  };
  const andExpr = (depth: number): SoqlExpr => {
    let left = factor(depth);
    while (isWord("AND")) {
      pos++;
      left = { kind: "and", left, right: factor(depth) };
    }
    return left;
  };
  const orExpr = (depth: number): SoqlExpr => {
    let left = andExpr(depth);
    while (isWord("OR")) {
      pos++;
      left = { kind: "or", left, right: andExpr(depth) };
    }
    return left;
  };

  const query: SoqlQuery = { fields, object, orderBy: [] };
  if (isWord("WHERE")) {
    pos++;
    query.where = orExpr(0);
  }
  if (isWord("ORDER")) {
    pos++;
    expectWord("BY");
    for (;;) {
      const field = takeIdent();
      let desc = false;
      if (isWord("ASC")) pos++;
      else if (isWord("DESC")) {
        pos++;
        desc = true;
      }
      query.orderBy.push({ field, desc });
      if (peek()?.v !== ",") break;
      pos++;
    }
  }
  if (isWord("LIMIT")) {
    pos++;
    const lit = literal();
    if (lit.type !== "number") throw new SoqlError("LIMIT needs a number");
    query.limit = lit.value;
  }
  if (pos !== tokens.length) throw new SoqlError(`unexpected token '${tokens[pos].v}'`);
  return query;
}

/** Field names an expression refers to (for INVALID_FIELD checks). */
export function exprFields(expr: SoqlExpr | undefined, out: Set<string> = new Set()): Set<string> {
  if (!expr) return out;
  if (expr.kind === "and" || expr.kind === "or") {
    exprFields(expr.left, out);
    exprFields(expr.right, out);
  } else if (expr.kind === "not") exprFields(expr.inner, out);
  else out.add(expr.field);
  return out;
}

function comparable(
  value: SoqlValue | undefined,
  literal: SoqlLiteral,
): [number | string | boolean | null, number | string | boolean | null] {
  if (literal.type === "null") return [value ?? null, null];
  if (literal.type === "datetime") return [typeof value === "string" ? parseSoqlDate(value) : null, literal.value];
  return [value ?? null, literal.value];
}

export function evaluate(expr: SoqlExpr, record: Readonly<Record<string, SoqlValue>>): boolean {
  switch (expr.kind) {
    case "and":
      return evaluate(expr.left, record) && evaluate(expr.right, record);
    case "or":
      return evaluate(expr.left, record) || evaluate(expr.right, record);
    case "not":
      return !evaluate(expr.inner, record);
    case "in":
      return expr.values.some((literal) => {
        const [a, b] = comparable(record[expr.field], literal);
        return a === b;
      });
    case "cmp": {
      const [a, b] = comparable(record[expr.field], expr.value);
      if (expr.op === "=") return a === b;
      if (expr.op === "!=") return a !== b;
      if (a === null || b === null) return false;
      if (expr.op === "<") return a < b;
      if (expr.op === "<=") return a <= b;
      if (expr.op === ">") return a > b;
      return a >= b;
    }
  }
}

export function compareBy(
  orderBy: SoqlQuery["orderBy"],
): (a: Record<string, SoqlValue>, b: Record<string, SoqlValue>) => number {
  return (a, b) => {
    for (const { field, desc } of orderBy) {
      const x = a[field] ?? null;
      const y = b[field] ?? null;
      if (x === y) continue;
      if (x === null) return desc ? 1 : -1;
      if (y === null) return desc ? -1 : 1;
      const cmp = x < y ? -1 : 1;
      return desc ? -cmp : cmp;
    }
    return 0;
  };
}
