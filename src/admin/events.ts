/** Kinds of timeline event. */
export type AdminEventType =
  | "server"
  | "start"
  | "replace"
  | "replace-failed"
  | "crash"
  | "state"
  | "signal"
  | "build"
  | "build-error"
  | "reload"
  | "config"
  | "restart-requested";

/** One entry of the event timeline (`GET /api/events`). */
export interface AdminEvent {
  /** Increasing from 1 within a server process. */
  id: number;
  /** ISO time. */
  time: string;
  type: AdminEventType;
  /** The worker it is about, when there is one. */
  worker?: string;
  /** One sentence a person reads, e.g. `api restarted (manual) in 120 ms`. */
  message: string;
  /** The log record's fields. */
  fields: Record<string, unknown>;
}

/** Options for {@linkcode EventLog}. */
export interface EventLogOptions {
  /** Events kept. Default 1000. */
  capacity?: number;
  /** The clock. Default `() => new Date()`. */
  now?: () => Date;
}

/** An event before the log gave it an id and a time. */
export type NewAdminEvent = Omit<AdminEvent, "id" | "time">;

/**
 * The last `capacity` events, for `GET /api/events` and `/api/stream`.
 *
 * @example
 * ```ts
 * const events = new EventLog();
 * const off = events.subscribe((e) => console.log(e.message));
 * events.add({ type: "crash", worker: "api", message: "api crashed", fields: {} });
 * events.since(0).length; // 1
 * off();
 * ```
 */
export class EventLog {
  #capacity: number;
  #now: () => Date;
  #events: AdminEvent[] = [];
  #next = 1;
  #listeners = new Set<(event: AdminEvent) => void>();

  constructor(options: EventLogOptions = {}) {
    const { capacity = 1000, now = () => new Date() } = options;
    if (capacity < 1) throw new RangeError(`Capacity must be at least 1`);
    this.#capacity = capacity;
    this.#now = now;
  }

  /** The id the next event will get. */
  get nextId(): number {
    return this.#next;
  }

  /** Appends an event, drops the oldest past capacity, tells subscribers. */
  add(event: NewAdminEvent): AdminEvent {
    const full: AdminEvent = {
      id: this.#next++,
      time: this.#now().toISOString(),
      ...event,
    };
    this.#events.push(full);
    if (this.#events.length > this.#capacity) {
      this.#events.splice(0, this.#events.length - this.#capacity);
    }
    for (const listener of this.#listeners) listener(full);
    return full;
  }

  /** Events with an id greater than `id`, oldest first (at most `capacity`). */
  since(id: number): AdminEvent[] {
    const events = this.#events;
    // Ids are consecutive, so the first wanted event is found by arithmetic.
    const first = events[0]?.id ?? this.#next;
    return events.slice(Math.max(0, id + 1 - first));
  }

  /** Calls `listener` for every new event; returns the unsubscribe function. */
  subscribe(listener: (event: AdminEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
