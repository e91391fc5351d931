import { join } from "node:path";
import type { Logger } from "../log/mod.ts";

const encoder = new TextEncoder();

/**
 * Sends a state to systemd's notification socket (`$NOTIFY_SOCKET`, set for
 * `Type=notify` units) and does nothing without one. A self-upgrade sends
 * `MAINPID=` from the successor, so with `NotifyAccess=all` systemd follows
 * the new process instead of stopping the service when the old one exits.
 *
 * @returns true when the state was sent.
 */
export async function sdNotify(
  state: string,
  logger: Logger,
): Promise<boolean> {
  const socket = Deno.env.get("NOTIFY_SOCKET");
  if (!socket) return false;
  if (!socket.startsWith("/")) {
    logger.debug("sd_notify skipped: only path sockets are supported", {
      socket,
    });
    return false;
  }
  const dir = await Deno.makeTempDir({ prefix: "tqserver-notify-" });
  let conn: Deno.DatagramConn | undefined;
  try {
    conn = Deno.listenDatagram({
      transport: "unixpacket",
      path: join(dir, "s"),
    });
    await conn.send(encoder.encode(state), {
      transport: "unixpacket",
      path: socket,
    });
    return true;
  } catch (err) {
    logger.warn("sd_notify failed", { socket, state, error: err });
    return false;
  } finally {
    conn?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
