import http from "node:http";

export interface LoadResult {
  requests: number;
  errors: number;
  statuses: Record<number, number>;
  seconds: number;
  latenciesMs: number[];
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** POSTs a JSON body over a keep-alive agent; resolves with the status (0 on a network error). */
export function postJson(
  agent: http.Agent,
  target: URL,
  headers: Record<string, string>,
  payload: string,
): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: "POST",
        agent,
        headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", () => resolve(0));
    req.end(payload);
  });
}

/**
 * Closed-loop HTTP load on loopback: `concurrency` workers each send the next request as soon as
 * the previous one is answered, for `seconds` (and at most `maxRequests`). Keep-alive connections.
 */
export async function runLoad(options: {
  url: string;
  headers: Record<string, string>;
  body: () => string;
  concurrency: number;
  seconds: number;
  maxRequests?: number;
  expectStatus?: number;
}): Promise<LoadResult> {
  const target = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let requests = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const maxRequests = options.maxRequests ?? Number.MAX_SAFE_INTEGER;

  const once = (payload: string): Promise<number> => postJson(agent, target, options.headers, payload);

  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && requests < maxRequests) {
      requests++;
      const payload = options.body();
      const t0 = performance.now();
      const status = await once(payload);
      latencies.push(performance.now() - t0);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== (options.expectStatus ?? 202)) errors++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { requests, errors, statuses, seconds: (performance.now() - started) / 1000, latenciesMs: latencies };
}
