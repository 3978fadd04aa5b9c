// Which custom guardrail regexes are accepted: the check runs where the schema validates (config
// file, admin API, admin app form), so a pattern that could hang the event loop is never stored.
export const MAX_PATTERN_LENGTH = 1000;

/**
 * Why a pattern could hang the event loop (undefined: accepted). JavaScript's regex engine
 * backtracks; a pattern is refused when it has
 * - a quantified group that itself contains a quantifier ((a+)+, (\w*\s?)*): star height > 1,
 * - a quantified group with alternatives ((a|ab)*), whose branches may overlap,
 * - backreferences or lookarounds (not needed for detection, and they defeat this analysis),
 * - more than MAX_PATTERN_LENGTH characters, or it does not compile.
 * What remains is linear or at worst polynomial of low degree in the text; the text a custom
 * regex sees is further bounded by the policy's scan size.
 */
export function unsafeRegexReason(pattern: string, flags = ''): string | undefined {
  if (pattern.length > MAX_PATTERN_LENGTH) return `the pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    new RegExp(pattern, flags);
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message}`;
  }
  interface Group {
    quantified: boolean; // contains a quantifier
    alternation: boolean;
  }
  const stack: Group[] = [{ quantified: false, alternation: false }];
  let last: Group | 'atom' | undefined; // what a following quantifier applies to
  let inClass = false;
  const quantAt = (i: number): { len: number; multi: boolean } | undefined => {
    const c = pattern[i];
    if (c === '*' || c === '+') return { len: pattern[i + 1] === '?' ? 2 : 1, multi: true };
    if (c === '?') return { len: pattern[i + 1] === '?' ? 2 : 1, multi: false };
    if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}\??/.exec(pattern.slice(i));
      if (!m) return undefined;
      const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
      return { len: m[0].length, multi: max > 1 };
    }
    return undefined;
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (inClass) {
      if (c === '\\') i++;
      else if (c === ']') {
        inClass = false;
        last = 'atom';
      }
      continue;
    }
    if (c === '\\') {
      const n = pattern[i + 1] ?? '';
      if (/[1-9]/.test(n) || n === 'k') return 'backreferences are not allowed';
      i++;
      last = 'atom';
      continue;
    }
    if (c === '[') {
      inClass = true;
      continue;
    }
    if (c === '(') {
      if (pattern.startsWith('(?=', i) || pattern.startsWith('(?!', i) || pattern.startsWith('(?<=', i) || pattern.startsWith('(?<!', i)) return 'lookahead and lookbehind are not allowed';
      stack.push({ quantified: false, alternation: false });
      last = undefined;
      if (pattern.startsWith('(?:', i)) i += 2;
      else if (pattern.startsWith('(?<', i)) i = pattern.indexOf('>', i);
      continue;
    }
    if (c === ')') {
      const g = stack.pop()!;
      if (stack.length === 0) return 'unbalanced parenthesis';
      last = g;
      continue;
    }
    if (c === '|') {
      stack[stack.length - 1]!.alternation = true;
      last = undefined;
      continue;
    }
    const q = quantAt(i);
    if (q) {
      if (last && last !== 'atom' && q.multi) {
        if (last.quantified) return 'a repeated group contains a repetition (nested quantifiers such as (a+)+ can take exponential time)';
        if (last.alternation) return 'a repeated group contains alternatives (such as (a|ab)*, which can take exponential time)';
      }
      const top = stack[stack.length - 1]!;
      if (q.multi || (last && last !== 'atom' && last.quantified)) top.quantified = true;
      i += q.len - 1;
      last = undefined;
      continue;
    }
    last = 'atom';
  }
  return undefined;
}
