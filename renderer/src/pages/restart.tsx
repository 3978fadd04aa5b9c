// "Restart now" (Settings, owner): settings such as where Airlock listens, client limits and TLS
// take effect on restart, and a staged restore is applied by one. POST /restart answers, then the
// gateway stops gracefully and exits for its supervisor (systemd, the desktop app) to start it
// again; the page waits until the admin API answers from a new process (a new started_at: the
// app cannot reach the data plane's /readyz, another origin under its CSP) and reloads. Without a
// supervisor the gateway says so (GET /restart) and the section says to restart by hand.
import { useState } from 'react';
import { api, get, type RestartInfo, type StatusBody } from '../api';
import { useResource } from '../hooks';
import { ConfirmDialog, LoadError, Section } from '../components/ui';

const GIVE_UP_MS = 120_000;

type Phase = { kind: 'idle' } | { kind: 'waiting' } | { kind: 'gave-up' };

export function RestartSection({ status }: { status: StatusBody | undefined }) {
  const info = useResource((s) => get<RestartInfo>('/restart', s), []);
  const [asking, setAsking] = useState(false);
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const i = info.data;

  const restart = async () => {
    const before = status?.started_at ?? (await get<StatusBody>('/status')).started_at;
    await api('POST', '/restart', {});
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
          <button type="button" className="primary" disabled={phase.kind === 'waiting'} onClick={() => setAsking(true)}>
            Restart now
          </button>
        </div>
      ) : null}
      <p role="status" aria-live="polite" className={phase.kind === 'gave-up' ? 'error-text' : 'hint'}>
        {phase.kind === 'waiting' ? `Restarting… waiting for Airlock to come back; this page reloads when it does.` : null}
        {phase.kind === 'gave-up' ? `Airlock did not come back within ${GIVE_UP_MS / 1000} seconds. Check ${who || 'the service'} (e.g. "systemctl status airlock", or the desktop app's window), then reload this page.` : null}
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
          </p>
        }
        onConfirm={restart}
        onClose={() => setAsking(false)}
      />
    </Section>
  );
}
