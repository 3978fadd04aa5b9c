// Who is signed in, and what they may do. The session is an HttpOnly cookie; the CSRF token
// from /auth/state (or login/setup) goes along with every change.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, onUnauthorized, setCsrfToken, type AuthState, type Role, type SessionUser } from './api';

interface AuthValue {
  user: SessionUser;
  /** owners and admins may change things; auditors only read */
  canWrite: boolean;
  isOwner: boolean;
  /** role rank: auditor 0, admin 1, owner 2 */
  rank: number;
  logout: () => Promise<void>;
}

const Ctx = createContext<AuthValue | null>(null);

export const ROLE_RANK: Record<Role, number> = { auditor: 0, admin: 1, owner: 2 };

export function useAuth(): AuthValue {
  const v = useContext(Ctx);
  if (!v) throw new Error('useAuth outside AuthProvider');
  return v;
}

export type Phase =
  | { kind: 'loading' }
  | { kind: 'error'; error: unknown }
  | { kind: 'setup' }
  | { kind: 'login'; reason?: string }
  | { kind: 'app'; user: SessionUser };

export function useAuthPhase() {
  const [phase, setPhase] = useState<Phase>({ kind: 'loading' });

  const refresh = useCallback(async () => {
    try {
      const s = await api<AuthState>('GET', '/auth/state');
      setCsrfToken(s.csrf_token);
      if (s.setup_required) setPhase({ kind: 'setup' });
      else if (s.user) setPhase({ kind: 'app', user: s.user });
      else setPhase((p) => (p.kind === 'login' ? p : { kind: 'login' }));
    } catch (e) {
      setPhase({ kind: 'error', error: e });
    }
  }, []);

  useEffect(() => {
    void refresh();
    onUnauthorized(() => {
      setCsrfToken(null);
      setPhase({ kind: 'login', reason: 'Your session has ended. Sign in again to continue.' });
    });
    return () => onUnauthorized(undefined);
  }, [refresh]);

  const signedIn = useCallback((user: SessionUser, csrf: string) => {
    setCsrfToken(csrf);
    setPhase({ kind: 'app', user });
  }, []);

  const logout = useCallback(async () => {
    try {
      await api('POST', '/auth/logout');
    } finally {
      setCsrfToken(null);
      setPhase({ kind: 'login', reason: 'You have signed out.' });
    }
  }, []);

  return { phase, refresh, signedIn, logout };
}

export function AuthProvider({ user, logout, children }: { user: SessionUser; logout: () => Promise<void>; children: ReactNode }) {
  const value = useMemo<AuthValue>(
    () => ({ user, canWrite: user.role !== 'auditor', isOwner: user.role === 'owner', rank: ROLE_RANK[user.role] ?? 0, logout }),
    [user, logout],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}
