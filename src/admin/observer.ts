import type { LogRecord } from "../log/mod.ts";
import type { ServerMetrics } from "../metrics/mod.ts";
import { eventFromRecord } from "./_record_events.ts";
import type { EventLog } from "./events.ts";

/**
 * The log observer that builds the event timeline and the event-driven
 * metrics (restarts by reason, crashes, build errors, reload checks) from the
 * server's log records, so the log file, `/api/events` and `/metrics` tell
 * the same story.
 *
 * @example
 * ```ts
 * const log = createServerLog({ onRecord: observeRecords(events, metrics) });
 * ```
 */
export function observeRecords(
  events: EventLog,
  metrics?: ServerMetrics,
): (record: LogRecord) => void {
  return (record) => {
    metrics?.observe(record);
    const event = eventFromRecord(record);
    if (event) events.add({ ...event, fields: plainFields(event.fields) });
  };
}

/** Fields as JSON can carry them: an Error becomes its message (JSON would make it `{}`). */
function plainFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = value instanceof Error ? value.message : value;
  }
  return out;
}
