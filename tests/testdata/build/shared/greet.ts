/** The line both fixture workers print: who they are and what deno lets them do. */
export function greet(name: string): string {
  const net = Deno.permissions.querySync({ name: "net" }).state;
  // Unstable APIs exist only under their --unstable-* flag.
  const unstableNet = typeof (Deno as { listenDatagram?: unknown })
    .listenDatagram === "function";
  return `hello from ${name} net=${net} unstable-net=${unstableNet}`;
}
