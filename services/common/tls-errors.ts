/** How a failed TLS handshake reads in Node's error messages, for errors that name the setting to change. */

/** The server refused (or wanted) our client certificate: a TLS alert from its side. */
export const CLIENT_CERTIFICATE_REFUSED = /alert (bad certificate|certificate required|unknown ca|certificate unknown)/i;
/** The server's certificate is not one the CA given (or the system's) vouches for. */
export const CERTIFICATE_ERROR = /certificate|self[- ]signed|issuer|CERT_|unable to verify/i;
