// The shell's own pages, shown before the admin app can be: "starting", "restarting" and the
// error page that names the log file. Static HTML without script, loaded as a data: URL with
// its own CSP; every dynamic value is escaped.
import { SHELL_PAGE_CSP } from './csp.js';
import type { GatewayStatus } from './supervisor.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function shellPage(opts: { title: string; message: string; detail?: string | null; logPath?: string; tone: 'info' | 'error' }): string {
  const color = opts.tone === 'error' ? '#b42318' : '#1d4ed8';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(SHELL_PAGE_CSP)}">
<title>Airlock — ${escapeHtml(opts.title)}</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:#f6f7f9;color:#111827}
main{max-width:40rem;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.25rem;margin:0 0 .75rem;color:${color}}
code{display:block;padding:.5rem .75rem;background:#f3f4f6;border-radius:4px;word-break:break-all;user-select:all}
</style></head>
<body><main role="${opts.tone === 'error' ? 'alert' : 'status'}">
<h1>${escapeHtml(opts.title)}</h1>
<p>${escapeHtml(opts.message)}</p>
${opts.detail ? `<p>The gateway said:</p><code>${escapeHtml(opts.detail)}</code>` : ''}
${opts.logPath ? `<p>Log file:</p><code>${escapeHtml(opts.logPath)}</code>` : ''}
</main></body></html>`;
}

/** The page for a gateway status that is not `running`. */
export function statusPage(status: GatewayStatus): string {
  switch (status.state) {
    case 'failed':
      return shellPage({
        title: 'The gateway could not start',
        message: status.error ?? 'The gateway stopped.',
        detail: status.lastErrorLine,
        logPath: status.logPath,
        tone: 'error',
      });
    case 'restarting':
      return shellPage({ title: 'Restarting the gateway', message: status.error ?? 'The gateway stopped; restarting it.', logPath: status.logPath, tone: 'error' });
    case 'stopping':
    case 'stopped':
      return shellPage({ title: 'The gateway is stopped', message: 'Use the tray menu to start it again or to quit.', logPath: status.logPath, tone: 'info' });
    default:
      return shellPage({ title: 'Starting the gateway…', message: 'The admin app opens as soon as the gateway is ready.', tone: 'info' });
  }
}

export function dataUrl(html: string): string {
  return `data:text/html;charset=utf-8,${encodeURIComponent(html)}`;
}

/** One line for the tray tooltip and menu. */
export function statusLine(status: GatewayStatus): string {
  switch (status.state) {
    case 'running':
      return `Airlock: serving on ${status.data ?? '?'}`;
    case 'starting':
      return 'Airlock: starting…';
    case 'restarting':
      return `Airlock: restarting in ${Math.ceil((status.restartInMs ?? 0) / 1000)} s (exit code ${status.lastExitCode ?? '?'})`;
    case 'failed':
      return 'Airlock: failed — see the log';
    case 'stopping':
      return 'Airlock: stopping…';
    case 'stopped':
      return 'Airlock: stopped';
  }
}
