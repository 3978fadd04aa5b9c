// Governance fields of the configuration (issue 8): budgets, rate limits, fair-share weights and
// priorities on teams and keys, limits and cost-aware downgrade on model aliases. Plain zod (no
// Node imports): the admin app's forms validate with these too.
import { z } from 'zod';

export const BUDGET_PERIODS = ['day', 'week', 'month', 'total'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export const budgetSchema = z.strictObject({
  amount: z.number().min(0, 'must be 0 or more').max(1e12).describe('Most that may be spent in one period, in settings.cost_unit'),
  period: z.enum(BUDGET_PERIODS).default('month').describe('day | week (from Monday) | month | total (never resets); boundaries in settings.budget_timezone'),
  warn_at_percent: z.number().min(1).max(100).default(80).describe('Share of the budget at which it is reported as "warning"'),
});
export type BudgetSpec = z.infer<typeof budgetSchema>;

export const rateLimitsSchema = z.strictObject({
  rpm: z.int().min(1, 'must be at least 1').max(1e9).optional().describe('Requests per minute'),
  tpm: z.int().min(1, 'must be at least 1').max(1e12).optional().describe('Tokens (prompt + completion) per minute'),
});
export type RateLimits = z.infer<typeof rateLimitsSchema>;

export const PRIORITIES = ['interactive', 'batch'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const downgradeSchema = z.strictObject({
  to: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'must be a model alias').describe('The alias that serves the request once the caller\'s tightest budget passes at_percent'),
  at_percent: z.number().min(1).max(100).default(80).describe('Budget use (of the tightest budget) from which requests are downgraded'),
});
export type DowngradeSpec = z.infer<typeof downgradeSchema>;

/** Checked without node: Intl knows the IANA names. */
export function isTimeZone(v: string): boolean {
  if (v === 'UTC') return true; // the default: no need to load the zone data (several MB of memory)
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: v });
    return true;
  } catch {
    return false;
  }
}
export const timeZoneSchema = z.string().min(1).max(64).refine(isTimeZone, 'must be an IANA time zone name, e.g. UTC or Europe/Berlin');

export const teamGovernance = {
  budget: budgetSchema.optional().describe('The team\'s budget'),
  limits: rateLimitsSchema.optional().describe('Rate limits on the whole team'),
  weight: z.number().positive('must be more than 0').max(1000).optional().describe('Share of a saturated endpoint\'s capacity under contention (default 1)'),
  user_budget: budgetSchema.optional().describe('A budget for each end user of the team'),
  user_limits: rateLimitsSchema.optional().describe('Rate limits for each end user of the team'),
};
export const keyGovernance = {
  budget: budgetSchema.optional().describe('The key\'s budget'),
  limits: rateLimitsSchema.optional().describe('Rate limits on the key'),
  priority: z.enum(PRIORITIES).optional().describe('interactive (default) or batch: batch work waits behind interactive work of its team'),
};
export const modelGovernance = {
  limits: rateLimitsSchema.optional().describe('Rate limits on the alias, over every caller'),
  downgrade: downgradeSchema.optional().describe('Cost-aware routing: serve with another alias when the caller\'s budget runs low'),
};
export const settingsGovernance = {
  cost_unit: z.string().min(1).max(16).default('USD').describe('The unit of prices, costs and budgets as shown (e.g. USD, EUR, credits)'),
  budget_timezone: timeZoneSchema.default('UTC').describe('Time zone of budget period boundaries (IANA name)'),
  default_max_tokens: z.int().min(1).max(10_000_000).default(4096).describe('Completion tokens reserved against budgets when a request sets no max_tokens'),
  queue_max_length: z.int().min(0).max(1_000_000).default(1000).describe('Most requests waiting for a slot of one endpoint; more are refused with 503 capacity_timeout'),
};

export const GOVERNANCE_FIELDS = {
  teams: Object.keys(teamGovernance) as (keyof typeof teamGovernance)[],
  keys: Object.keys(keyGovernance) as (keyof typeof keyGovernance)[],
  models: Object.keys(modelGovernance) as (keyof typeof modelGovernance)[],
};
