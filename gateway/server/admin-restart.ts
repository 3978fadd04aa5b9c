// "Restart now" (issue 15): POST /admin/api/v1/restart (owner) answers, then stops the gateway
// gracefully (like SIGTERM: in-flight requests finish, the ledger is flushed, the data dir's lock
// released) and exits with RESTART_EXIT_CODE, on which its supervisor starts it again:
//  - systemd: installers/airlock.service (Restart=on-failure, RestartForceExitStatus=75) sets
//    AIRLOCK_SUPERVISOR=systemd;
//  - the desktop shell: the gateway has a parent port (Electron's utilityProcess) or an IPC
//    channel (a Node fork); main/lib/supervisor.ts starts it again at once on this exit code;
//  - any other supervisor that restarts on exit code 75 may set AIRLOCK_SUPERVISOR=NAME.
// With none (a plain `airlock serve` in a terminal, a `--no-systemd` install) the route refuses
// (409 no_supervisor) and says to restart by hand: nothing would start the gateway again.
import type { FastifyInstance } from 'fastify';
import type { Gateway } from './gateway.js';
import type { RouteDeps } from './route-deps.js';
import type { RestartInfo } from '../wire.js';

/** EX_TEMPFAIL: "try again". The supervisors restart on it (and never on 2, a start-up error). */
export const RESTART_EXIT_CODE = 75;

export type Supervisor = string;

/** Who restarts this process on RESTART_EXIT_CODE, from how it was started. */
export function detectSupervisor(env: NodeJS.ProcessEnv, hasParentChannel: boolean): Supervisor | null {
  const named = env.AIRLOCK_SUPERVISOR?.trim();
  if (named) return named.slice(0, 40);
  return hasParentChannel ? 'desktop' : null;
}

export const NO_SUPERVISOR =
  'This gateway runs without a supervisor that would start it again (it was started with "airlock serve" by hand, or by "airlock service start"): restart it by hand — stop it (Ctrl+C, or "airlock service stop") and start it again.';

export function restartInfo(gw: Gateway): RestartInfo {
  return { supported: !!gw.supervisor && !!gw.requestRestart, supervisor: gw.supervisor, message: gw.supervisor ? null : NO_SUPERVISOR };
}

export function registerRestartRoute(app: FastifyInstance, gw: Gateway, { API, error, actorOf }: RouteDeps): void {
  app.get(`${API}/restart`, { config: { access: 'auditor' } }, async (): Promise<RestartInfo> => restartInfo(gw));
  app.post(`${API}/restart`, { config: { access: 'owner', audit: 'restart the gateway' } }, async (req, reply) => {
    const info = restartInfo(gw);
    const restart = gw.requestRestart;
    if (!info.supported || !restart) throw error(409, 'no_supervisor', NO_SUPERVISOR);
    if (gw.draining) throw error(409, 'stopping', 'The gateway is already stopping.');
    const by = actorOf(req);
    // once the answer has gone out (or its connection is gone): the stop closes the listeners and
    // waits for open requests
    reply.raw.once('close', () => setImmediate(() => restart(`restart asked for by ${by}`)));
    reply.code(202);
    return { restarting: true, supervisor: info.supervisor, exit_code: RESTART_EXIT_CODE };
  });
}
