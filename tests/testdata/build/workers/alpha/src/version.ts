/** Rewritten by tests to check that a rebuild picks up a change. */
export const VERSION = "1";
