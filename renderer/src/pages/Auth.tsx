// First-run setup and login screens.
import { useEffect, useState } from 'react';
import { api, ApiError, type FieldErrors, type SessionBody, type SessionUser } from '../api';
import { TextField, focusAfterRender, focusNextPage, usePageTitle } from '../components/ui';
import { SchemaForm } from '../components/form-dialog';
import { MIN_PASSWORD, loginSchema, passwordChangeSchema, setupSchema } from '../../../gateway/config/admin-schema';
import { navigate } from '../router';
import { Icon } from '../components/icons';

function AuthFrame({ title, intro, children }: { title: string; intro: React.ReactNode; children: React.ReactNode }) {
  usePageTitle(title);
  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <div className="brand-row">
          <span className="logo">
            <Icon name="logo" size={22} />
          </span>
          <span className="brand">Airlock</span>
        </div>
        <h1>{title}</h1>
        <div className="intro">{intro}</div>
        {children}
      </main>
    </div>
  );
}

export function SetupScreen({ onDone }: { onDone: (user: SessionUser, csrf: string) => void }) {
  const params = new URLSearchParams(location.search);
  const [token, setToken] = useState(params.get('token') ?? '');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');

  // In the desktop app the preload bridge hands over the token of the gateway it started (a
  // token already in the field, from the URL or typed, is kept).
  useEffect(() => {
    const bridge = (window as unknown as { airlock?: { getSetupToken?: () => Promise<string | null> } }).airlock;
    bridge
      ?.getSetupToken?.()
      .then((t) => t && setToken((cur) => cur || t))
      .catch(() => undefined);
  }, []); // once, on mount

  const send = async (body: Record<string, unknown>) => {
    try {
      const r = await api<SessionBody>('POST', '/auth/setup', body);
      navigate('/', { replace: true });
      focusNextPage();
      onDone(r.user, r.csrf_token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) throw new Error('An owner account exists already. Reload the page to sign in.');
      // a wrong or used setup token: said on its field
      if (err instanceof ApiError && err.status === 403) throw new ApiError(403, err.code, err.message, [{ path: 'setup_token', message: err.message }]);
      throw err;
    }
  };

  return (
    <AuthFrame
      title="Set up Airlock"
      intro={
        <p>
          Create the <strong>owner</strong> account. The owner manages the gateway and the other admin accounts. The setup token is printed by{' '}
          <code>airlock serve</code> on its first start (<code>first-run setup: open …?token=…</code>); the desktop app fills it in for you.
        </p>
      }
    >
      <SchemaForm
        schema={setupSchema}
        build={() => ({ setup_token: token.trim(), username: username.trim(), password })}
        check={(spec): FieldErrors => (confirm !== (spec as { password: string }).password ? { confirm: 'does not match the password' } : {})}
        send={send}
        label="First-run setup"
        submitLabel="Create owner account"
        busyLabel="Creating the owner…"
        submitClassName="primary wide"
        guard={false}
      >
        {(errors) => (
          <>
            <TextField id="setup-token" label="Setup token" value={token} onChange={setToken} error={errors.setup_token} autoComplete="off" spellCheck={false} className="mono-input" />
            <TextField id="setup-username" label="Owner user name" value={username} onChange={setUsername} error={errors.username} autoComplete="username" hint="Letters, digits, '.', '_', ':' or '-'." />
            <TextField id="setup-password" type="password" label="Password" value={password} onChange={setPassword} error={errors.password} autoComplete="new-password" hint={`At least ${MIN_PASSWORD} characters. A passphrase of a few words works well.`} />
            <TextField id="setup-confirm" type="password" label="Repeat the password" value={confirm} onChange={setConfirm} error={errors.password ? undefined : errors.confirm} autoComplete="new-password" />
          </>
        )}
      </SchemaForm>
    </AuthFrame>
  );
}

export function LoginScreen({ onDone, reason }: { onDone: (user: SessionUser, csrf: string) => void; reason?: string }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [locked, setLocked] = useState<string>('');

  const send = async (body: Record<string, unknown>) => {
    try {
      const r = await api<SessionBody>('POST', '/auth/login', body);
      setLocked('');
      focusNextPage();
      onDone(r.user, r.csrf_token);
    } catch (err) {
      setPassword('');
      // the Sign in button is disabled while the request runs: without this the focus would
      // fall to <body>; the cleared password field is where to go on
      focusAfterRender(document.body, '#login-password');
      if (err instanceof ApiError && err.status === 423) {
        setLocked(err.message);
        return;
      }
      setLocked('');
      throw err;
    }
  };

  return (
    <AuthFrame title="Sign in" intro={<p>Sign in to manage this Airlock gateway.</p>}>
      {reason ? (
        <p className="notice info" role="status">
          {reason}
        </p>
      ) : null}
      <SchemaForm
        schema={loginSchema}
        build={() => ({ username: username.trim(), password })}
        send={send}
        label="Sign in"
        submitLabel="Sign in"
        busyLabel="Signing in…"
        submitClassName="primary wide"
        guard={false}
      >
        {(errors) => (
          <>
            <TextField id="login-username" label="User name" value={username} onChange={setUsername} error={errors.username} autoComplete="username" autoFocus />
            <TextField id="login-password" type="password" label="Password" value={password} onChange={setPassword} error={errors.password} autoComplete="current-password" />
            <div className="locked-region" role="alert" aria-live="assertive">
              {locked ? (
                <div className="notice error locked" data-testid="account-locked">
                  <strong>Account locked.</strong> {locked}
                </div>
              ) : null}
            </div>
          </>
        )}
      </SchemaForm>
      <p className="hint">Forgot the password? An owner can set a new one on the Admins page, or run <code>airlock admin reset-password NAME</code> on the server for a one-time password.</p>
    </AuthFrame>
  );
}

/** After a sign-in with a one-time password (airlock admin reset-password): nothing else works
 * until the user chooses a new password. */
export function PasswordChangeScreen({ user, onDone, onSignOut }: { user: SessionUser; onDone: () => void; onSignOut: () => void }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');

  return (
    <AuthFrame
      title="Choose a new password"
      intro={
        <p>
          <strong>{user.name}</strong> signed in with a one-time password. Choose a new password (at least {MIN_PASSWORD} characters) to go on.
        </p>
      }
    >
      <SchemaForm
        schema={passwordChangeSchema}
        build={() => ({ current_password: current, new_password: next })}
        send={async (body) => {
          await api('POST', '/auth/password', body);
          focusNextPage();
          onDone();
        }}
        label="Choose a new password"
        submitLabel="Save the new password"
        busyLabel="Saving…"
        submitClassName="primary wide"
        guard={false}
      >
        {(errors) => (
          <>
            <TextField id="current-password" type="password" label="One-time password" value={current} onChange={setCurrent} error={errors.current_password} autoComplete="current-password" autoFocus />
            <TextField id="new-password" type="password" label="New password" value={next} onChange={setNext} error={errors.new_password} autoComplete="new-password" />
          </>
        )}
      </SchemaForm>
      <p className="hint">
        <button type="button" className="link-button" onClick={onSignOut}>
          Sign out
        </button>
      </p>
    </AuthFrame>
  );
}
