// The admin app: setup → login → the shell with a left navigation and one page per area.
import { useEffect } from 'react';
import { AuthProvider, useAuth, useAuthPhase } from './auth';
import { Link, navigate, usePath } from './router';
import { LoginScreen, PasswordChangeScreen, SetupScreen } from './pages/Auth';
import { OverviewPage } from './pages/Overview';
import { EndpointsPage } from './pages/Endpoints';
import { ModelsPage } from './pages/Models';
import { KeysPage } from './pages/Keys';
import { PlaygroundPage } from './pages/Playground';
import { McpPage } from './pages/Mcp';
import { UsagePage } from './pages/Usage';
import { BudgetsPage } from './pages/Budgets';
import { GuardrailsPage } from './pages/Guardrails';
import { TracesPage } from './pages/Traces';
import { SettingsPage } from './pages/Settings';
import { AdminsPage } from './pages/Admins';
import { AuditPage } from './pages/Audit';
import { DataFlowPage } from './pages/DataFlow';
import { PromptLogPage } from './pages/PromptLog';
import { errorMessage, get, type StatusBody } from './api';
import { useResource } from './hooks';
import { Icon } from './components/icons';
import { usePageTitle } from './components/ui';

const PAGES = [
  { path: '/', label: 'Overview', icon: 'overview', Page: OverviewPage },
  { path: '/endpoints', label: 'Endpoints', icon: 'endpoints', Page: EndpointsPage },
  { path: '/models', label: 'Models', icon: 'models', Page: ModelsPage },
  { path: '/keys', label: 'Teams & keys', icon: 'keys', Page: KeysPage },
  { path: '/playground', label: 'Playground', icon: 'playground', Page: PlaygroundPage },
  { path: '/mcp', label: 'MCP & agents', icon: 'mcp', Page: McpPage },
  { path: '/guardrails', label: 'Guardrails', icon: 'guardrails', Page: GuardrailsPage },
  { path: '/usage', label: 'Usage', icon: 'usage', Page: UsagePage },
  { path: '/budgets', label: 'Budgets', icon: 'usage', Page: BudgetsPage },
  { path: '/traces', label: 'Traces', icon: 'traces', Page: TracesPage },
  { path: '/settings', label: 'Settings', icon: 'settings', Page: SettingsPage },
  { path: '/audit', label: 'Audit', icon: 'audit', Page: AuditPage },
  { path: '/prompt-log', label: 'Prompt log', icon: 'audit', Page: PromptLogPage },
  { path: '/data-flow', label: 'Data flow', icon: 'dataflow', Page: DataFlowPage },
  { path: '/admins', label: 'Admins', icon: 'admins', Page: AdminsPage },
] as const;

export function App() {
  const { phase, refresh, signedIn, logout } = useAuthPhase();
  const path = usePath();
  useEffect(() => {
    // (the setup and sign-in screens and every page set their own title)
    if (phase.kind === 'loading') document.title = 'Connecting · Airlock admin';
    if (phase.kind === 'error') document.title = 'Not connected · Airlock admin';
  }, [phase.kind]);

  useEffect(() => {
    // /setup and /login are only entry points: once signed in, show the overview
    if (phase.kind === 'app' && (path === '/setup' || path === '/login')) navigate('/', { replace: true });
  }, [phase.kind, path]);

  switch (phase.kind) {
    case 'loading':
      return (
        <div className="auth-page">
          <p className="loading" role="status">
            Connecting to the gateway…
          </p>
        </div>
      );
    case 'error':
      return (
        <div className="auth-page">
          <main className="auth-card" id="main">
            <h1>The admin API is not answering</h1>
            <p className="notice error" role="alert">
              {errorMessage(phase.error)}
            </p>
            <button type="button" className="primary" onClick={() => void refresh()}>
              Try again
            </button>
          </main>
        </div>
      );
    case 'setup':
      return <SetupScreen onDone={signedIn} />;
    case 'login':
      return <LoginScreen onDone={signedIn} reason={phase.reason} />;
    case 'app':
      if (phase.user.must_change_password) return <PasswordChangeScreen user={phase.user} onDone={() => void refresh()} onSignOut={() => void logout()} />;
      return (
        <AuthProvider user={phase.user} logout={logout}>
          <Shell path={path} />
        </AuthProvider>
      );
  }
}

/** Shown on every page while the usage ledger cannot be written (checked every 10 s). */
function LedgerBanner() {
  const status = useResource((s) => get<StatusBody>('/status', s), [], 10_000);
  const l = status.data?.ledger;
  if (!l || l.writable) return null;
  return (
    <div className="ledger-banner" role="alert">
      <strong>Usage records cannot be written to the database.</strong>{' '}
      {l.mode === 'refuse'
        ? 'Requests are refused (503) until they can be, as set in Settings (ledger_when_unwritable: refuse).'
        : `Requests are still served; ${l.pending} record(s) wait in memory${l.dropped ? `, ${l.dropped} were dropped` : ''}.`}{' '}
      {l.last_error ? <span className="mono">Last error: {l.last_error}</span> : null}
    </div>
  );
}

function Shell({ path }: { path: string }) {
  const { user, canWrite, logout } = useAuth();
  const page = PAGES.find((p) => p.path === path) ?? (path === '/setup' || path === '/login' ? PAGES[0] : undefined);
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <nav className="sidebar" aria-label="Main">
        <div className="brand-row">
          <span className="logo">
            <Icon name="logo" size={22} />
          </span>
          <span className="brand">Airlock</span>
        </div>
        <ul>
          {PAGES.map((p) => (
            <li key={p.path}>
              <Link to={p.path} aria-current={page?.path === p.path ? 'page' : undefined}>
                <Icon name={p.icon} />
                {p.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <div className="main-col">
        <header className="topbar">
          <span className="whoami">
            Signed in as <strong>{user.name}</strong> <span className={`role role-${user.role}`}>{user.role}</span>
          </span>
          <button type="button" onClick={() => void logout()}>
            Sign out
          </button>
        </header>
        <LedgerBanner />
        {!canWrite ? (
          <div className="readonly-banner" role="note">
            Read-only access: as an auditor you can see everything here but not change it.
          </div>
        ) : null}
        <main id="main" tabIndex={-1}>
          {page ? (
            <page.Page />
          ) : (
            <NotFound path={path} />
          )}
        </main>
      </div>
    </div>
  );
}

function NotFound({ path }: { path: string }) {
  usePageTitle('Page not found');
  return (
    <div className="card">
      <h1>Page not found</h1>
      <p>
        There is no page at <code>{path}</code>. <Link to="/">Go to the overview</Link>.
      </p>
    </div>
  );
}
