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
    if (event) events.add(event);
  };
}
