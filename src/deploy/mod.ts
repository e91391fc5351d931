/**
 * Deploys built workers to the targets of `config/deployment.yaml` with rsync.
 *
 * @module
 */
export * from "./deploy.ts";
