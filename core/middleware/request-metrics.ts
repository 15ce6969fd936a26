import { Middlewares, type ActionSchema, type Context, type Middleware, type ServiceBroker } from "moleculer";

/** Moleculer 0.14's internal middlewares, in the order its broker adds them. */
export const INTERNAL_MIDDLEWARES = [
  "ActionHook",
  "Validator",
  "Bulkhead",
  "Cacher",
  "ContextTracker",
  "CircuitBreaker",
  "Timeout",
  "Retry",
  "Fallback",
  "ErrorHandler",
  "Tracing",
  "Metrics",
  "Debounce",
  "Throttle",
] as const;

const REQUEST_TOTAL = "moleculer.request.total";
const REQUEST_ACTIVE = "moleculer.request.active";
const REQUEST_ERROR_TOTAL = "moleculer.request.error.total";
const REQUEST_TIME = "moleculer.request.time";

/** Timed calls per action and second: request-time quantiles from a uniform sample. */
const TIMED_PER_SECOND = 50;
const FLUSH_MS = 1000;

interface Series {
  labels: { service: string | null; action: string; caller: null; type: "local" };
  /** Calls since the last flush. */
  total: number;
  active: number;
  /** Every `stride`-th call is timed. */
  stride: number;
  sinceTimed: number;
}

/**
 * Moleculer's Metrics middleware with a cheaper hot path for local actions. The stock one makes
 * five label-hashed registry updates per action call (total, active ×2, levels, a histogram
 * timer), which costs a single-activity request more than its validation. This one keeps plain
 * counters per action and adds them to the registry once a second, times a uniform sample of at
 * most 50 calls per action and second (the request-time quantiles stay unbiased; the count of
 * calls is `moleculer.request.total`), and records errors as they happen. Metric names and the
 * `service`/`action`/`type` labels are unchanged; `caller` is not recorded for local actions, and
 * `moleculer.request.levels` is not kept. Remote actions, events and transit metrics are the
 * stock middleware's.
 */
export function requestMetricsMiddleware(broker: ServiceBroker): Middleware {
  const stock = (
    Middlewares as unknown as Record<string, (this: ServiceBroker, b: ServiceBroker) => Middleware>
  ).Metrics!.call(broker, broker);
  const series: Series[] = [];
  const metrics = broker.metrics;
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    for (const s of series) {
      const calls = s.total;
      if (calls > 0) metrics.increment(REQUEST_TOTAL, s.labels, calls);
      metrics.set(REQUEST_ACTIVE, s.active, s.labels);
      s.total = 0;
      s.stride = Math.max(1, Math.ceil(calls / TIMED_PER_SECOND));
    }
  };

  return {
    ...stock,
    name: "Metrics",
    created(this: unknown, b: ServiceBroker) {
      (stock.created as ((this: unknown, b: ServiceBroker) => void) | undefined)?.call(this, b);
      if (!broker.isMetricsEnabled()) return;
      timer = setInterval(flush, FLUSH_MS);
      timer.unref();
    },
    stopped() {
      if (timer) clearInterval(timer);
      if (broker.isMetricsEnabled()) flush();
    },
    localAction(next: (ctx: Context) => Promise<unknown>, action: ActionSchema) {
      if (!broker.isMetricsEnabled()) return next;
      const service = (action as { service?: { fullName?: string } }).service?.fullName ?? null;
      const s: Series = {
        labels: { service, action: String(action.name), caller: null, type: "local" },
        total: 0,
        active: 0,
        stride: 1,
        sinceTimed: 0,
      };
      series.push(s);
      return function requestMetrics(ctx: Context): Promise<unknown> {
        s.total++;
        s.active++;
        const timed = ++s.sinceTimed >= s.stride;
        if (timed) s.sinceTimed = 0;
        const started = timed ? performance.now() : 0;
        return next(ctx).then(
          (result) => {
            s.active--;
            if (timed) metrics.observe(REQUEST_TIME, performance.now() - started, s.labels);
            return result;
          },
          (error: unknown) => {
            s.active--;
            if (timed) metrics.observe(REQUEST_TIME, performance.now() - started, s.labels);
            const e = error as { name?: string; code?: unknown; type?: unknown } | null;
            metrics.increment(REQUEST_ERROR_TOTAL, {
              ...s.labels,
              errorName: e?.name ?? null,
              errorCode: e?.code ?? null,
              errorType: e?.type ?? null,
            });
            throw error;
          },
        );
      };
    },
  } as unknown as Middleware;
}
