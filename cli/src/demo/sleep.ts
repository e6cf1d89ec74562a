/**
 * Waits `ms`, or until `signal` aborts. The abort listener is removed when the time is up, so a
 * loop that sleeps on one long-lived signal adds no listeners (Node warns past 10:
 * MaxListenersExceededWarning).
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(); return; }
    const onAbort = (): void => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
