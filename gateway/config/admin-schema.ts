// Schemas of the admin-account API (setup, login, users, API tokens): shared by the admin
// plane (gateway/server/admin-auth.ts) and the admin app's forms. No Node-only imports here.
import { z } from 'zod';
import { name } from './schema.js';

export const ROLES = ['auditor', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];
export const MIN_PASSWORD = 12;

export const passwordSchema = z.string().min(MIN_PASSWORD, `must be at least ${MIN_PASSWORD} characters`).max(1024);
export const setupSchema = z.strictObject({ setup_token: z.string().min(1, 'is required'), username: name, password: passwordSchema });
export const loginSchema = z.strictObject({ username: z.string().min(1, 'is required').max(64), password: z.string().min(1, 'is required').max(1024) });
export const userCreateSchema = z.strictObject({ name, password: passwordSchema, role: z.enum(ROLES) });
export const userUpdateSchema = z.strictObject({ role: z.enum(ROLES).optional(), password: passwordSchema.optional(), disabled: z.boolean().optional() });
export const tokenCreateSchema = z.strictObject({ name, role: z.enum(ROLES) });

/** POST /backup (owner): the passphrase of the encrypted backup bundle (as `airlock backup`). */
export const MIN_BACKUP_PASSPHRASE = 10;
export const backupRequestSchema = z.strictObject({
  passphrase: z.string().min(MIN_BACKUP_PASSPHRASE, `must be at least ${MIN_BACKUP_PASSPHRASE} characters`).max(1024, 'must be at most 1024 characters'),
});
