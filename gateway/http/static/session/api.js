/* The JSON API: one POST helper and its error type. The join request itself is made in
 * join.js (requestJoin), the only place the page asks to join. */

export class ApiError extends Error {
  constructor(status, code, message, retryAfter, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details || null; // the whole answer (e.g. a 421's `location`)
  }
}

export async function api(path, body, options) {
  const opts = options || {};
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      keepalive: Boolean(opts.keepalive),
      signal: opts.signal,
    });
  } catch (err) {
    throw new ApiError(0, "network", "We could not reach the server. Check your connection.", null);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `The server answered ${response.status}.`,
      response.headers.get("Retry-After"),
      data,
    );
  }
  return data;
}
