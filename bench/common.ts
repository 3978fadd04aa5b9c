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

const PROSE = [
  'Please summarise the quarterly planning notes for the operations team.',
  'The warehouse in the north region finished the inventory count on schedule.',
  'Customer feedback on the new invoicing portal was mostly positive this month.',
  'We expect the supplier contract renewal to be signed before the end of the quarter.',
  'The training sessions for the support staff are booked for the second week.',
  'Budget figures for travel and equipment stay within last year\'s limits.',
];

/** An ordinary business prompt of about `bytes` bytes (no personal data, no secrets: what the
 * detectors scan on every request, not what they find). */
export function businessPrompt(bytes: number): string {
  let s = '';
  for (let i = 0; s.length < bytes; i++) s += (s ? ' ' : '') + PROSE[i % PROSE.length]!;
  return s.slice(0, bytes);
}
