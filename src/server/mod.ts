/**
 * The server: composes config, supervisor, proxy, static files, admin and dev
 * hooks behind one public port.
 *
 * @module
 */
export * from "./handler.ts";
export * from "./server.ts";
export { UPGRADE_PARENT_ENV } from "./upgrade.ts";
