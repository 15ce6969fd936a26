import http from "node:http";

/**
 * The baseline of `bench:ingest`: a bare Node HTTP server that reads the body, parses the JSON
 * and answers 202 with an id per item. No validation, no auth, no durability.
 */
const port = Number(process.env.PORT ?? 8899);
let counter = 0;
http
  .createServer((req, res) => {
    if (req.method === "GET") {
      res.end("ok");
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
      const count = Array.isArray(body) ? body.length : 1;
      const ids = Array.from({ length: count }, () => String(++counter));
      res.writeHead(202, { "content-type": "application/json" });
      res.end(JSON.stringify({ accepted: count, ids }));
    });
  })
  .listen(port, "127.0.0.1");
