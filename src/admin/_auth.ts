// Folder-private: who may call the admin API. Loopback is the fence by default;
// a token is the fence otherwise. POSTs must also be unforgeable by a web page.

const encoder = new TextEncoder();

/** Compares two strings in time independent of where they differ. */
function sameSecret(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

/** True when the request carries `Authorization: Bearer {token}`. */
export function hasToken(req: Request, token: string): boolean {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match !== null && sameSecret(match[1]!, token);
}

/**
 * Why a state-changing request is refused, or undefined when it may run: a
 * foreign `Origin` (or `Sec-Fetch-Site`) is 403; without a token configured it
 * must be `application/json`, which no HTML form can send and a cross-site
 * script cannot send without a CORS preflight this listener never grants.
 */
export function refusePost(
  req: Request,
  token: string,
): { status: number; error: string } | undefined {
  const origin = req.headers.get("origin");
  if (origin !== null) {
    let host = "";
    try {
      host = new URL(origin).host;
    } catch {
      // "null" (sandboxed frame, file://) or garbage: foreign.
    }
    if (host !== (req.headers.get("host") ?? "")) {
      return {
        status: 403,
        error: `Cross-site request refused (Origin "${origin}")`,
      };
    }
  }
  const site = req.headers.get("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") {
    return { status: 403, error: `Cross-site request refused (${site})` };
  }
  if (token) {
    return hasToken(req, token)
      ? undefined
      : { status: 401, error: "Missing or wrong Bearer token" };
  }
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    return {
      status: 415,
      error: 'POST needs "Content-Type: application/json" (or a Bearer token)',
    };
  }
  return undefined;
}
