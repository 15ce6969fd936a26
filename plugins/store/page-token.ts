import { ValidationError } from "../../core/errors";

/** Keyset cursor: the (occurredAt, id) of the last item returned; the next page starts after it. */
export interface Cursor {
  occurredAt: number;
  id: string;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.occurredAt}.${cursor.id}`, "utf8").toString("base64url");
}

export function decodeCursor(token: string): Cursor {
  const text = Buffer.from(token, "base64url").toString("utf8");
  const dot = text.indexOf(".");
  const occurredAt = Number(text.slice(0, dot));
  const id = text.slice(dot + 1);
  if (dot < 1 || !Number.isSafeInteger(occurredAt) || !/^[0-9A-Z]{26}$/.test(id)) {
    throw new ValidationError("pageToken is not a token this API issued", [
      { field: "pageToken", code: "invalid_page_token", message: "is not a token this API issued" },
    ]);
  }
  return { occurredAt, id };
}
