// Constants shared by the bench's processes.

/** What the bench upstream answers: 8 words, so the bench measures overhead, not payload. */
export const BENCH_CONTENT = 'the quick brown fox jumps over the dog';
/** The literal virtual key the bench gateway is configured with. */
export const BENCH_KEY = 'sk-airlock-bench-key-000000000000000000000001';
export const BENCH_MODEL = 'chat';

export function requestBody(stream: boolean): string {
  return JSON.stringify({
    model: BENCH_MODEL,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Say something short.' },
    ],
    max_tokens: 16,
    ...(stream ? { stream: true } : {}),
  });
}
