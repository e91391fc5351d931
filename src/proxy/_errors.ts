const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  499: "Client Closed Request",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * A request the proxy (or the server in front of it) cannot serve, as an
 * {@linkcode ErrorHandler} receives it.
 */
export interface ProxyFailure {
  /** The status to answer, e.g. 400, 404, 408, 413, 499, 500, 502, 503 or 504. */
  status: number;
  /** What went wrong, in sentence case; shown to the client. */
  message: string;
  /** The request id to report. Default: the request's `X-Request-Id`, or a new UUID. */
  requestId?: string | undefined;
  /** Extra response headers (`Retry-After` of a 503, `Connection: close`). Default: none. */
  headers?: Readonly<Record<string, string>> | undefined;
  /** The error behind the failure, when there is one (a worker's reset, a spool error). */
  cause?: unknown;
}

/**
 * Builds every error answer of the proxy and the public handler, like Go's
 * `ReverseProxy.ErrorHandler`: the failure is already classified (status,
 * message) and logged; the handler only decides what the client receives.
 * Default: {@linkcode errorResponse}.
 */
export type ErrorHandler = (req: Request, failure: ProxyFailure) => Response;

/**
 * The default {@linkcode ErrorHandler}: an error answer of the server itself
 * (not of a worker), an HTML page when the request's `Accept` includes
 * `text/html`, otherwise JSON
 * `{"error": message, "status": status, "request_id": id}`. It is never
 * cached and carries `X-Request-Id`.
 *
 * @param req The request being answered; its `Accept` picks HTML or JSON.
 * @param failure Status (e.g. 404, 502, 503 or 504), message, request id and extra headers.
 * @returns A fresh response with mutable headers.
 *
 * @example
 * ```ts
 * const res = errorResponse(new Request("http://localhost/x"), {
 *   status: 503,
 *   message: "No healthy instance",
 *   headers: { "retry-after": "1" },
 * });
 * res.status; // 503
 * ```
 */
export function errorResponse(req: Request, failure: ProxyFailure): Response {
  const { status, message } = failure;
  const requestId = failure.requestId ?? req.headers.get("x-request-id") ??
    crypto.randomUUID();
  const headers = new Headers(failure.headers);
  headers.set("cache-control", "no-store");
  headers.set("x-request-id", requestId);
  let body: string;
  const accept = req.headers.get("accept");
  if (accept !== null && accept.includes("text/html")) {
    const title = `${status} ${STATUS_TEXT[status] ?? "Error"}`;
    headers.set("content-type", "text/html; charset=utf-8");
    body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;margin:4rem auto;max-width:40rem;padding:0 1rem;color:#222}
code{color:#666}</style></head>
<body><h1>${title}</h1><p>${escapeHtml(message)}</p>
<p><code>request id ${escapeHtml(requestId)}</code></p></body></html>
`;
  } else {
    headers.set("content-type", "application/json; charset=utf-8");
    body = JSON.stringify({ error: message, status, request_id: requestId }) +
      "\n";
  }
  const bytes = encoder.encode(body);
  // Stated, so that later stages (compression) see a body of known length.
  headers.set("content-length", String(bytes.length));
  return new Response(bytes, { status, headers });
}

const encoder = new TextEncoder();

/** The text of an error and its causes, for logs. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 4; depth++) {
    if (current instanceof Error) {
      parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ");
}
