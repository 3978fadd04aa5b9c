// "Restart now" (Settings, owner): settings such as where Airlock listens, client limits and TLS
// take effect on restart, and a staged restore is applied by one. POST /restart answers, then the
// gateway stops gracefully and exits for its supervisor (systemd, the desktop app) to start it
// again; the page waits until the admin API answers from a new process (a new started_at: the
// app cannot reach the data plane's /readyz, another origin under its CSP) and reloads. Without a
// supervisor the gateway says so (GET /restart) and the section says to restart by hand.
import { useState } from 'react';
import { DEFAULT_LISTEN } from '../../../gateway/config/schema';
import type { ListenConfig } from '../../../gateway/wire';
import { api, get, type RestartInfo, type StatusBody } from '../api';
import { useResource } from '../hooks';
import { ConfirmDialog, LoadError, Section } from '../components/ui';

const GIVE_UP_MS = 120_000;

type Phase = { kind: 'idle' } | { kind: 'waiting' } | { kind: 'gave-up' } | { kind: 'moved'; move: AdminMove };

/** Where the admin app will be after a restart that moves it: this page cannot follow (another
 * origin, which its CSP does not let it ask), so it says where to go instead of waiting here. */
export interface AdminMove {
  /** the new address of this app, when a browser here can reach it */
  url?: string;
  /** what changes, in words (one sentence, no final period) */
  note: string;
}

/** A loopback host as stored in settings.listen (127.x.x.x, localhost, ::1). */
export const isLoopback = (h: string) => /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1)$/i.test(h);
/** The same for a host as a URL writes it (an IPv6 address in brackets). */
const isLoopbackHost = (h: string) => isLoopback(h.replace(/^\[(.*)\]$/, '$1'));
const isAnyHost = (h: string) => h === '0.0.0.0' || h === '::' || h === '[::]';

/** The admin plane's stored address against the one this process was started with (a value
 * given by flag or environment variable stays): undefined when a restart leaves it where it is. */
export function adminAfterRestart(status: StatusBody | undefined, stored: Record<string, unknown> | undefined, here: { protocol: string; hostname: string; port: string }): AdminMove | undefined {
  const started = status?.listen_config;
  if (!started || !stored) return undefined;
  const listen: ListenConfig = { ...DEFAULT_LISTEN, ...(stored.listen as Partial<ListenConfig> | undefined) };
  const src = status.listen_source;
  const kept = (k: 'admin_host' | 'admin_port') => src?.[k] === 'flag' || src?.[k] === 'env';
  const host = kept('admin_host') ? started.admin_host : listen.admin_host;
  const port = kept('admin_port') ? started.admin_port : listen.admin_port;
  if (host === started.admin_host && port === started.admin_port) return undefined;
  if (port === 0) return { note: `The admin app moves to a free port chosen at start; read its address in the service's log (or with "airlock doctor") after the restart` };
  const hereLoopback = isLoopbackHost(here.hostname);
  if (isLoopbackHost(host) && !hereLoopback)
    return { note: `The admin app will listen on ${host}:${port} only: open it on the server itself or through an SSH tunnel (ssh -L ${port}:127.0.0.1:${port} THIS-SERVER)` };
  const name = isAnyHost(host) || host === here.hostname || (isLoopbackHost(host) && hereLoopback) ? here.hostname : host;
  const url = `${here.protocol}//${name.includes(':') && !name.startsWith('[') ? `[${name}]` : name}:${port}/`;
  return { url, note: `The admin app moves to ${url}` };
}

export function RestartSection({ status, move }: { status: StatusBody | undefined; move?: AdminMove }) {
  const info = useResource((s) => get<RestartInfo>('/restart', s), []);
  const [asking, setAsking] = useState(false);
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const i = info.data;

  const restart = async () => {
    const before = status?.started_at ?? (await get<StatusBody>('/status')).started_at;
    await api('POST', '/restart', {});
    // the app will answer elsewhere: asking this address would only wait out the deadline
    if (move) {
      setPhase({ kind: 'moved', move });
      return;
    }
    setPhase({ kind: 'waiting' });
    const deadline = Date.now() + GIVE_UP_MS;
    const poll = async () => {
      try {
        const now = await get<StatusBody>('/status');
        if (now.started_at !== before) {
          location.reload();
          return;
        }
      } catch {
        // not listening yet (or still stopping): ask again
      }
      if (Date.now() > deadline) setPhase({ kind: 'gave-up' });
      else setTimeout(() => void poll(), 1000);
    };
    setTimeout(() => void poll(), 1000);
  };

  const who = i?.supervisor === 'systemd' ? 'systemd' : i?.supervisor === 'desktop' ? 'the desktop app' : i?.supervisor ? `its supervisor (${i.supervisor})` : '';
  return (
    <Section title="Restart Airlock">
      <LoadError error={info.error} retry={info.reload} />
      <p className="hint">Changes marked “takes effect on restart” (where Airlock listens, client connections, HTTPS, the largest request body) and a staged restore apply when Airlock restarts.</p>
      {i && !i.supported ? (
        <p className="notice info" data-testid="restart-by-hand">
          {i.message}
        </p>
      ) : null}
      {i?.supported ? (
        <div className="actions left">
          <button type="button" className="primary" disabled={phase.kind === 'waiting' || phase.kind === 'moved'} onClick={() => setAsking(true)}>
            Restart now
          </button>
        </div>
      ) : null}
      <p role="status" aria-live="polite" className={phase.kind === 'gave-up' ? 'error-text' : 'hint'}>
        {phase.kind === 'waiting' ? `Restarting… waiting for Airlock to come back; this page reloads when it does.` : null}
        {phase.kind === 'gave-up' ? `Airlock did not come back within ${GIVE_UP_MS / 1000} seconds. Check ${who || 'the service'} (e.g. "systemctl status airlock", or the desktop app's window), then reload this page.` : null}
        {phase.kind === 'moved' ? (
          <span data-testid="restart-moved">
            Restarting. {phase.move.note}
            {phase.move.url ? (
              <>
                {' '}— <a href={phase.move.url}>open it there</a> in a few seconds (this page stays at the old address).
              </>
            ) : (
              '.'
            )}
          </span>
        ) : null}
      </p>
      <ConfirmDialog
        open={asking}
        title="Restart Airlock?"
        danger={false}
        confirmLabel="Restart now"
        body={
          <p>
            Requests in progress finish first (up to the shutdown grace), then Airlock stops and {who || 'its supervisor'} starts it again. Apps and
            agents get connection errors for a few seconds, and unsaved changes on this page are lost.
            {move ? ` ${move.note}.` : null}
          </p>
        }
        onConfirm={restart}
        onClose={() => setAsking(false)}
      />
    </Section>
  );
}
