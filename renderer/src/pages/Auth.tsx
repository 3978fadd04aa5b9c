// First-run setup and login screens.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, apiFieldErrors, ApiError, validate, type FieldErrors, type SessionBody, type SessionUser } from '../api';
import { FormError, TextField, focusAfterRender, focusNextPage, useFocusFirstError, usePageTitle } from '../components/ui';
import { MIN_PASSWORD, loginSchema, setupSchema } from '../../../gateway/config/admin-schema';
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
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);

  // In the desktop app the preload bridge hands over the token of the gateway it started (a
  // token already in the field, from the URL or typed, is kept).
  useEffect(() => {
    const bridge = (window as unknown as { airlock?: { getSetupToken?: () => Promise<string | null> } }).airlock;
    bridge
      ?.getSetupToken?.()
      .then((t) => t && setToken((cur) => cur || t))
      .catch(() => undefined);
  }, []); // once, on mount

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    const body = { setup_token: token.trim(), username: username.trim(), password };
    const v = validate(setupSchema, body);
    const errs: FieldErrors = v.ok ? {} : { ...v.errors };
    if (!errs.password && confirm !== password) errs.confirm = 'does not match the password';
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const r = await api<SessionBody>('POST', '/auth/setup', body);
      navigate('/', { replace: true });
      focusNextPage();
      onDone(r.user, r.csrf_token);
    } catch (err) {
      setErrors(apiFieldErrors(err));
      if (err instanceof ApiError && err.status === 409) setError('An owner account exists already. Reload the page to sign in.');
      else if (err instanceof ApiError && err.status === 403) setErrors({ setup_token: err.message });
      else setError(err);
    } finally {
      setBusy(false);
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
      <form ref={form} onSubmit={submit} noValidate aria-label="First-run setup">
        <TextField id="setup-token" label="Setup token" value={token} onChange={setToken} error={errors.setup_token} autoComplete="off" spellCheck={false} className="mono-input" />
        <TextField id="setup-username" label="Owner user name" value={username} onChange={setUsername} error={errors.username} autoComplete="username" hint="Letters, digits, '.', '_', ':' or '-'." />
        <TextField id="setup-password" type="password" label="Password" value={password} onChange={setPassword} error={errors.password} autoComplete="new-password" hint={`At least ${MIN_PASSWORD} characters. A passphrase of a few words works well.`} />
        <TextField id="setup-confirm" type="password" label="Repeat the password" value={confirm} onChange={setConfirm} error={errors.confirm} autoComplete="new-password" />
        <FormError error={error} />
        <button type="submit" className="primary wide" disabled={busy}>
          {busy ? 'Creating the owner…' : 'Create owner account'}
        </button>
      </form>
    </AuthFrame>
  );
}

export function LoginScreen({ onDone, reason }: { onDone: (user: SessionUser, csrf: string) => void; reason?: string }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [locked, setLocked] = useState<string>('');
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    const body = { username: username.trim(), password };
    const v = validate(loginSchema, body);
    setErrors(v.ok ? {} : v.errors);
    if (!v.ok) return;
    setBusy(true);
    try {
      const r = await api<SessionBody>('POST', '/auth/login', body);
      setLocked('');
      focusNextPage();
      onDone(r.user, r.csrf_token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 423) {
        setLocked(err.message);
        setError(undefined);
      } else {
        setLocked('');
        setError(err);
      }
      setPassword('');
      // the Sign in button is disabled while the request runs: without this the focus would
      // fall to <body>; the cleared password field is where to go on
      focusAfterRender(form.current, '#login-password');
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthFrame title="Sign in" intro={<p>Sign in to manage this Airlock gateway.</p>}>
      {reason ? (
        <p className="notice info" role="status">
          {reason}
        </p>
      ) : null}
      <form ref={form} onSubmit={submit} noValidate aria-label="Sign in">
        <TextField id="login-username" label="User name" value={username} onChange={setUsername} error={errors.username} autoComplete="username" autoFocus />
        <TextField id="login-password" type="password" label="Password" value={password} onChange={setPassword} error={errors.password} autoComplete="current-password" />
        <div className="locked-region" role="alert" aria-live="assertive">
          {locked ? (
            <div className="notice error locked" data-testid="account-locked">
              <strong>Account locked.</strong> {locked}
            </div>
          ) : null}
        </div>
        <FormError error={error} />
        <button type="submit" className="primary wide" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p className="hint">Forgot the password? Another owner can reset it on the Admins page.</p>
    </AuthFrame>
  );
}
