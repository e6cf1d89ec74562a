/**
 * Polls `pred` until it holds, for at most `boundMs` (10 s) of wall time. For conditions a test
 * cannot await directly (a counter another process or a socket event moves). Bounded, so a
 * broken condition fails the test with `what` instead of hanging it.
 */
export async function until(pred: () => boolean, what: string, boundMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > boundMs) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
