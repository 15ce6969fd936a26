/** Promise-based sleep that an AbortSignal can cut short. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface RetryPolicy {
  /** Attempts including the first one (bounded: at most 20). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 30_000 };

export interface RetryDecision {
  retry: boolean;
  /** Server-imposed wait (Retry-After), used instead of the backoff when present. */
  afterMs?: number;
}

/**
 * Runs `fn` until it succeeds, `classify` says the error is final, or attempts run out.
 * Backoff is exponential with full jitter; a server-provided wait wins over the backoff.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  classify: (error: unknown) => RetryDecision,
  policy: RetryPolicy = DEFAULT_RETRY,
  hooks: { onRetry?: (error: unknown, attempt: number, delayMs: number) => void; signal?: AbortSignal } = {},
): Promise<T> {
  const attempts = Math.max(1, Math.min(policy.maxAttempts, 20));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      const decision = classify(error);
      if (!decision.retry || attempt >= attempts) throw error;
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delay = decision.afterMs ?? Math.round(Math.random() * backoff);
      hooks.onRetry?.(error, attempt, delay);
      await sleep(Math.min(delay, policy.maxDelayMs), hooks.signal);
    }
  }
}
