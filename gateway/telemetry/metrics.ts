// Prometheus series that come with tracing: the wait for a slot and the queue's depth per
// endpoint, tool calls by MCP server and tool (from the MCP gateway's airlock:tool:end, by
// channel name), and the span store's and OTLP export's own counts. Labels stay bounded: no
// session, user or request ids.
import diagnostics_channel from 'node:diagnostics_channel';
import { Counter, type Registry } from 'prom-client';
import { channels, on, type AttemptStart } from '../engine/events.js';
import { LiteCounter, LiteHistogram } from '../engine/prom-lite.js';
import type { Runtime } from '../engine/runtime.js';
import type { Telemetry } from './telemetry.js';
import { TOOL_END, type ToolCallLike } from './tracer.js';

export function registerTelemetryMetrics(registry: Registry, pipeline: object, runtime: Runtime, telemetry: Telemetry): () => void {
  const queueWait = new LiteHistogram('airlock_queue_wait_seconds', 'Time an upstream attempt waited for a free slot at its endpoint (max_concurrency)', ['endpoint'] as const, [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
  ]).registerIn(registry);
  const tools = new LiteCounter('airlock_tool_calls_total', 'MCP tool calls by server, tool and status', ['server', 'tool', 'status'] as const).registerIn(registry);
  // airlock_endpoint_queue_depth is the governance module's (gateway/governance/metrics.ts)
  // totals kept by the store and the export, exposed as counters (increased by what grew since the last scrape)
  const total = (name: string, help: string, read: () => number) => {
    let last = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read();
        if (v > last) this.inc(v - last);
        last = v;
      },
    });
  };
  total('airlock_trace_spans_written_total', 'Spans written to the local span store', () => telemetry.spansWritten);
  total('airlock_trace_spans_store_dropped_total', 'Spans the local store dropped (full or unwritable)', () => telemetry.store.dropped);
  total('airlock_otlp_spans_exported_total', 'Spans the OTLP collector accepted', () => telemetry.otlp.exported);
  total('airlock_otlp_spans_dropped_total', 'Spans not exported: the collector queue was full or their export failed', () => telemetry.otlp.dropped);
  total('airlock_otlp_export_failures_total', 'Exports to the OTLP collector that failed (error status, timeout, no connection)', () => telemetry.otlp.failedExports);
  const offQueue = on<AttemptStart>(channels.attemptStart, pipeline, (m) => queueWait.observe({ endpoint: m.target.endpoint }, m.queueMs / 1000));
  const toolEnd = diagnostics_channel.channel(TOOL_END);
  const onTool = (m: unknown) => {
    const call = (m as { call?: ToolCallLike } | undefined)?.call;
    if (call) tools.inc({ server: call.server ?? '', tool: call.tool ?? '', status: String(call.status ?? 0) });
  };
  toolEnd.subscribe(onTool);
  return () => {
    offQueue();
    toolEnd.unsubscribe(onTool);
  };
}
