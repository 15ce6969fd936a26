/**
 * CommonJS for a worker's source (`${BULK_WRITES_SOURCE}` in its template, as the indexer and the
 * lead-profile applier do): better-sqlite3 writes of many rows, `BULK` rows per statement
 * execution. One execution per row costs about twice as much per row as one per 64.
 *
 * - `bulkWriter(db, head, tuple, tail = "")` prepares `head + tuple + tail` and the same with
 *   `BULK` tuples (`head`: up to `VALUES `; `tail`: an `ON CONFLICT` clause, say). It sets the
 *   connection's `temp_store` to memory: `writeNew`'s savepoints would otherwise keep their
 *   statement journal in a temporary file (2.4 KB written per activity under batched ingest).
 * - `writeAll(writer, count, argsOf)` writes rows 0..count-1; `argsOf(i, out)` pushes row i's
 *   values onto `out`.
 * - `writeNew(writer, count, argsOf, onNew)`, for `INSERT OR IGNORE`: also calls `onNew(i)` for
 *   each row it added, in order. A bulk that adds fewer rows than it holds (a key already there,
 *   or twice in the bulk) is rolled back to a savepoint and written row by row, which tells
 *   which ones; so "first write wins" holds exactly as with one row per execution.
 */
export const BULK_WRITES_SOURCE = String.raw`
const BULK = 64;
function bulkWriter(db, head, tuple, tail = "") {
  db.pragma("temp_store = MEMORY");
  return {
    one: db.prepare(head + tuple + tail),
    many: db.prepare(head + Array(BULK).fill(tuple).join(", ") + tail),
    savepoint: db.prepare("SAVEPOINT bulk"),
    release: db.prepare("RELEASE bulk"),
    undo: db.prepare("ROLLBACK TO bulk"),
  };
}
function bulkArgs(argsOf, from, to) {
  const args = [];
  for (let i = from; i < to; i++) argsOf(i, args);
  return args;
}
function writeAll(writer, count, argsOf) {
  let i = 0;
  for (; i + BULK <= count; i += BULK) writer.many.run(bulkArgs(argsOf, i, i + BULK));
  for (; i < count; i++) writer.one.run(bulkArgs(argsOf, i, i + 1));
}
function writeNew(writer, count, argsOf, onNew) {
  const oneByOne = (from, to) => {
    for (let i = from; i < to; i++) if (writer.one.run(bulkArgs(argsOf, i, i + 1)).changes !== 0) onNew(i);
  };
  let i = 0;
  for (; i + BULK <= count; i += BULK) {
    writer.savepoint.run();
    if (writer.many.run(bulkArgs(argsOf, i, i + BULK)).changes === BULK) {
      writer.release.run();
      for (let j = i; j < i + BULK; j++) onNew(j);
      continue;
    }
    writer.undo.run();
    writer.release.run();
    oneByOne(i, i + BULK);
  }
  oneByOne(i, count);
}
`;
