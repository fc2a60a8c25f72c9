/**
 * The frontend package's version; the server extension's `GET version` must
 * answer the same (checked by the handshake, and by a unit test against
 * package.json).
 */
export const FRONTEND_VERSION = '0.1.0';
