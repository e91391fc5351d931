/**
 * The life of one instance: `starting` until healthy, `ready` while it takes
 * requests, `draining` while its in-flight requests finish, `stopping` once
 * signalled, `exited` when its whole process group is gone.
 */
export type InstanceState =
  | "starting"
  | "ready"
  | "draining"
  | "stopping"
  | "exited";

/** The moves an instance may make; anything else is a bug. */
export const INSTANCE_TRANSITIONS: Readonly<
  Record<InstanceState, readonly InstanceState[]>
> = {
  starting: ["ready", "stopping", "exited"],
  ready: ["draining", "stopping", "exited"],
  draining: ["stopping", "exited"],
  stopping: ["exited"],
  exited: [],
};

/** Thrown on a lifecycle move that the transition table does not allow. */
export class IllegalTransitionError extends Error {
  constructor(what: string, from: string, to: string) {
    super(`Illegal transition of ${what}: "${from}" to "${to}"`);
    this.name = "IllegalTransitionError";
  }
}
