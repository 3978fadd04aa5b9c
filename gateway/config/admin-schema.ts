// Schemas of the admin-account API (setup, login, users, API tokens): shared by the admin
// plane (gateway/server/admin-auth.ts) and the admin app's forms. No Node-only imports here.
import { z } from 'zod';
import { name } from './schema.js';

export const ROLES = ['auditor', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];
export const MIN_PASSWORD = 12;
/** An account or token name: never the name AIRLOCK_ADMIN_TOKEN's tokens record as their creator. */
const accountName = name.refine((n) => n !== 'AIRLOCK_ADMIN_TOKEN', { message: 'is reserved (the name of the AIRLOCK_ADMIN_TOKEN principal)' });

export const passwordSchema = z.string().min(MIN_PASSWORD, `must be at least ${MIN_PASSWORD} characters`).max(1024);
export const setupSchema = z.strictObject({ setup_token: z.string().min(1, 'is required'), username: accountName, password: passwordSchema });
export const loginSchema = z.strictObject({ username: z.string().min(1, 'is required').max(64), password: z.string().min(1, 'is required').max(1024) });
export const userCreateSchema = z.strictObject({ name: accountName, password: passwordSchema, role: z.enum(ROLES) });
export const userUpdateSchema = z.strictObject({ role: z.enum(ROLES).optional(), password: passwordSchema.optional(), disabled: z.boolean().optional() });
export const tokenCreateSchema = z.strictObject({ name: accountName, role: z.enum(ROLES) });
/** POST /auth/password: a signed-in user's own new password */
export const passwordChangeSchema = z
  .strictObject({ current_password: z.string().min(1, 'is required').max(1024), new_password: passwordSchema })
  .refine((b) => b.new_password !== b.current_password, { path: ['new_password'], message: 'must differ from the current password' });

/** POST /backup (owner): the passphrase of the encrypted backup bundle (as `airlock backup`). */
export const MIN_BACKUP_PASSPHRASE = 10;
export const backupRequestSchema = z.strictObject({
  passphrase: z.string().min(MIN_BACKUP_PASSPHRASE, `must be at least ${MIN_BACKUP_PASSPHRASE} characters`).max(1024, 'must be at most 1024 characters'),
});

// ---- the audit API (export to a folder, e.g. a USB stick): gateway/server/admin-audit.ts and the Audit page ----

export const AUDIT_EXPORT_FORMATS = ['jsonl', 'csv', 'cef'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

export const isoDateTime = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(Date.parse(v)), 'must be an ISO 8601 date or date-time, e.g. 2026-01-31T12:00:00Z');

const folderOnGateway = (message: string) =>
  z
    .string()
    .min(1, 'is required')
    .max(4096)
    .refine((v) => /^(\/|[A-Za-z]:[\\/]|\\\\)/.test(v), message);

export const auditExportSchema = z
  .strictObject({
    to: folderOnGateway("must be the absolute path of a folder on the gateway's machine, e.g. /media/usb-stick"),
    from: isoDateTime.optional(),
    until: isoDateTime.optional(),
    formats: z.array(z.enum(AUDIT_EXPORT_FORMATS)).max(3).optional(),
    prompts: z.boolean().optional().describe('Include the logged prompts and responses the exported request records name (prompts.jsonl, plain text; verify.mjs checks each against its record)'),
  })
  .refine((b) => b.from === undefined || b.until === undefined || Date.parse(b.until) >= Date.parse(b.from), { path: ['until'], message: 'must not be earlier than from' });
export type AuditExportBody = z.infer<typeof auditExportSchema>;

/** The fingerprint of an audit signing key, as GET /audit/key and `airlock audit key` show it
 * (the SHA256: prefix and the colons may be left out): what a bundle's verification is pinned to. */
export const auditKeyFingerprintSchema = z
  .string()
  .max(200)
  .refine((v) => /^(SHA256:)?([0-9a-fA-F]{4}:?){15}[0-9a-fA-F]{4}$/.test(v.trim()), 'must be a key fingerprint, e.g. SHA256:1a2b:3c4d:… (64 hex digits)');

/** POST /audit/verify-bundle: check an exported bundle (a folder on the gateway's machine, e.g. on a USB stick). */
export const auditVerifyBundleSchema = z.strictObject({
  dir: folderOnGateway("must be the absolute path of the bundle's folder on the gateway's machine, e.g. /media/usb-stick/airlock-audit-20270131T093000Z"),
  key: auditKeyFingerprintSchema.optional(),
});
export type AuditVerifyBundleBody = z.infer<typeof auditVerifyBundleSchema>;
