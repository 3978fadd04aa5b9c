// Constants shared by the bench's processes.

/** What the bench upstream answers: 8 words, so the bench measures overhead, not payload. */
export const BENCH_CONTENT = 'the quick brown fox jumps over the dog';
/** The literal virtual key the bench gateway is configured with. */
export const BENCH_KEY = 'sk-airlock-bench-key-000000000000000000000001';
export const BENCH_MODEL = 'chat';

/** The slow-streams scenario's user message: the bench upstream answers it slowly (upstream-server.ts). */
export const SLOW_PROMPT = 'Say something slowly.';
/** Its answer: 40 words, one content chunk each. */
export const SLOW_CONTENT = Array.from({ length: 5 }, () => BENCH_CONTENT).join(' ');
/** The pause before each content chunk of a slow stream: drawn per stream from [min, max] ms. */
export const SLOW_CHUNK_DELAY_MS = { min: 50, max: 100 };

export function requestBody(stream: boolean, prompt = 'Say something short.'): string {
  return JSON.stringify({
    model: BENCH_MODEL,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: prompt },
    ],
    max_tokens: 16,
    ...(stream ? { stream: true } : {}),
  });
}
