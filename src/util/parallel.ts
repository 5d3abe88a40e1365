/**
 * Runs fn over items with at most `limit` calls under way at once, starting them in the
 * items' order (each call runs until its first pause before the next starts). Resolves
 * when every call has settled; fn's own failures are fn's to handle: the first one that
 * escapes is thrown after all have settled.
 */
export async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failed) throw (failed as { e: unknown }).e;
}
