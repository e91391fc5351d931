/**
 * Deploys built workers, config and the server to the hosts of a target in
 * `config/deployment.yaml` with the system ssh and rsync: rolling,
 * manifest-checked, health-gated, with a canary and automatic rollback
 * ({@linkcode deploy}, {@linkcode rollback}), and the fleet at a glance
 * ({@linkcode fleetStatus}).
 *
 * @module
 */
export * from "./deploy.ts";
export * from "./rollback.ts";
export * from "./status.ts";
