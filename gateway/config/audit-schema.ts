// Schemas of the audit API (export to a folder, e.g. a USB stick): shared by the admin plane
// (gateway/server/admin-audit.ts) and the admin app's Audit page. No Node-only imports here.
import { z } from 'zod';

export const AUDIT_EXPORT_FORMATS = ['jsonl', 'csv', 'cef'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

export const isoDateTime = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(Date.parse(v)), 'must be an ISO 8601 date or date-time, e.g. 2026-01-31T12:00:00Z');

export const auditExportSchema = z
  .strictObject({
    to: z
      .string()
      .min(1, 'is required')
      .max(4096)
      .refine((v) => /^(\/|[A-Za-z]:[\\/]|\\\\)/.test(v), "must be the absolute path of a folder on the gateway's machine, e.g. /media/usb-stick"),
    from: isoDateTime.optional(),
    until: isoDateTime.optional(),
    formats: z.array(z.enum(AUDIT_EXPORT_FORMATS)).max(3).optional(),
  })
  .refine((b) => b.from === undefined || b.until === undefined || Date.parse(b.until) >= Date.parse(b.from), { path: ['until'], message: 'must not be earlier than from' });
export type AuditExportBody = z.infer<typeof auditExportSchema>;
