/**
 * Who gets in, for fastify: the login (admin token → session cookie + CSRF token), logout, and the onRequest hook each
 * authenticated context registers inside itself (the API, the pages, the ops endpoints). A request is let in with
 * a live session cookie (a write also with its `x-csrf-token`) or with `Authorization: Bearer <admin token>`; guessing
 * the token is slowed on both paths (GuessLimiter).
 */
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Logger } from '../common/logger.ts';
import { GuessLimiter, sameSecret, Sessions, type Session } from './auth.ts';

declare module 'fastify' {
  interface FastifyRequest {
    session: Session | undefined;
  }
}

export interface AdmissionSettings {
  /** The admin token a login or a bearer must present. */
  adminToken: string;
  /** Mark the session cookie Secure (set it when TLS terminates in front of the console). */
  secureCookie?: boolean;
}

const SESSION_COOKIE = 'console_session';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const deny = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });

export class Admission {
  readonly #sessions = new Sessions();
  readonly #guesses = new GuessLimiter();
  readonly #settings: AdmissionSettings;
  readonly #logger: Logger;

  constructor(settings: AdmissionSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
  }

  /**
   * The hook of an authenticated context: lets a session or a bearer in, else answers with `missing` (401 for the API,
   * the login page for the pages). Scripts present the token itself: no cookie is involved, so no CSRF token either.
   */
  hook(missing: (reply: FastifyReply) => FastifyReply): onRequestAsyncHookHandler {
    return async (request, reply) => {
      const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      if (bearer !== undefined) {
        if (!(await this.#admitted(bearer, request, reply, 'bearer'))) return reply;
        return;
      }
      request.session = this.#sessions.get(request.cookies[SESSION_COOKIE]);
      if (!request.session) return missing(reply);
      if (UNSAFE.has(request.method) && !sameSecret(String(request.headers['x-csrf-token'] ?? ''), request.session.csrfToken)) {
        return deny(reply, 403, 'missing or wrong x-csrf-token header');
      }
    };
  }

  /** POST /api/session: a session for the admin token, its CSRF token in the answer. */
  async login(request: FastifyRequest<{ Body: { token: string } }>, reply: FastifyReply): Promise<FastifyReply> {
    if (!(await this.#admitted(request.body.token, request, reply, 'login'))) return reply;
    const session = this.#sessions.create();
    this.#logger.info({ audit: { action: 'login', ip: request.ip } }, 'audit: login');
    reply.setCookie(SESSION_COOKIE, session.id, { path: '/', httpOnly: true, sameSite: 'strict', secure: this.#settings.secureCookie ?? false, maxAge: this.#sessions.maxAgeMs / 1000 });
    return reply.code(201).send({ csrfToken: session.csrfToken });
  }

  logout(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    if (request.session) this.#sessions.delete(request.session.id);
    return reply.clearCookie(SESSION_COOKIE, { path: '/' }).code(204).send();
  }

  /**
   * Whether `given` is the admin token; when not, `reply` is sent (401, or 429 while the limiter hears no token). A
   * wrong token is audited, and answered only when the limiter lets it.
   */
  async #admitted(given: string, request: FastifyRequest, reply: FastifyReply, via: 'login' | 'bearer'): Promise<boolean> {
    if (this.#guesses.saturated) {
      reply.code(429).header('retry-after', String(this.#guesses.retryAfterSeconds)).send({ error: `too many wrong tokens are being tried; try again in ${this.#guesses.retryAfterSeconds} s` });
      return false;
    }
    if (sameSecret(given, this.#settings.adminToken)) return true;
    this.#logger.warn({ audit: { action: 'login failed', via, ip: request.ip } }, 'audit: login failed');
    await this.#guesses.failed();
    deny(reply, 401, 'wrong token');
    return false;
  }
}
